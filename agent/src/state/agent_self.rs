//! The agent itself, as a target: its process and the files that make it
//! (executable, configuration, rules). An act on them by anyone else —
//! a signal, a trace, its memory read or written, its files written,
//! removed or renamed — is an attempt to blind it (`evt.targets_agent`).

use std::path::{Path, PathBuf};

/// The agent's process and files.
#[derive(Debug, Default, Clone)]
pub struct AgentSelf {
    pub pid: u32,
    /// Absolute paths of its executable, configuration and rules files.
    files: Vec<Vec<u8>>,
    /// Rules directories: every file below them.
    dirs: Vec<Vec<u8>>,
}

impl AgentSelf {
    /// This process, its executable and `files` (configuration, rules
    /// files or directories), made absolute.
    pub fn this_process(files: &[PathBuf]) -> Self {
        use std::os::unix::ffi::OsStrExt;
        let mut me = Self {
            pid: std::process::id(),
            ..Self::default()
        };
        let exe = std::fs::read_link("/proc/self/exe").ok();
        for p in exe.iter().chain(files) {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let bytes = abs.as_os_str().as_bytes().to_vec();
            if Path::new(&abs).is_dir() {
                me.dirs.push(bytes);
            } else {
                me.files.push(bytes);
            }
        }
        me
    }

    /// An agent described rather than found (rule tests): `files` are
    /// absolute paths, taken as files.
    pub fn described(pid: u32, files: Vec<Vec<u8>>) -> Self {
        Self {
            pid,
            files,
            dirs: Vec::new(),
        }
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
        let _ = std::fs::remove_dir_all(&dir);
    }
}
