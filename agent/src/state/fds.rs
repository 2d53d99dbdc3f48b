//! Each process's descriptor table, as the event stream shows it: what an
//! fd number refers to, so `close` carries `fd.name` and the socket's
//! addresses. A dup is described by the kernel itself; the table adds only
//! which end of a connection the process is (a socket's role is known only
//! from the call that made it), so rules on dup need the socket calls here,
//! not every open.
//!
//! Kept by opens, sockets, accepts, connects and binds (their exit, so
//! only descriptors that exist), dups and closes; copied on fork (entries
//! are shared, so a fork costs a map of pointers); close-on-exec entries
//! leave at exec. Descriptors opened before mamori started are not known.
//!
//! Bounded twice: per process ([`PER_PROCESS`] descriptors) and for all
//! tables together ([`FdBudget`], in bytes): many processes holding many
//! descriptors with long names must not grow the agent past its limit.
//! What is not kept is counted (`untracked` here, `refused` there).

use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use rustc_hash::FxHashMap as HashMap;

use crate::event::{Event, FileInfo, SockTuple};

/// Descriptors kept per process; more are counted, not kept.
pub const PER_PROCESS: usize = 4096;

/// Bytes all descriptor tables may hold together, by default.
pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;

/// The memory all descriptor tables share: each entry kept costs its
/// names and a fixed overhead; one that would pass the limit is not kept.
#[derive(Debug)]
pub struct FdBudget {
    limit: usize,
    used: AtomicUsize,
    /// Entries not kept because the budget was spent.
    pub refused: AtomicU64,
}

impl FdBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        let ok = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                (u + n <= self.limit).then_some(u + n)
            })
            .is_ok();
        if !ok {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// What an entry costs a table: its names and the map's overhead.
fn cost(e: &FdEntry) -> usize {
    96 + e.name.as_ref().map_or(0, Vec::len) + e.raw.as_ref().map_or(0, Vec::len)
}

const O_CLOEXEC: u64 = 0o2_000_000;
const MFD_CLOEXEC: u64 = 1;

/// What one descriptor refers to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FdEntry {
    /// Absolute path, or `memfd:NAME`.
    pub name: Option<Vec<u8>>,
    /// The path as the program passed it, when it differs from `name`.
    pub raw: Option<Vec<u8>>,
    pub file: Option<FileInfo>,
    pub sock: Option<SockTuple>,
    /// The server end (accepted, bound or listening).
    pub server: bool,
    pub cloexec: bool,
}

/// One process's descriptors.
#[derive(Debug, Default)]
pub struct Fds {
    map: HashMap<i32, Arc<FdEntry>>,
    /// Descriptors not kept because the table (or the budget) was full.
    pub untracked: u64,
    /// What the kept entries cost the budget.
    cost: usize,
    budget: Option<Arc<FdBudget>>,
}

impl Clone for Fds {
    /// A fork's copy: it costs the budget again (the entries are shared,
    /// but the copy keeps them alive); when the budget cannot pay, the
    /// child starts with an empty table, counted.
    fn clone(&self) -> Self {
        let fits = self.budget.as_ref().is_none_or(|b| b.take(self.cost));
        if fits {
            Self {
                map: self.map.clone(),
                untracked: self.untracked,
                cost: self.cost,
                budget: self.budget.clone(),
            }
        } else {
            Self {
                map: HashMap::default(),
                untracked: self.untracked + self.map.len() as u64,
                cost: 0,
                budget: self.budget.clone(),
            }
        }
    }
}

impl Drop for Fds {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give(self.cost);
        }
    }
}

impl Fds {
    pub fn get(&self, fd: i64) -> Option<&FdEntry> {
        let fd = i32::try_from(fd).ok()?;
        self.map.get(&fd).map(Arc::as_ref)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Makes the table pay into `budget` from now on (an empty or
    /// unbudgeted table joining the process table).
    pub fn join(&mut self, budget: &Arc<FdBudget>) {
        if self.budget.is_some() {
            return;
        }
        let owed: usize = self.map.values().map(|e| cost(e)).sum();
        if !budget.take(owed) {
            self.untracked += self.map.len() as u64;
            self.map.clear();
            self.cost = 0;
        } else {
            self.cost = owed;
        }
        self.budget = Some(budget.clone());
    }

    fn insert(&mut self, fd: i64, e: Arc<FdEntry>) {
        let Ok(fd) = i32::try_from(fd) else { return };
        if fd < 0 {
            return;
        }
        if self.map.len() >= PER_PROCESS && !self.map.contains_key(&fd) {
            self.untracked += 1;
            return;
        }
        self.remove(fd);
        let c = cost(&e);
        if let Some(b) = &self.budget
            && !b.take(c)
        {
            self.untracked += 1;
            return;
        }
        self.cost += c;
        self.map.insert(fd, e);
    }

    fn remove(&mut self, fd: i32) {
        if let Some(old) = self.map.remove(&fd) {
            let c = cost(&old);
            self.cost -= c;
            if let Some(b) = &self.budget {
                b.give(c);
            }
        }
    }

    /// What survives an exec: the close-on-exec entries leave.
    pub fn after_exec(mut self) -> Self {
        let gone: Vec<i32> = self
            .map
            .iter()
            .filter(|(_, e)| e.cloexec)
            .map(|(fd, _)| *fd)
            .collect();
        for fd in gone {
            self.remove(fd);
        }
        self
    }

    /// Whether `apply` may change anything for this event.
    pub fn changed_by(ev: &Event) -> bool {
        use mamori_common::syscalls::*;
        let Some(nr) = ev.syscall_nr() else {
            return false;
        };
        ev.ret >= 0
            && matches!(
                nr,
                OPEN | OPENAT
                    | OPENAT2
                    | CREAT
                    | MEMFD_CREATE
                    | SOCKET
                    | ACCEPT
                    | ACCEPT4
                    | CONNECT
                    | BIND
                    | LISTEN
                    | DUP
                    | DUP2
                    | DUP3
                    | FCNTL
                    | OPEN_BY_HANDLE_AT
                    | CLOSE
            )
    }

    /// Applies a successful fd-changing syscall. `seen` is the event's
    /// descriptor as the detector saw it (path, file, socket).
    /// It comes shared, ready to keep: the entry is not copied on the way.
    pub fn apply(&mut self, ev: &Event, seen: Option<Arc<FdEntry>>) {
        let Some(a) = ev.args() else { return };
        if ev.ret < 0 {
            return;
        }
        let arg_fd = i64::from(a[0] as i32);
        use mamori_common::syscalls::*;
        let Some(nr) = ev.syscall_nr() else { return };
        match nr {
            OPEN | OPENAT | OPENAT2 | CREAT | MEMFD_CREATE | OPEN_BY_HANDLE_AT => {
                let Some(e) = seen else { return };
                let cloexec = match nr {
                    OPEN_BY_HANDLE_AT => a[2] & O_CLOEXEC != 0,
                    OPEN => a[1] & O_CLOEXEC != 0,
                    OPENAT => a[2] & O_CLOEXEC != 0,
                    OPENAT2 => crate::event::args::raw_by_name(ev, "flags")
                        .is_some_and(|f| f as u64 & O_CLOEXEC != 0),
                    MEMFD_CREATE => a[1] & MFD_CLOEXEC != 0,
                    _ => false,
                };
                self.insert(ev.ret, with_cloexec(e, cloexec));
            }
            SOCKET | ACCEPT | ACCEPT4 => {
                let Some(e) = seen else { return };
                let cloexec = match nr {
                    SOCKET => a[1] & O_CLOEXEC != 0,
                    ACCEPT4 => a[3] & O_CLOEXEC != 0,
                    _ => false,
                };
                self.insert(ev.ret, with_cloexec(e, cloexec));
            }
            CONNECT | BIND | LISTEN => {
                let Some(sock) = seen.and_then(|e| e.sock) else {
                    return;
                };
                let mut e = self.get(arg_fd).cloned().unwrap_or_default();
                e.sock = Some(sock);
                e.server |= nr != CONNECT;
                self.insert(arg_fd, Arc::new(e));
            }
            DUP | DUP2 | DUP3 | FCNTL => {
                // fcntl arrives only for F_DUPFD and F_DUPFD_CLOEXEC (1030).
                let cloexec =
                    (nr == DUP3 && a[2] & O_CLOEXEC != 0) || (nr == FCNTL && a[1] == 1030);
                // The kernel's description of the new descriptor (the view
                // adds what the table knew), when the event has one.
                if let Some(e) = seen.filter(|e| e.file.is_some() || e.sock.is_some()) {
                    self.insert(ev.ret, with_cloexec(e, cloexec));
                    return;
                }
                let Some(old) = self.map.get(&(arg_fd as i32)) else {
                    // Unknown source: the target no longer holds what we knew.
                    if let Ok(fd) = i32::try_from(ev.ret) {
                        self.remove(fd);
                    }
                    return;
                };
                let e = if old.cloexec == cloexec {
                    old.clone()
                } else {
                    Arc::new(FdEntry {
                        cloexec,
                        ..FdEntry::clone(old)
                    })
                };
                self.insert(ev.ret, e);
            }
            CLOSE => self.remove(arg_fd as i32),
            _ => {}
        }
    }
}

/// `e` with its close-on-exec flag set (in place when not shared yet).
fn with_cloexec(mut e: Arc<FdEntry>, cloexec: bool) -> Arc<FdEntry> {
    if e.cloexec != cloexec {
        Arc::make_mut(&mut e).cloexec = cloexec;
    }
    e
}

#[cfg(test)]
mod tests {
    use mamori_common::syscalls;

    use super::*;
    use crate::event::{Detail, EventType, Task};

    fn ev(ty: &str, args: [u64; 6], ret: i64) -> Event {
        Event {
            ty: EventType::Syscall(syscalls::by_name(ty).unwrap()),
            time_ns: 1,
            task: Task::default(),
            ret,
            detail: Detail::Syscall {
                args,
                params: Vec::new(),
                uring: None,
            },
        }
    }

    #[test]
    fn the_budget_bounds_every_table_together_and_is_paid_back() {
        let budget = FdBudget::new(1000);
        let mut a = Fds::default();
        a.join(&budget);
        let at = (-100i32) as u64;
        // Each entry costs 96 + its name (4 bytes): 10 fit in 1000.
        for fd in 3..20 {
            a.apply(&ev("openat", [at, 0, 0, 0, 0, 0], fd), file("/x/y"));
        }
        assert_eq!(a.len(), 10);
        assert_eq!(budget.used(), 1000);
        assert_eq!(budget.refused.load(Ordering::Relaxed), 7);
        // A fork's copy cannot be paid for: it starts empty, counted.
        let child = a.clone();
        assert!(child.is_empty());
        assert_eq!(child.untracked, a.untracked + 10);
        a.apply(&ev("close", [3, 0, 0, 0, 0, 0], 0), None);
        assert_eq!(budget.used(), 900);
        let kept = a.after_exec();
        drop(kept);
        drop(child);
        assert_eq!(budget.used(), 0, "every byte is given back");
    }

    fn file(name: &str) -> Option<Arc<FdEntry>> {
        Some(Arc::new(FdEntry {
            name: Some(name.as_bytes().to_vec()),
            ..FdEntry::default()
        }))
    }

    fn name(fds: &Fds, fd: i64) -> Option<&[u8]> {
        fds.get(fd)?.name.as_deref()
    }

    #[test]
    fn opens_dups_closes_and_exec() {
        let mut fds = Fds::default();
        let at = (-100i64) as u64;
        fds.apply(
            &ev("openat", [at, 0, O_CLOEXEC, 0, 0, 0], 3),
            file("/etc/a"),
        );
        fds.apply(&ev("openat", [at, 0, 0, 0, 0, 0], 4), file("/etc/b"));
        let sock = SockTuple {
            family: 2,
            rport: 443,
            ..SockTuple::default()
        };
        fds.apply(&ev("socket", [2, 1, 0, 0, 0, 0], 5), Some(Arc::default()));
        fds.apply(
            &ev("connect", [5, 0, 16, 0, 0, 0], 0),
            Some(Arc::new(FdEntry {
                sock: Some(sock),
                ..FdEntry::default()
            })),
        );
        fds.apply(&ev("dup2", [5, 1, 0, 0, 0, 0], 1), None);
        assert_eq!(fds.get(1).unwrap().sock.unwrap().rport, 443);
        fds.apply(&ev("close", [4, 0, 0, 0, 0, 0], 0), None);
        assert_eq!(name(&fds, 4), None);
        // A failed call changes nothing.
        fds.apply(&ev("close", [3, 0, 0, 0, 0, 0], -9), None);
        assert_eq!(name(&fds, 3), Some(&b"/etc/a"[..]));
        // dup of an unknown descriptor forgets the target's old meaning.
        fds.apply(&ev("dup2", [42, 1, 0, 0, 0, 0], 1), None);
        assert!(fds.get(1).is_none());

        let after = fds.after_exec();
        assert!(after.get(3).is_none(), "O_CLOEXEC leaves at exec");
        assert!(after.get(5).is_some());
    }

    #[test]
    fn a_full_table_counts_what_it_does_not_keep() {
        let mut fds = Fds::default();
        let at = (-100i64) as u64;
        for fd in 0..PER_PROCESS as i64 + 10 {
            fds.apply(&ev("openat", [at, 0, 0, 0, 0, 0], fd), file("/x"));
        }
        assert_eq!(fds.len(), PER_PROCESS);
        assert_eq!(fds.untracked, 10);
    }
}
