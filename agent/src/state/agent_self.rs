//! The agent itself, as a target: its process and the files that make it
//! (executable, configuration, rules). An act on them by anyone else —
//! a signal, a trace, its memory read or written, its files written,
//! removed or renamed, its bpf maps and links taken or changed — is an
//! attempt to blind it (`evt.targets_agent`).

use std::path::{Path, PathBuf};

/// The agent's process and files.
#[derive(Debug, Default, Clone)]
pub struct AgentSelf {
    pub pid: u32,
    /// Absolute paths of its executable, configuration and rules files.
    files: Vec<Vec<u8>>,
    /// Rules directories: every file below them.
    dirs: Vec<Vec<u8>>,
    /// Its bpf maps, links and programs, by kernel id.
    bpf: Vec<(BpfKind, u32)>,
}

/// A kind of bpf object, as `/proc/PID/fdinfo` names its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BpfKind {
    Map,
    Link,
    Prog,
}

impl BpfKind {
    const ALL: [(BpfKind, &'static str); 3] = [
        (BpfKind::Map, "map_id:"),
        (BpfKind::Link, "link_id:"),
        (BpfKind::Prog, "prog_id:"),
    ];

    /// The kind of object a `bpf` command takes a handle to or changes,
    /// for the commands that can blind the agent: a map or link fd by id
    /// (the first step of every change by another process), a map's
    /// elements updated, deleted or frozen, a link updated or detached.
    /// Taking a program fd by id is left out: `bpftool prog` does it to
    /// list programs, and a program fd changes nothing by itself.
    pub fn changed_by(cmd: u64) -> Option<BpfKind> {
        match cmd {
            // MAP_UPDATE_ELEM, MAP_DELETE_ELEM, MAP_GET_FD_BY_ID, MAP_FREEZE
            2 | 3 | 14 | 22 => Some(BpfKind::Map),
            // LINK_UPDATE, LINK_GET_FD_BY_ID, LINK_DETACH
            29 | 30 | 34 => Some(BpfKind::Link),
            _ => None,
        }
    }
}

impl AgentSelf {
    /// This process, its executable and `files` (configuration, rules
    /// files or directories), made absolute.
    pub fn this_process(files: &[PathBuf]) -> Self {
        let (files, dirs) = own_paths(files);
        Self {
            pid: std::process::id(),
            bpf: own_bpf_objects(),
            files,
            dirs,
        }
    }

    /// An agent described rather than found (rule tests): `files` are
    /// absolute paths, taken as files.
    pub fn described(pid: u32, files: Vec<Vec<u8>>) -> Self {
        Self {
            pid,
            files,
            dirs: Vec::new(),
            bpf: Vec::new(),
        }
    }

    /// Whether the bpf object `kind` `id` is one of the agent's.
    pub fn owns_bpf(&self, kind: BpfKind, id: u32) -> bool {
        self.bpf.contains(&(kind, id))
    }

    /// Whether `path` is one of the agent's files.
    pub fn owns(&self, path: &[u8]) -> bool {
        self.files.iter().any(|f| f == path)
            || self.dirs.iter().any(|d| {
                path.strip_prefix(d.as_slice())
                    .is_some_and(|rest| rest.starts_with(b"/"))
            })
    }

    /// Whether `tid` is a thread of the agent (a described agent has one).
    pub fn has_thread(&self, tid: i32) -> bool {
        tid > 0
            && (tid as u32 == self.pid
                || self.pid == std::process::id()
                    && Path::new(&format!("/proc/{}/task/{tid}", self.pid)).exists())
    }

    /// Whether `path` is one of the agent's `/proc` files that expose or
    /// change its memory.
    pub fn is_memory_file(&self, path: &[u8]) -> bool {
        let prefix = format!("/proc/{}/", self.pid);
        path.strip_prefix(prefix.as_bytes())
            .is_some_and(|rest| matches!(rest, b"mem" | b"environ") || rest.ends_with(b"/mem"))
    }
}

/// This process's executable and `files` (configuration, rules files or
/// directories), made absolute with symlinks resolved (the kernel's paths
/// are): `(files, directories)`.
pub fn own_paths(files: &[PathBuf]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    use std::os::unix::ffi::OsStrExt;
    let (mut out, mut dirs) = (Vec::new(), Vec::new());
    let exe = std::fs::read_link("/proc/self/exe").ok();
    for p in exe.iter().chain(files) {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let bytes = abs.as_os_str().as_bytes().to_vec();
        if Path::new(&abs).is_dir() {
            dirs.push(bytes);
        } else {
            out.push(bytes);
        }
    }
    (out, dirs)
}

/// The bpf objects this process holds descriptors of (loaded and
/// attached before the state is seeded): each bpf fd's `fdinfo` names its
/// map, link or program id. A link's fdinfo also names its program; only
/// the first id line of each kind counts.
fn own_bpf_objects() -> Vec<(BpfKind, u32)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fdinfo") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(info) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        out.extend(bpf_ids(&info));
    }
    out.sort_unstable_by_key(|&(k, id)| (k as u8, id));
    out.dedup();
    out
}

/// The bpf ids one `fdinfo` file names.
fn bpf_ids(fdinfo: &str) -> Vec<(BpfKind, u32)> {
    BpfKind::ALL
        .iter()
        .filter_map(|&(kind, key)| {
            let line = fdinfo.lines().find(|l| l.starts_with(key))?;
            let id = line[key.len()..].trim().parse().ok()?;
            Some((kind, id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn its_files_and_the_files_below_its_rules_directories_are_its_own() {
        let dir = std::env::temp_dir().join(format!("mamori-self-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rules.d")).unwrap();
        std::fs::write(dir.join("mamori.yaml"), "").unwrap();
        let me = AgentSelf::this_process(&[dir.join("mamori.yaml"), dir.join("rules.d")]);
        let s = |p: &str| format!("{}/{p}", dir.display()).into_bytes();
        assert!(me.owns(&s("mamori.yaml")));
        assert!(me.owns(&s("rules.d/x.yaml")));
        assert!(!me.owns(&s("rules.dx/x.yaml")));
        assert!(!me.owns(&s("other.yaml")));
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        use std::os::unix::ffi::OsStrExt;
        assert!(me.owns(exe.as_os_str().as_bytes()));
        assert!(me.is_memory_file(format!("/proc/{}/mem", me.pid).as_bytes()));
        assert!(!me.is_memory_file(format!("/proc/{}/status", me.pid).as_bytes()));
        assert!(me.has_thread(me.pid as i32));
        assert!(!me.owns_bpf(BpfKind::Map, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_links_fdinfo_names_the_link_and_its_program() {
        let link = "pos:\t0\nflags:\t02000002\nlink_type:\tperf\nlink_id:\t41\nprog_tag:\tab\nprog_id:\t77\n";
        assert_eq!(
            bpf_ids(link),
            vec![(BpfKind::Link, 41), (BpfKind::Prog, 77)]
        );
        let map = "map_type:\t2\nkey_size:\t4\nmap_id:\t9\n";
        assert_eq!(bpf_ids(map), vec![(BpfKind::Map, 9)]);
        assert!(bpf_ids("pos:\t0\nflags:\t02\n").is_empty());
    }
}
