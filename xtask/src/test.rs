//! `cargo xtask test`: lints, unit tests, then the end-to-end tests, which
//! load the real programs and so run as root, one at a time.

use crate::{cmd, es};

pub fn run(filter: Option<&str>, lint: bool) -> anyhow::Result<()> {
    if lint {
        cmd::cargo(&["fmt", "--all", "--check"])?;
        cmd::cargo(&[
            "clippy",
            "--workspace",
            "--exclude",
            "mamori-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])?;
        clippy_ebpf()?;
    }
    let mut unit = vec![
        "test",
        "--workspace",
        "--exclude",
        "mamori-ebpf",
        "--exclude",
        "mamori-e2e",
    ];
    if let Some(f) = filter {
        unit.push(f);
    }
    cmd::cargo(&unit)?;
    // The e2e tests spawn the release binary; build it first.
    cmd::cargo(&["build", "--release", "--package", "mamori"])?;
    // And run the container image.
    crate::image::build()?;
    // A real Elasticsearch node for the output tests (some tests start
    // their own, from the same installed launcher).
    es::build()?;
    let url = es::start()?;
    // SAFETY: single-threaded; read by the test processes.
    unsafe { std::env::set_var("MAMORI_TEST_ES_URL", &url) };
    let mut e2e = vec!["test", "--release", "--package", "mamori-e2e"];
    if let Some(f) = filter {
        e2e.push(f);
    }
    e2e.extend(["--", "--test-threads=1"]);
    let result = cmd::cargo(&e2e);
    es::stop()?;
    result
}

/// Clippy on the kernel crate, for its own target.
fn clippy_ebpf() -> anyhow::Result<()> {
    let flags = "--cfg=bpf_target_arch=\"x86_64\"";
    // SAFETY: single-threaded; read by the child cargo.
    unsafe { std::env::set_var("CARGO_ENCODED_RUSTFLAGS", flags) };
    let r = cmd::cargo(&[
        "clippy",
        "--package",
        "mamori-ebpf",
        "--release",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--",
        "-D",
        "warnings",
    ]);
    unsafe { std::env::remove_var("CARGO_ENCODED_RUSTFLAGS") };
    r
}
