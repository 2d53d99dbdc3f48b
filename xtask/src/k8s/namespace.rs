//! The node's private mount and network namespace, pinned by two files so
//! that every daemon can enter it (`nsenter`) and `down` can find it.
//!
//! Inside: `/` is shared (the kubelet propagates volume mounts), `/run` is
//! a tmpfs (containerd's sockets and state, runc's, the pods' netns files),
//! `/var/log`, `/var/lib/cni` and `/var/lib/mamori` are the node's own
//! directories, and the sysctls the kubelet would set host-wide read as it
//! wants them, so it writes nothing.

use std::{fs, os::unix::fs::MetadataExt, path::Path};

use super::{NODE_DIR, NODE_IP};
use crate::cmd;

pub fn mnt() -> String {
    format!("{NODE_DIR}/ns/mnt")
}

pub fn net() -> String {
    format!("{NODE_DIR}/ns/net")
}

/// The kubelet's expected values (`setupKernelTunables`): with these read
/// back, it leaves the host's settings alone.
pub const SYSCTLS: &[(&str, &str)] = &[
    ("vm/overcommit_memory", "1"),
    ("vm/panic_on_oom", "0"),
    ("kernel/panic", "10"),
    ("kernel/panic_on_oops", "1"),
];

/// Made by `up` when missing; `down` removes it again.
const SPOOL_PARENT: &str = "/var/lib/mamori";

/// The `kubernetes` Service's address, which pods (the agent's rules
/// watch among them) use for the API. The node runs no kube-proxy: two
/// DNAT rules send it to the API server, as kube-proxy would.
const API_SERVICE_IP: &str = "10.96.0.1";

pub fn create() -> anyhow::Result<()> {
    let dir = format!("{NODE_DIR}/ns");
    fs::create_dir_all(&dir)?;
    // Namespace files may only be pinned on a private mount.
    cmd::quiet("mount", &["--bind", &dir, &dir])?;
    cmd::quiet("mount", &["--make-private", &dir])?;
    fs::write(mnt(), "")?;
    fs::write(net(), "")?;
    cmd::quiet(
        "unshare",
        &[
            &format!("--mount={}", mnt()),
            &format!("--net={}", net()),
            "true",
        ],
    )?;
    for d in ["var/log", "var/lib/cni", "var/lib/mamori", "sysctl"] {
        fs::create_dir_all(format!("{NODE_DIR}/{d}"))?;
    }
    if !Path::new(SPOOL_PARENT).exists() {
        fs::create_dir_all(SPOOL_PARENT)?;
        fs::write(format!("{NODE_DIR}/made-var-lib-mamori"), "")?;
    }
    let mut script = format!(
        "set -e
mount --make-rshared /
mount -t tmpfs -o mode=0755 node-run /run
mount --bind {NODE_DIR}/var/log /var/log
mount --bind {NODE_DIR}/var/lib/cni /var/lib/cni
mount --bind {NODE_DIR}/var/lib/mamori {SPOOL_PARENT}
ip link set lo up
ip link add node0 type veth peer name node0-peer
ip addr add {NODE_IP}/24 dev node0
ip link set node0 up
ip link set node0-peer up
ip route add default via 10.250.0.254 dev node0
iptables -t nat -A OUTPUT -d {API_SERVICE_IP} -p tcp --dport 443 -j DNAT --to-destination {NODE_IP}:6443
iptables -t nat -A PREROUTING -d {API_SERVICE_IP} -p tcp --dport 443 -j DNAT --to-destination {NODE_IP}:6443
"
    );
    for (name, value) in SYSCTLS {
        let file = format!("{NODE_DIR}/sysctl/{}", name.replace('/', "."));
        fs::write(&file, format!("{value}\n"))?;
        script += &format!("mount --bind {file} /proc/sys/{name}\n");
    }
    inside(&["sh", "-c", &script]).map(drop)
}

/// Runs a command inside the namespace; returns its stdout.
pub fn inside(args: &[&str]) -> anyhow::Result<String> {
    let mut full = vec![
        format!("--mount={}", mnt()),
        format!("--net={}", net()),
        "--".into(),
    ];
    full.extend(args.iter().map(|s| (*s).to_owned()));
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    cmd::quiet("nsenter", &full)
}

/// The namespace's identity as `/proc/PID/ns/mnt` shows it, if it exists.
pub fn mnt_id() -> Option<String> {
    let ino = fs::metadata(mnt()).ok()?.ino();
    // An empty, unpinned file has an ordinary inode: not the namespace.
    is_pinned().then(|| format!("mnt:[{ino}]"))
}

fn is_pinned() -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(mnt().as_str()))
}

/// Unpins the namespaces (they vanish with their last process).
pub fn remove() -> anyhow::Result<()> {
    for f in [mnt(), net(), format!("{NODE_DIR}/ns")] {
        let c = std::ffi::CString::new(f)?;
        // SAFETY: a valid C string; detaching mounts this module made.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    let marker = format!("{NODE_DIR}/made-var-lib-mamori");
    if Path::new(&marker).exists() {
        let _ = fs::remove_dir(SPOOL_PARENT);
        let _ = fs::remove_file(marker);
    }
    Ok(())
}
