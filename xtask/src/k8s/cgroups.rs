//! The pods' cgroup parent, `/k8stest` in every v1 hierarchy (these
//! machines run cgroups v1 without systemd, and the kubelet wants its
//! `cgroupRoot` to exist): made before the kubelet starts, emptied and
//! removed by `down`.

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::node::signal;

/// The kubelet's `cgroupRoot`, in every hierarchy.
pub const CGROUP: &str = "k8stest";
const CGROUPS: &str = "/sys/fs/cgroup";

/// The v1 hierarchies pods are accounted in.
fn hierarchies() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(CGROUPS)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| !p.ends_with("/unified"))
        .collect();
    v.sort();
    v
}

pub fn create() -> anyhow::Result<()> {
    for h in hierarchies() {
        let dir = format!("{h}/{CGROUP}");
        fs::create_dir_all(&dir).with_context(|| format!("creating {dir}"))?;
        if h.ends_with("/cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                fs::write(
                    format!("{dir}/{f}"),
                    fs::read_to_string(format!("{h}/{f}"))?,
                )?;
            }
        }
    }
    Ok(())
}

/// Kills every process under `/k8stest` and removes the tree, deepest
/// first.
pub fn empty() -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    for h in hierarchies() {
        let top = format!("{h}/{CGROUP}");
        if !Path::new(&top).exists() {
            continue;
        }
        let mut dirs = vec![];
        walk(Path::new(&top), &mut dirs);
        // Children before parents.
        dirs.reverse();
        for d in dirs {
            loop {
                let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                let pids: Vec<i32> = procs.lines().filter_map(|l| l.parse().ok()).collect();
                if pids.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("k8s: processes {pids:?} in {} do not die", d.display());
                }
                pids.iter().for_each(|p| signal(*p, libc::SIGKILL));
                std::thread::sleep(Duration::from_millis(100));
            }
            fs::remove_dir(&d).with_context(|| format!("removing cgroup {}", d.display()))?;
        }
    }
    Ok(())
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    out.push(dir.to_owned());
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&e.path(), out);
        }
    }
}
