//! State the rules need beyond one event: processes (ancestry, executable,
//! arguments), users, containers. Kept by the event stream, seeded from
//! /proc at start.
//!
//! Invariant: `apply_before` runs before an event is evaluated (so an exec
//! is evaluated with its new image), `apply_after` after (so an exit is
//! evaluated with the process still known).

pub mod container;
pub mod process;
pub mod procfs;
pub mod users;

pub use process::{Process, ProcessTable};

use crate::event::{Detail, Event};

/// Everything kept between events.
pub struct State {
    pub processes: ProcessTable,
    pub users: users::Users,
    pub containers: container::Containers,
}

impl State {
    /// A state seeded from /proc.
    pub fn from_proc() -> Self {
        let mut s = Self::empty();
        s.processes.seed_from_proc();
        for p in s.processes.iter() {
            if let Some(c) = &p.container {
                s.containers.learn(p.cgroup_id, c.clone());
            }
        }
        s
    }

    /// An empty state (tests, replay).
    pub fn empty() -> Self {
        Self {
            processes: ProcessTable::new(process::DEFAULT_CAPACITY),
            users: users::Users::default(),
            containers: container::Containers::default(),
        }
    }

    pub fn apply_before(&mut self, ev: &Event) {
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
                if ev.ret == 0 && matches!(ev.ty.name(), "chdir" | "fchdir") {
                    self.processes.chdir(ev);
                }
            }
        }
    }

    pub fn apply_after(&mut self, ev: &Event) {
        if let Detail::Exit {
            group_dead: true, ..
        } = ev.detail
        {
            self.processes.exit(ev.task.tgid);
        }
    }
}
