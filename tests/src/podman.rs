//! Real containers: podman with runc (the flags that work on these
//! machines, see DESIGN.md), from a local image built out of Debian's
//! busybox-static; nothing is pulled.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
    sync::OnceLock,
};

/// The test image, imported once per test process.
pub const IMAGE: &str = "localhost/mamori-test/busybox:1.0";
/// A file in the image that the tests' rules watch.
pub const MARKER: &str = "/etc/mamori-marker";

/// A root file system from Debian's busybox-static.
pub fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed by cargo xtask setup");
    fs::copy(busybox, bin.join("busybox")).unwrap();
    for tool in ["sh", "cat", "true", "sleep", "ls", "tar"] {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(tool));
    }
    for d in ["etc", "proc", "sys", "dev", "tmp"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(dir.join(MARKER.trim_start_matches('/')), "marker\n").unwrap();
}

/// Imports the busybox image (once); returns its name.
pub fn image() -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mamori-image-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        busybox_rootfs(&rootfs);
        let tar = dir.join("rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap()
            .success();
        assert!(ok, "tar of the busybox rootfs failed");
        let out = Command::new("podman")
            .arg("import")
            .arg(&tar)
            .arg(IMAGE)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = fs::remove_dir_all(&dir);
    });
    IMAGE
}

/// `podman run --rm` with the flags these machines need, then `args`
/// (options, image, command). Returns the output, checked for success.
pub fn run(args: &[&str]) -> Output {
    let out = try_run(args);
    assert!(
        out.status.success(),
        "podman run {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// As [`run`], whatever the container's exit status.
pub fn try_run(args: &[&str]) -> Output {
    try_run_on("none", args)
}

/// As [`try_run`], with the container on `network` (`host`: the host's).
pub fn try_run_on(network: &str, args: &[&str]) -> Output {
    Command::new("podman")
        .args([
            "--runtime",
            "/usr/sbin/runc",
            "--cgroup-manager",
            "cgroupfs",
            "run",
            "--rm",
            "--network",
            network,
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(args)
        .output()
        .unwrap()
}
