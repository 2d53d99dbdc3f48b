//! State the rules need beyond one event: processes (ancestry, executable,
//! arguments), users, containers. Kept by the event stream, seeded from
//! /proc at start.
//!
//! Invariant: `apply_before` runs before an event is evaluated (so an exec
//! is evaluated with its new image), `apply_after` after (so an exit is
//! evaluated with the process still known).

pub mod agent_self;
pub mod cni;
pub mod container;
pub mod cri;
pub mod fds;
pub mod fdview;
pub mod names;
pub mod process;
pub mod procfs;
pub mod program;
pub mod runtime;
pub mod users;
pub mod watched;

pub use process::{Process, ProcessTable};

use std::sync::Arc;

use crate::event::{Detail, Event};

/// Everything kept between events.
pub struct State {
    pub processes: ProcessTable,
    pub users: users::Users,
    pub containers: container::Containers,
    /// The host's mount namespace (`/proc/1/ns/mnt`), 0 when unknown
    /// (replay, tests): a cgroup named like a container counts only when
    /// the runtime knows the container or the process's mount namespace
    /// is not this one.
    pub host_mntns: u32,
    /// Identities of the files rules name whole (`fd.name` of another name
    /// for one of them is its own path).
    pub watched: watched::WatchedFiles,
    /// The agent as a target (`evt.targets_agent`); `None` offline.
    pub agent: Option<agent_self::AgentSelf>,
    /// Paths the kernel could not walk to the root (`fd.partial_name`),
    /// counted for the internal alert.
    pub partial_paths: u64,
    /// Addresses of the domain names rules compare `fd.*ip.name` with.
    pub names: names::Names,
}

impl State {
    /// A state seeded from /proc, looking container metadata up under
    /// `host_root` and on the given CRI sockets (default: the usual ones).
    pub fn from_proc(
        host_root: std::path::PathBuf,
        cri_sockets: Vec<std::path::PathBuf>,
        fd_table_bytes: usize,
    ) -> Self {
        let mut s = Self::empty();
        s.processes.set_fd_budget(fd_table_bytes);
        // init's, else kthreadd's: kernel threads live in the initial
        // mount namespace (init's link may be unreadable, as under
        // some VM inits).
        s.host_mntns = procfs::mnt_ns(1).or_else(|| procfs::mnt_ns(2)).unwrap_or(0);
        s.containers = container::Containers::new(Some(host_root), cri_sockets);
        s.watched = watched::WatchedFiles::live();
        s.processes.seed_from_proc();
        for p in s.processes.iter() {
            if let Some(c) = &p.container {
                s.containers.learn(p.cgroup_id, c.clone());
            }
        }
        s
    }

    /// A state that only learns from records (replay, rules tests): no
    /// /proc, files or runtimes; exec start times count from the recorded
    /// host's boot.
    pub fn offline(boot_wall_ns: u64) -> Self {
        let mut s = Self::empty();
        s.processes.offline = true;
        s.processes.set_boot_wall_ns(boot_wall_ns);
        s.users = users::Users::offline();
        s
    }

    /// An empty state (tests, replay).
    pub fn empty() -> Self {
        Self {
            processes: ProcessTable::new(process::DEFAULT_CAPACITY),
            users: users::Users::default(),
            containers: container::Containers::default(),
            host_mntns: 0,
            watched: watched::WatchedFiles::default(),
            agent: None,
            partial_paths: 0,
            names: names::Names::default(),
        }
    }

    /// Whether `c`, which a process's cgroup names, is a container: its
    /// runtime knows it, or the process (mount namespace `mntns`) is not
    /// in the host's mount namespace. A cgroup's name alone decides
    /// nothing: anyone who can make a cgroup can name it.
    pub fn confirms(&self, c: &container::Container, mntns: u32) -> bool {
        self.host_mntns == 0
            || mntns != self.host_mntns
            || matches!(
                self.containers.meta(&c.full_id),
                Some(container::Meta::Known(_))
            )
    }

    /// The container `ev` belongs to. An exec into a container not seen
    /// before starts its metadata lookup here, before the event is
    /// evaluated.
    pub fn container_of(&mut self, ev: &Event) -> Option<Arc<str>> {
        if let Detail::Exec(x) = &ev.detail {
            let c = container::from_cgroup(x.cgroup_leaf.as_ref(), x.cgroup_parent.as_ref())?;
            let id = c.full_id.clone();
            self.containers.learn(ev.task.cgroup_id, c);
            return Some(id);
        }
        self.processes
            .get(ev.task.tgid)
            .and_then(|p| p.container.as_ref())
            .or_else(|| self.containers.by_cgroup(ev.task.cgroup_id))
            .map(|c| c.full_id.clone())
    }

    pub fn apply_before(&mut self, ev: &Event) {
        self.watched.refresh_if_due(ev.time_ns);
        if ev.params().iter().any(crate::event::Param::is_cut_path) {
            self.partial_paths += 1;
        }
        self.users.prepare(ev.task.mntns, ev.task.tgid);
        match &ev.detail {
            Detail::Exec(x) => {
                let p = self.processes.exec(ev, x);
                if let Some(c) = p.container.clone() {
                    self.containers.learn(ev.task.cgroup_id, c);
                }
            }
            Detail::Fork { .. } => self.processes.fork(ev),
            _ => {
                self.processes.ensure(ev.task.tgid, ev);
                use mamori_common::syscalls::{CHDIR, FCHDIR};
                if ev.ret == 0 && matches!(ev.syscall_nr(), Some(CHDIR | FCHDIR)) {
                    self.processes.chdir(ev);
                }
            }
        }
    }

    pub fn apply_after(&mut self, ev: &Event) {
        let seen = fds::Fds::changed_by(ev).then(|| {
            self.processes
                .get(ev.task.tgid)
                .and_then(|p| fdview::FdView::of(ev, Some(p)))
                .map(|v| v.entry())
        });
        if ev.ret == 0
            && ev.changes_ids()
            && let Some(p) = self.processes.get_mut(ev.task.tgid)
        {
            p.uid = ev.task.uid;
            p.euid = ev.task.euid;
            p.gid = ev.task.gid;
        }
        if let Some(seen) = seen
            && let Some(p) = self.processes.get_mut(ev.task.tgid)
        {
            p.fds.apply(ev, seen);
        }
        if let Detail::Exit {
            group_dead: true, ..
        } = ev.detail
        {
            self.processes.exit(ev.task.tgid);
        }
    }
}
