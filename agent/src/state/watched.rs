//! The identity (device, inode) of the files rules name whole: another
//! name for the same file — a hard link, the file reached through a bind
//! mount — is then judged as the file itself (`fd.name` is the watched
//! path, `fd.alias` the name the file was reached by).
//!
//! Paths come from the loaded rules (`RuleSet::compared_paths`); their
//! identities are re-read every [`REFRESH_NS`] of event time, so a file
//! replaced by rename (as `passwd` does with /etc/shadow) is followed.
//! Bounded by the rules: one entry per path they name. Host paths only (the
//! agent's view); a container's own files have their own identities.

use std::{collections::HashMap, os::unix::fs::MetadataExt};

use crate::event::FileInfo;

/// How often identities are re-read, in event time.
pub const REFRESH_NS: u64 = 5_000_000_000;

/// Watched paths and their current identities.
#[derive(Default)]
pub struct WatchedFiles {
    /// Off in offline states (replay, rules tests): no host files to read.
    live: bool,
    paths: Vec<Vec<u8>>,
    /// `(kernel dev, ino)` → path.
    by_id: HashMap<(u32, u64), usize>,
    refreshed_ns: u64,
    /// Bumped whenever the identities change (for the kernel's copy).
    generation: u64,
}

/// The kernel's encoding of a device number (`MKDEV`: major << 20 | minor),
/// as `super_block.s_dev` holds it, from `stat`'s.
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = libc::major(st_dev as libc::dev_t);
    let minor = libc::minor(st_dev as libc::dev_t);
    (major << 20) | (minor & 0xf_ffff)
}

impl WatchedFiles {
    /// A table that reads the host's files.
    pub fn live() -> Self {
        Self {
            live: true,
            ..Self::default()
        }
    }

    /// Watches `paths` (replacing the earlier list) and reads their
    /// identities now.
    pub fn watch(&mut self, paths: impl IntoIterator<Item = Vec<u8>>) {
        self.paths = paths.into_iter().collect();
        self.refresh(self.refreshed_ns);
    }

    /// Re-reads the identities when [`REFRESH_NS`] passed since the last
    /// read (`now_ns`: the event's time).
    #[inline]
    pub fn refresh_if_due(&mut self, now_ns: u64) {
        if self.live && now_ns.saturating_sub(self.refreshed_ns) >= REFRESH_NS {
            self.refresh(now_ns);
        }
    }

    fn refresh(&mut self, now_ns: u64) {
        self.refreshed_ns = now_ns;
        let mut by_id = HashMap::new();
        if self.live {
            for (i, p) in self.paths.iter().enumerate() {
                use std::os::unix::ffi::OsStrExt;
                // The file itself, not what a symlink at its name points to.
                if let Ok(m) = std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(p)) {
                    by_id.insert((kernel_dev(m.dev()), m.ino()), i);
                }
            }
        }
        if by_id != self.by_id {
            self.by_id = by_id;
            self.generation += 1;
        }
    }

    /// Changes whenever the identities do.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The watched path whose file `f` is, if any.
    #[inline]
    pub fn path_of(&self, f: &FileInfo) -> Option<&[u8]> {
        if self.by_id.is_empty() {
            return None;
        }
        let i = *self.by_id.get(&(f.dev, f.ino))?;
        self.paths.get(i).map(Vec::as_slice)
    }

    /// Current identities, for the kernel's prefilter.
    pub fn identities(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.by_id.keys().copied()
    }

    /// Paths watched.
    pub fn paths(&self) -> &[Vec<u8>] {
        &self.paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hard_link_is_the_watched_file_and_a_copy_is_not() {
        let dir = std::env::temp_dir().join(format!("mamori-watched-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "x").unwrap();
        std::fs::hard_link(&file, dir.join("alias")).unwrap();
        std::fs::write(dir.join("copy"), "x").unwrap();
        let info = |p: &str| {
            let m = std::fs::metadata(dir.join(p)).unwrap();
            FileInfo {
                dev: kernel_dev(m.dev()),
                ino: m.ino(),
                ..FileInfo::default()
            }
        };
        let mut w = WatchedFiles::live();
        use std::os::unix::ffi::OsStrExt;
        w.watch([file.as_os_str().as_bytes().to_vec()]);
        assert_eq!(w.path_of(&info("alias")), Some(file.as_os_str().as_bytes()));
        assert_eq!(w.path_of(&info("copy")), None);
        // Replaced by rename: followed at the next refresh.
        std::fs::write(dir.join("new"), "y").unwrap();
        std::fs::rename(dir.join("new"), &file).unwrap();
        assert!(w.path_of(&info("secret")).is_none());
        w.refresh_if_due(REFRESH_NS);
        assert!(w.path_of(&info("secret")).is_some());
        assert!(w.path_of(&info("alias")).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_offline_table_reads_nothing() {
        let mut w = WatchedFiles::default();
        w.watch([b"/etc/passwd".to_vec()]);
        let m = std::fs::metadata("/etc/passwd").unwrap();
        let f = FileInfo {
            dev: kernel_dev(m.dev()),
            ino: m.ino(),
            ..FileInfo::default()
        };
        assert_eq!(w.path_of(&f), None);
    }
}
