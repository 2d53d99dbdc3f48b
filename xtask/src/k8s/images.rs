//! The images the node runs, built here and imported into its containerd
//! (nothing is pulled): the pod sandbox (`pause.c`, static), the agent
//! (`cargo xtask image`) and the workload (Debian's static busybox).

use std::{fs, os::unix::fs::symlink, path::Path};

use anyhow::Context;

use super::{NODE_DIR, namespace};
use crate::{cmd, image};

pub const PAUSE: &str = "localhost/mamori-k8s/pause:3.10";
/// The test workload: a shell and its tools.
pub const WORKLOAD: &str = "localhost/mamori-k8s/busybox:1.0";

const PODMAN: &[&str] = &[
    "--runtime",
    "/usr/sbin/runc",
    "--cgroup-manager",
    "cgroupfs",
];

/// Builds what podman lacks, then imports all three into the node.
pub fn import() -> anyhow::Result<()> {
    let work = Path::new(NODE_DIR).join("images");
    fs::create_dir_all(&work)?;
    pause(&work.join("pause"))?;
    workload(&work.join("workload"))?;
    if !exists(image::IMAGE) {
        image::build()?;
    }
    for name in [PAUSE, WORKLOAD, image::IMAGE] {
        let tar = work.join("image.tar").to_string_lossy().into_owned();
        let _ = fs::remove_file(&tar);
        cmd::quiet(
            "podman",
            &["save", "--format", "docker-archive", "-o", &tar, name],
        )?;
        namespace::inside(&[
            "ctr",
            "--address",
            "/run/containerd/containerd.sock",
            "-n",
            "k8s.io",
            "images",
            "import",
            &tar,
        ])
        .with_context(|| format!("importing {name} into the node's containerd"))?;
        fs::remove_file(&tar)?;
    }
    Ok(())
}

fn exists(name: &str) -> bool {
    cmd::quiet("podman", &["image", "exists", name]).is_ok()
}

fn pause(dir: &Path) -> anyhow::Result<()> {
    if exists(PAUSE) {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let source = cmd::root().join("xtask/k8s/pause.c");
    let binary = dir.join("pause").to_string_lossy().into_owned();
    cmd::quiet(
        "musl-gcc",
        &[
            "-static",
            "-Os",
            "-s",
            "-o",
            &binary,
            &source.to_string_lossy(),
        ],
    )?;
    fs::write(
        dir.join("Containerfile"),
        "FROM scratch\nCOPY pause /pause\nENTRYPOINT [\"/pause\"]\n",
    )?;
    build(dir, PAUSE)
}

fn workload(dir: &Path) -> anyhow::Result<()> {
    if exists(WORKLOAD) {
        return Ok(());
    }
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin"))?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("busybox-static is installed by cargo xtask setup")?;
    fs::copy(busybox, rootfs.join("bin/busybox"))?;
    for tool in ["sh", "cat", "sleep", "ls", "echo", "touch", "id"] {
        symlink("busybox", rootfs.join("bin").join(tool))?;
    }
    for d in ["etc", "proc", "sys", "dev", "tmp", "var/run/secrets"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    fs::write(
        dir.join("Containerfile"),
        "FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/sh\"]\n",
    )?;
    build(dir, WORKLOAD)
}

fn build(dir: &Path, tag: &str) -> anyhow::Result<()> {
    let mut args = PODMAN.to_vec();
    let dir = dir.to_string_lossy();
    args.extend(["build", "-q", "-t", tag, &dir]);
    cmd::quiet("podman", &args).map(drop)
}
