//! Builds the kernel programs (`agent-ebpf`) for bpfel-unknown-none with the
//! pinned toolchain and bpf-linker, so `cargo build` alone yields a working
//! agent. Set AYA_BUILD_SKIP=1 to skip (clippy-only runs).

/// Reads the pin from the workspace manifest, as xtask does.
#[allow(
    dead_code,
    reason = "xtask uses the whole file; only the channel is needed here"
)]
#[path = "../xtask/src/pin.rs"]
mod pin;

fn main() -> anyhow::Result<()> {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let ebpf_dir = format!("{manifest}/../agent-ebpf");
    let workspace_manifest = format!("{manifest}/../Cargo.toml");
    println!("cargo::rerun-if-changed={manifest}/../agent-common/src");
    println!("cargo::rerun-if-changed={workspace_manifest}");
    // The pinned name, always: aya-build's default would run whatever
    // `nightly` rustup has, whose LLVM may not match bpf-linker's.
    let text = std::fs::read_to_string(&workspace_manifest)?;
    let pin = pin::parse(&text).ok_or_else(|| {
        anyhow::anyhow!("{workspace_manifest}: [workspace.metadata.mamori] has no toolchain")
    })?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "mamori-ebpf",
            root_dir: &ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(&pin.channel),
    )
}
