//! `cargo xtask image`: the container image, built offline. A static musl
//! `mamori` (std rebuilt for the musl target, since the pinned toolchain's
//! musl std cannot be downloaded; linked with Debian's musl and LLVM's
//! libunwind; libgcc for the compiler helpers mimalloc's C calls), stripped, then `podman build` of `deploy/image/Containerfile`
//! (`FROM scratch`).

use std::{fs, path::PathBuf};

use anyhow::Context;

use crate::cmd;

/// The image the DaemonSet names and the image test runs.
pub const IMAGE: &str = concat!("localhost/mamori:", env!("CARGO_PKG_VERSION"));
const TARGET: &str = "x86_64-unknown-linux-musl";

pub fn build() -> anyhow::Result<()> {
    let binary = static_binary()?;
    let context = cmd::root().join("target/image/context");
    let _ = fs::remove_dir_all(&context);
    fs::create_dir_all(&context)?;
    cmd::run(
        "strip",
        &[
            "-o",
            &context.join("mamori").to_string_lossy(),
            &binary.to_string_lossy(),
        ],
    )?;
    fs::copy(
        cmd::root().join("rules/mamori_rules.yaml"),
        context.join("mamori_rules.yaml"),
    )
    .context("copy the default rules")?;
    let containerfile = cmd::root().join("deploy/image/Containerfile");
    cmd::run(
        "podman",
        &[
            "--runtime",
            "/usr/sbin/runc",
            "--cgroup-manager",
            "cgroupfs",
            "build",
            "-q",
            "-t",
            IMAGE,
            "-f",
            &containerfile.to_string_lossy(),
            &context.to_string_lossy(),
        ],
    )?;
    eprintln!("image: {IMAGE}");
    Ok(())
}

/// Builds the static binary; returns its path.
fn static_binary() -> anyhow::Result<PathBuf> {
    let work = cmd::root().join("target/image");
    fs::create_dir_all(&work)?;
    let shim = work.join("fortify_shim.o");
    let shim_src = cmd::root().join("xtask/src/image/fortify_shim.c");
    cmd::run(
        "musl-gcc",
        &[
            "-O2",
            "-c",
            &shim_src.to_string_lossy(),
            "-o",
            &shim.to_string_lossy(),
        ],
    )?;
    let flags = format!(
        "-C link-self-contained=no -C target-feature=+crt-static -C relocation-model=static \
         -L {}/lib -C link-arg={} -C link-arg=-lgcc",
        crate::setup::LLVM_PREFIX,
        shim.display()
    );
    // SAFETY: single-threaded; read by the child cargo.
    unsafe {
        std::env::set_var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER", "musl-gcc");
        std::env::set_var("CC_x86_64_unknown_linux_musl", "musl-gcc");
        std::env::set_var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS", flags);
    }
    cmd::cargo(&[
        "build",
        "--release",
        "-p",
        "mamori",
        "--bin",
        "mamori",
        "--target",
        TARGET,
        "-Zbuild-std=std,panic_abort",
    ])?;
    Ok(cmd::root().join(format!("target/{TARGET}/release/mamori")))
}
