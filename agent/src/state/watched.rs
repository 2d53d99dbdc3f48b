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
    /// `(kernel dev, ino)` → path: the identities read last, and those
    /// of the read before that the last one no longer found.
    by_id: HashMap<(u32, u64), usize>,
    /// The identities read last.
    current: HashMap<(u32, u64), usize>,
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
        let paths: Vec<Vec<u8>> = paths.into_iter().collect();
        // The identities read last, moved to the new list's positions (a
        // reload reads the files again, after the events still queued:
        // one removed meanwhile stays known by its former identity).
        let old = std::mem::take(&mut self.paths);
        self.current = self
            .current
            .iter()
            .filter_map(|(id, &i)| {
                let j = paths.iter().position(|p| Some(p) == old.get(i))?;
                Some((*id, j))
            })
            .collect();
        self.paths = paths;
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

    /// Reads the identities again. Events are judged after the fact (a
    /// backlog, a stopped agent): a file that was removed or replaced since
    /// is still known by its former identity until the next read, so an
    /// alias written just before its original was removed is still caught.
    fn refresh(&mut self, now_ns: u64) {
        self.refreshed_ns = now_ns;
        let mut fresh = HashMap::new();
        if self.live {
            for (i, p) in self.paths.iter().enumerate() {
                use std::os::unix::ffi::OsStrExt;
                // The file itself, not what a symlink at its name points to.
                if let Ok(m) = std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(p)) {
                    fresh.insert((kernel_dev(m.dev()), m.ino()), i);
                }
            }
        }
        let mut by_id = fresh.clone();
        for (id, &i) in &self.current {
            by_id.entry(*id).or_insert(i);
        }
        self.current = fresh;
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
        // The former file stays known for one more period, then goes.
        assert!(w.path_of(&info("alias")).is_some());
        w.refresh_if_due(2 * REFRESH_NS);
        assert!(w.path_of(&info("alias")).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A reload watches the list again after the events still queued
    /// happened: a file removed meanwhile is still known by its identity.
    #[test]
    fn a_new_list_keeps_the_identities_read_last() {
        use std::os::unix::ffi::OsStrExt;
        let dir = std::env::temp_dir().join(format!("mamori-rewatch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rules.yaml");
        std::fs::write(&file, "x").unwrap();
        let m = std::fs::metadata(&file).unwrap();
        let info = FileInfo {
            dev: kernel_dev(m.dev()),
            ino: m.ino(),
            ..FileInfo::default()
        };
        let path = file.as_os_str().as_bytes().to_vec();
        let mut w = WatchedFiles::live();
        w.watch([path.clone()]);
        std::fs::remove_file(&file).unwrap();
        w.watch([b"/etc/passwd".to_vec(), path.clone()]);
        assert_eq!(w.path_of(&info), Some(path.as_slice()));
        w.watch([b"/etc/passwd".to_vec()]);
        assert_eq!(w.path_of(&info), None, "no longer watched");
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
