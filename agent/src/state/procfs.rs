//! Reading a process from /proc: the seed at start, and the one lookup an
//! unknown pid gets (after lost events, or for processes older than us).

use std::{fs, path::PathBuf};

use super::{
    container,
    process::{Origin, Process},
};
use crate::event::Text;

/// Root of the proc file system (`HOST_ROOT`-style relocation for pods
/// that mount the host's /proc elsewhere: `MAMORI_PROC`).
pub fn proc_root() -> PathBuf {
    std::env::var_os("MAMORI_PROC").map_or_else(|| PathBuf::from("/proc"), PathBuf::from)
}

/// The mount namespace of `pid` (`mnt:[INODE]`).
pub fn mnt_ns(pid: u32) -> Option<u32> {
    let link = fs::read_link(proc_root().join(pid.to_string()).join("ns/mnt")).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
}

/// Pids of every process now.
pub fn pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir(proc_root()) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// Bytes of `/proc/<pid>/<what>`, bounded.
fn read(pid: u32, what: &str, limit: usize) -> Option<Vec<u8>> {
    let mut v = fs::read(proc_root().join(pid.to_string()).join(what)).ok()?;
    v.truncate(limit);
    Some(v)
}

fn link(pid: u32, what: &str) -> Option<Text> {
    use std::os::unix::ffi::OsStrExt;
    let p = fs::read_link(proc_root().join(pid.to_string()).join(what)).ok()?;
    Some(Text::new(p.as_os_str().as_bytes()))
}

fn split_nul(b: &[u8]) -> Vec<Text> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0).map(Text::new).collect()
}

/// Reads `/proc/<pid>`; `None` when it is gone.
pub fn read_process(pid: u32, boot_wall_ns: u64) -> Option<Process> {
    let stat = String::from_utf8_lossy(&read(pid, "stat", 4096)?).into_owned();
    let (comm, rest) = {
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        (&stat[open + 1..close], &stat[close + 1..])
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    // Fields after the command: state(0) ppid(1) pgrp(2) session(3) tty_nr(4) ... starttime(19)
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let start_ns = boot_wall_ns + (num(19) as u64) * 1_000_000_000 / ticks;
    let tty_nr = num(4) as u32;
    let tty = if tty_nr == 0 {
        0
    } else {
        // tty_nr packs major in bits 8..15 and minor in 0..7 and 20..31.
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        (major << 20) | minor
    };
    let argv = split_nul(&read(pid, "cmdline", 4096).unwrap_or_default());
    let env = split_nul(&read(pid, "environ", 4096).unwrap_or_default());
    let cgroup =
        String::from_utf8_lossy(&read(pid, "cgroup", 8192).unwrap_or_default()).into_owned();
    let (leaf, parent) = cgroup_names(&cgroup);
    let exepath = link(pid, "exe");
    let status =
        String::from_utf8_lossy(&read(pid, "status", 8192).unwrap_or_default()).into_owned();
    let ids = |key: &str| -> (u32, u32) {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                let mut it = v.split_whitespace().filter_map(|x| x.parse::<u32>().ok());
                (it.next().unwrap_or(0), it.next().unwrap_or(0))
            })
            .unwrap_or((0, 0))
    };
    let loginuid = read(pid, "loginuid", 32)
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    let from_memfd = exepath
        .as_ref()
        .is_some_and(|e| e.bytes.starts_with(b"/memfd:"));
    Some(Process {
        pid,
        ppid: num(1) as u32,
        name: Text::from(comm),
        comm: Text::from(comm),
        exe: argv.first().cloned().unwrap_or_default(),
        args: argv.into_iter().skip(1).collect(),
        args_joined: Vec::new(),
        cmdline: Vec::new(),
        exepath: exepath.unwrap_or_default(),
        program: Text::default(),
        cwd: link(pid, "cwd").unwrap_or_default(),
        env,
        env_truncated: false,
        loader_env_truncated: false,
        tty,
        sid: num(3) as u32,
        pgid: num(2) as u32,
        start_ns,
        uid: ids("Uid:").0,
        euid: ids("Uid:").1,
        gid: ids("Gid:").0,
        loginuid,
        exe_ino: 0,
        exe_nlink: u32::MAX,
        // Whether the file has an overlayfs upper copy is not in /proc.
        exe_facts: None,
        from_memfd,
        container: container::from_cgroup(leaf.as_ref(), parent.as_ref()),
        cgroup_id: 0,
        origin: Origin::ProcFs,
        fds: Default::default(),
    })
}

/// Leaf and parent names of the container-relevant cgroup line of
/// `/proc/<pid>/cgroup` (the first line naming a container, else the
/// pids/v2 line).
fn cgroup_names(cgroup: &str) -> (Option<Text>, Option<Text>) {
    let names = |path: &str| {
        let mut parts = path.rsplit('/').filter(|s| !s.is_empty());
        (parts.next().map(Text::from), parts.next().map(Text::from))
    };
    let lines: Vec<&str> = cgroup.lines().collect();
    for l in &lines {
        let path = l.splitn(3, ':').nth(2).unwrap_or_default();
        let (leaf, parent) = names(path);
        if container::from_cgroup(leaf.as_ref(), parent.as_ref()).is_some() {
            return (leaf, parent);
        }
    }
    let path = lines
        .first()
        .and_then(|l| l.splitn(3, ':').nth(2))
        .unwrap_or_default();
    names(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let boot = 1_000;
        let me = read_process(std::process::id(), boot).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(!me.comm.bytes.is_empty());
        assert!(!me.exepath.bytes.is_empty());
        assert!(me.start_ns >= boot);
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(read_process(u32::MAX - 1, boot).is_none());
    }

    #[test]
    fn cgroup_lines() {
        let id = "a".repeat(64);
        let text = format!("12:pids:/libpod_parent/libpod-{id}\n0::/\n");
        let (leaf, parent) = cgroup_names(&text);
        assert_eq!(leaf.unwrap().to_str_lossy(), format!("libpod-{id}"));
        assert_eq!(parent.unwrap().to_str_lossy(), "libpod_parent");
    }
}
