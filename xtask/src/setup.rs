//! Installs what is missing on a fresh Debian machine. Idempotent: each
//! step checks first and does nothing when already satisfied.

use std::path::Path;

use anyhow::{Context, bail};

use crate::{cmd, toolchain};

const BPF_LINKER_VERSION: &str = "0.13.0";
pub const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Debian packages: LLVM 22 for bpf-linker; podman, runc, containerd (its
/// CRI plugin) and busybox for the container tests, and the CNI plugins and
/// iptables for the Kubernetes node; a JDK and Maven for the test Elasticsearch node; openssl for its
/// test certificates; musl and LLVM's libunwind for the static binary of
/// the container image; the everyday tools of the benign-workload test.
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
    "pkg-config",
    "build-essential",
    "podman",
    "runc",
    "containerd",
    "containernetworking-plugins",
    "iptables",
    "busybox-static",
    "iproute2",
    "curl",
    "openssl",
    "python3-venv",
    "musl-tools",
    "libunwind-22-dev",
    "default-jdk-headless",
    "maven",
    "git",
    "logrotate",
    "zip",
    "unzip",
    "xz-utils",
];

pub fn run() -> anyhow::Result<()> {
    apt()?;
    toolchain()?;
    bpf_linker()?;
    python_tools()?;
    mounts()
}

/// Where Python test tools live (a venv of Debian's Python).
pub const TOOLS_VENV: &str = "/var/lib/mamori-tools/venv";
/// The Kubernetes manifest validator the deploy tests run.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

fn python_tools() -> anyhow::Result<()> {
    let bin = format!("{TOOLS_VENV}/bin/kubernetes-validate");
    if Path::new(&bin).exists() {
        return Ok(());
    }
    eprintln!("setup: installing {KUBERNETES_VALIDATE} into {TOOLS_VENV}");
    cmd::run("/usr/bin/python3", &["-m", "venv", TOOLS_VENV])?;
    cmd::run(
        format!("{TOOLS_VENV}/bin/pip"),
        &["install", "-q", KUBERNETES_VALIDATE],
    )
}

fn installed(pkg: &str) -> bool {
    cmd::output("dpkg-query", &["-W", "-f=${Status}", pkg])
        .is_some_and(|s| s.contains("install ok installed"))
}

fn apt() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: installing {}", missing.join(" "));
    // SAFETY: single-threaded at this point; the variable is read by apt.
    unsafe { std::env::set_var("DEBIAN_FRONTEND", "noninteractive") };
    cmd::run("apt-get", &["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    cmd::run("apt-get", &args)
}

/// The pinned toolchain and its components (see `toolchain.rs`).
fn toolchain() -> anyhow::Result<()> {
    let pin = toolchain::pin();
    let have = cmd::output("rustup", &["toolchain", "list"]).unwrap_or_default();
    let components = cmd::output(
        "rustup",
        &[
            "component",
            "list",
            "--installed",
            "--toolchain",
            &pin.channel,
        ],
    )
    .unwrap_or_default();
    if have.lines().any(|l| l.starts_with(&pin.channel))
        && pin
            .components
            .iter()
            .all(|c| components.lines().any(|l| l.starts_with(c.as_str())))
    {
        return Ok(());
    }
    eprintln!(
        "setup: installing the pinned Rust toolchain {} (about 300 MB, once)",
        pin.channel
    );
    cmd::run(
        "rustup",
        &[
            "toolchain",
            "install",
            &pin.channel,
            "--profile",
            "minimal",
            "-c",
            &pin.components.join(","),
        ],
    )
}

fn bpf_linker() -> anyhow::Result<()> {
    if cmd::output("bpf-linker", &["--version"]).is_some_and(|v| v.contains(BPF_LINKER_VERSION)) {
        return Ok(());
    }
    if !Path::new(LLVM_PREFIX).join("lib/libLLVM.so").exists() {
        bail!("{LLVM_PREFIX}/lib/libLLVM.so is missing although llvm-22-dev is installed");
    }
    eprintln!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (a few minutes, once)"
    );
    // bpf-linker's build script finds LLVM through LLVM_PREFIX; llvm-sys
    // through LLVM_SYS_221_PREFIX.
    // SAFETY: single-threaded; read by the child cargo.
    unsafe {
        std::env::set_var("LLVM_PREFIX", LLVM_PREFIX);
        std::env::set_var("LLVM_SYS_221_PREFIX", LLVM_PREFIX);
    }
    cmd::cargo(&[
        "install",
        "bpf-linker",
        "--version",
        BPF_LINKER_VERSION,
        "--locked",
        "--no-default-features",
        "--features",
        "llvm-22",
    ])
    .context("installing bpf-linker")
}

/// tracefs, debugfs and bpffs (the agent also mounts them itself).
fn mounts() -> anyhow::Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for (fstype, target) in [
        ("tracefs", "/sys/kernel/tracing"),
        ("debugfs", "/sys/kernel/debug"),
        ("bpf", "/sys/fs/bpf"),
    ] {
        let mounted = mountinfo
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(target) && l.contains(&format!(" - {fstype} ")));
        if !mounted {
            cmd::run("mount", &["-t", fstype, fstype, target])?;
        }
    }
    Ok(())
}
