//! User and group names, from the passwd and group files of the process's
//! own root: a container's users are the container's, not the host's.
//!
//! Loaded once per mount namespace (through `/proc/<pid>/root` of the first
//! process seen in it), during the state update, so lookups never do I/O.

use rustc_hash::FxHashMap as HashMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub name: String,
    pub home: String,
    pub shell: String,
}

/// One root's users and groups.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Db {
    users: HashMap<u32, User>,
    groups: HashMap<u32, String>,
}

impl Db {
    pub fn parse(passwd: &str, group: &str) -> Self {
        let mut db = Db::default();
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let [name, _, uid, _, _, home, shell, ..] = f.as_slice()
                && let Ok(uid) = uid.parse()
            {
                db.users.entry(uid).or_insert(User {
                    name: (*name).to_owned(),
                    home: (*home).to_owned(),
                    shell: (*shell).to_owned(),
                });
            }
        }
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let [name, _, gid, ..] = f.as_slice()
                && let Ok(gid) = gid.parse()
            {
                db.groups.entry(gid).or_insert_with(|| (*name).to_owned());
            }
        }
        db
    }

    pub fn user(&self, uid: u32) -> Option<&User> {
        self.users.get(&uid)
    }

    pub fn group(&self, gid: u32) -> Option<&str> {
        self.groups.get(&gid).map(String::as_str)
    }
}

#[derive(Default)]
pub struct Users {
    by_mntns: HashMap<u32, Db>,
    /// Replay: never read files, only what was recorded.
    offline: bool,
}

/// Longest passwd/group file read.
const MAX_FILE: u64 = 4 << 20;

fn read_bounded(path: &std::path::Path) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_FILE).read_to_string(&mut s);
    }
    s
}

impl Users {
    /// Loads the database of `mntns` through `pid`'s root, once.
    pub fn prepare(&mut self, mntns: u32, pid: u32) {
        if self.offline || self.by_mntns.contains_key(&mntns) {
            return;
        }
        let root = super::procfs::proc_root()
            .join(pid.to_string())
            .join("root");
        let passwd = read_bounded(&root.join("etc/passwd"));
        let group = read_bounded(&root.join("etc/group"));
        if passwd.is_empty() && group.is_empty() {
            // The process is gone or has no files: do not cache, fall back later.
            return;
        }
        self.by_mntns.insert(mntns, Db::parse(&passwd, &group));
    }

    pub fn db(&self, mntns: u32) -> Option<&Db> {
        self.by_mntns.get(&mntns)
    }

    /// Every database loaded, by mount namespace (for a recording).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Db)> {
        self.by_mntns.iter().map(|(k, v)| (*k, v))
    }

    /// Users that only come from [`Users::insert`] (replay).
    pub fn offline() -> Self {
        Self {
            offline: true,
            ..Self::default()
        }
    }

    pub fn insert(&mut self, mntns: u32, db: Db) {
        self.by_mntns.insert(mntns, db);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group() {
        let db = Db::parse(
            "root:x:0:0:root:/root:/bin/bash\nbad line\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "root:x:0:\nnogroup:x:65534:\n",
        );
        assert_eq!(db.user(0).unwrap().name, "root");
        assert_eq!(db.user(65534).unwrap().home, "/nonexistent");
        assert_eq!(db.group(65534), Some("nogroup"));
        assert!(db.user(1).is_none());
    }

    #[test]
    fn loads_this_hosts_users() {
        let mut u = Users::default();
        u.prepare(1, std::process::id());
        assert_eq!(u.db(1).unwrap().user(0).unwrap().name, "root");
    }
}
