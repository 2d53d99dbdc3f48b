//! Builds the kernel programs (`agent-ebpf`) for bpfel-unknown-none with the
//! pinned toolchain and bpf-linker, so `cargo build` alone yields a working
//! agent. Set AYA_BUILD_SKIP=1 to skip (clippy-only runs).

/// Must match rust-toolchain.toml: aya-build's default would run whatever
/// `nightly` rustup has, whose LLVM may not match bpf-linker's.
const TOOLCHAIN: &str = "nightly-2026-06-24";

fn main() -> anyhow::Result<()> {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let ebpf_dir = format!("{manifest}/../agent-ebpf");
    println!("cargo::rerun-if-changed={manifest}/../agent-common/src");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "mamori-ebpf",
            root_dir: &ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(TOOLCHAIN),
    )
}
