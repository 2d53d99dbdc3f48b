//! The process table.
//!
//! Invariants:
//! - Keyed by host tgid; threads are not entries (events carry the tgid).
//! - An entry comes from an exec (the kernel's view), a fork (a copy of the
//!   parent), or /proc (seed, or the single lookup of an unknown pid). A pid
//!   /proc no longer has gets a stub from the event header, marked
//!   `Origin::Header`, so it is never looked up twice.
//! - Bounded: past `capacity`, the oldest-started entries go, counted.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use super::{
    container::{self, Container},
    fds::{FdBudget, Fds},
    procfs,
};
use crate::event::{Detail, Event, ExeFacts, Exec, Text, text};

pub const DEFAULT_CAPACITY: usize = 262_144;

/// Where an entry's data came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Exec,
    Fork,
    ProcFs,
    /// Only what an event header says; /proc had nothing.
    Header,
}

#[derive(Clone, Debug)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    /// The name the kernel gave the process at exec (`proc.name`): what a
    /// later rename cannot change. Processes seen first by their fork
    /// inherit it; ones running before the agent have their name of that
    /// moment.
    pub name: Text,
    /// The leader thread's current name, renames included (`proc.comm`
    /// of its own events comes from their header).
    pub comm: Text,
    /// argv[0].
    pub exe: Text,
    /// argv[1..].
    pub args: Vec<Text>,
    /// `args` joined by spaces (`proc.args`), kept by `finish`.
    pub args_joined: Vec<u8>,
    /// name and args (`proc.cmdline`), kept by `finish`.
    pub cmdline: Vec<u8>,
    /// Executable path as the kernel resolved it.
    pub exepath: Text,
    /// The program it runs (`proc.program`, see `program.rs`): the script
    /// for a script, the loaded program for `ld.so PROG`; empty when only
    /// `exepath` is known.
    pub program: Text,
    pub cwd: Text,
    pub env: Vec<Text>,
    /// The environment was longer than the capture bound.
    pub env_truncated: bool,
    /// ... and not every loader variable (`LD_*`) of it is known.
    pub loader_env_truncated: bool,
    pub tty: u32,
    pub sid: u32,
    pub pgid: u32,
    /// Start time, ns since the epoch.
    pub start_ns: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub loginuid: u32,
    pub exe_ino: u64,
    /// `u32::MAX` when unknown.
    pub exe_nlink: u32,
    /// The executable's inode as exec saw it (`None` for a process
    /// that started before the agent).
    pub exe_facts: Option<ExeFacts>,
    pub from_memfd: bool,
    pub container: Option<Container>,
    pub cgroup_id: u64,
    pub origin: Origin,
    pub fds: Fds,
}

impl Process {
    /// Computes the derived strings; call after changing comm or args.
    pub fn finish(mut self) -> Self {
        self.args_joined = text::join(&self.args);
        self.cmdline = cmdline(&self);
        self
    }

    /// What the header alone tells of a process mamori has not seen start.
    pub(crate) fn stub(ev: &Event) -> Self {
        Self {
            pid: ev.task.tgid,
            ppid: ev.task.ppid,
            name: ev.task.comm.clone(),
            comm: ev.task.comm.clone(),
            exe: ev.task.comm.clone(),
            args: Vec::new(),
            args_joined: Vec::new(),
            cmdline: Vec::new(),
            exepath: Text::default(),
            program: Text::default(),
            cwd: Text::default(),
            env: Vec::new(),
            env_truncated: false,
            loader_env_truncated: false,
            tty: 0,
            sid: 0,
            pgid: 0,
            start_ns: 0,
            uid: ev.task.uid,
            euid: ev.task.euid,
            gid: ev.task.gid,
            loginuid: ev.task.loginuid,
            exe_ino: 0,
            exe_nlink: u32::MAX,
            exe_facts: None,
            from_memfd: false,
            container: None,
            cgroup_id: ev.task.cgroup_id,
            origin: Origin::Header,
            fds: Fds::default(),
        }
    }
}

pub struct ProcessTable {
    procs: HashMap<u32, Process>,
    capacity: usize,
    /// What all descriptor tables may hold together.
    fd_budget: Arc<FdBudget>,
    /// Wall-clock ns of boot, for /proc start times.
    boot_wall_ns: u64,
    pub evicted: u64,
    pub proc_lookups: u64,
    /// Replay: an unknown pid gets a stub, /proc is never read.
    pub offline: bool,
}

/// tmpfs/shmem superblock magic: where memfds live.
const TMPFS_MAGIC: u32 = 0x0102_1994;

impl ProcessTable {
    pub fn new(capacity: usize) -> Self {
        Self {
            procs: HashMap::default(),
            capacity,
            fd_budget: FdBudget::new(super::fds::DEFAULT_BUDGET_BYTES),
            boot_wall_ns: boot_wall_ns(),
            evicted: 0,
            proc_lookups: 0,
            offline: false,
        }
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Replaces the descriptor tables' budget (at start, before any
    /// process is kept).
    pub fn set_fd_budget(&mut self, bytes: usize) {
        self.fd_budget = FdBudget::new(bytes);
    }

    pub fn fd_budget(&self) -> &Arc<FdBudget> {
        &self.fd_budget
    }

    /// Processes evicted plus descriptors not kept: what the limits cost.
    pub fn limits_hit(&self) -> (u64, u64) {
        (
            self.evicted,
            self.fd_budget
                .refused
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Wall-clock ns of boot (exec start times are relative to it).
    pub fn boot_wall_ns(&self) -> u64 {
        self.boot_wall_ns
    }

    /// Replaces the boot time (a replay uses the recorded host's).
    pub fn set_boot_wall_ns(&mut self, ns: u64) {
        self.boot_wall_ns = ns;
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn get_mut(&mut self, pid: u32) -> Option<&mut Process> {
        self.procs.get_mut(&pid)
    }

    pub fn get(&self, pid: u32) -> Option<&Process> {
        self.procs.get(&pid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Process> {
        self.procs.values()
    }

    pub fn seed_from_proc(&mut self) {
        for pid in procfs::pids() {
            if let Some(p) = procfs::read_process(pid, self.boot_wall_ns) {
                self.insert(p);
            }
        }
    }

    /// Adds or replaces an entry (seeding, exec, fork; benchmarks and replay).
    pub fn insert(&mut self, p: Process) {
        let mut p = p.finish();
        p.fds.join(&self.fd_budget);
        if self.procs.len() >= self.capacity && !self.procs.contains_key(&p.pid) {
            self.evict();
        }
        self.procs.insert(p.pid, p);
    }

    /// Drops the oldest tenth of the table.
    fn evict(&mut self) {
        let mut starts: Vec<(u64, u32)> =
            self.procs.values().map(|p| (p.start_ns, p.pid)).collect();
        starts.sort_unstable();
        let n = (self.capacity / 10).max(1);
        for (_, pid) in starts.into_iter().take(n) {
            self.procs.remove(&pid);
            self.evicted += 1;
        }
    }

    /// Makes sure `pid` has an entry: /proc once, else a stub.
    pub fn ensure(&mut self, pid: u32, ev: &Event) -> &Process {
        if !self.procs.contains_key(&pid) {
            self.proc_lookups += 1;
            let found = if self.offline {
                None
            } else {
                procfs::read_process(pid, self.boot_wall_ns)
            };
            let p = found.unwrap_or_else(|| Process::stub(ev));
            self.insert(p);
        }
        let ppid = ev.task.ppid;
        let p = self.procs.entry(pid).or_insert_with(|| Process::stub(ev));
        // The header is the live truth for the parent (reparenting) and name.
        if ev.task.tgid == pid {
            p.ppid = ppid;
            if p.comm != ev.task.comm {
                p.comm = ev.task.comm.clone();
            }
        }
        p
    }

    /// A new task. Threads share their process's entry; a new process
    /// starts as a copy of its parent.
    pub fn fork(&mut self, ev: &Event) {
        let Detail::Fork {
            child_tgid,
            clone_flags,
            ..
        } = ev.detail
        else {
            return;
        };
        const CLONE_THREAD: u64 = 0x0001_0000;
        if clone_flags & CLONE_THREAD != 0 || child_tgid == ev.task.tgid {
            return;
        }
        let parent = self.ensure(ev.task.tgid, ev).clone();
        let child = Process {
            pid: child_tgid,
            ppid: parent.pid,
            start_ns: ev.time_ns,
            origin: Origin::Fork,
            ..parent
        };
        self.insert(child);
    }

    /// The process's new image.
    pub fn exec(&mut self, ev: &Event, x: &Exec) -> &Process {
        let pid = ev.task.tgid;
        let exepath = x.exe_path.clone().unwrap_or_default();
        let file = x.exe_file.unwrap_or_default();
        let from_memfd = exepath.bytes.starts_with(b"/memfd:")
            && (file.fs_magic == TMPFS_MAGIC || x.exe_nlink == 0);
        // A list cut at the capture bound: its last item says so.
        let mut args = x.args.clone();
        if let Some(last) = args.last_mut().filter(|_| x.args_truncated) {
            last.truncated = true;
        }
        let cwd = x.cwd.clone().unwrap_or_default();
        let program = super::program::of(x, &exepath, &args, &cwd.bytes);
        let p = Process {
            pid,
            ppid: ev.task.ppid,
            // Through a loader, the program it loads names the process.
            name: program.name.unwrap_or_else(|| exec_name(&ev.task.comm, x)),
            comm: ev.task.comm.clone(),
            exe: args.first().cloned().unwrap_or_default(),
            args: args.iter().skip(1).cloned().collect(),
            args_joined: Vec::new(),
            cmdline: Vec::new(),
            exepath,
            program: program.path,
            cwd,
            env: x.env.clone(),
            env_truncated: x.env_truncated,
            loader_env_truncated: x.loader_env_truncated,
            tty: x.tty,
            sid: x.sid,
            pgid: x.pgid,
            start_ns: self.boot_wall_ns + x.start_boot_ns,
            uid: ev.task.uid,
            euid: ev.task.euid,
            gid: ev.task.gid,
            loginuid: ev.task.loginuid,
            exe_ino: file.ino,
            exe_nlink: x.exe_nlink,
            exe_facts: x.exe_facts,
            from_memfd,
            container: container::from_cgroup(x.cgroup_leaf.as_ref(), x.cgroup_parent.as_ref()),
            cgroup_id: ev.task.cgroup_id,
            origin: Origin::Exec,
            // The old image's table, kept in place (no copy).
            fds: self
                .procs
                .get_mut(&pid)
                .map(|old| std::mem::take(&mut old.fds).after_exec())
                .unwrap_or_default(),
        };
        self.insert(p);
        &self.procs[&pid]
    }

    /// A successful chdir/fchdir: the new working directory (the kernel's
    /// path for fchdir, the argument resolved against the old one for chdir).
    pub fn chdir(&mut self, ev: &Event) {
        let Some(p) = self.procs.get_mut(&ev.task.tgid) else {
            return;
        };
        let new = match ev.params().first() {
            Some(crate::event::Param::Path {
                path,
                partial: false,
            }) => path.bytes.clone(),
            Some(crate::event::Param::Str(raw)) => {
                text::resolve(&p.cwd.bytes, &raw.bytes).into_owned()
            }
            _ => return,
        };
        p.cwd = Text::new(new);
    }

    pub fn exit(&mut self, pid: u32) {
        self.procs.remove(&pid);
    }

    /// The `n`-th ancestor of `pid` (0 = itself).
    pub fn ancestor(&self, pid: u32, n: u32) -> Option<&Process> {
        let mut cur = self.procs.get(&pid)?;
        for _ in 0..n {
            if cur.ppid == 0 || cur.ppid == cur.pid {
                return None;
            }
            cur = self.procs.get(&cur.ppid)?;
        }
        Some(cur)
    }

    /// Ancestors of `pid` from its parent up, at most `max`.
    pub fn ancestors(&self, pid: u32, max: usize) -> Vec<&Process> {
        let mut out = Vec::new();
        let Some(mut cur) = self.procs.get(&pid) else {
            return out;
        };
        while out.len() < max && cur.ppid != 0 && cur.ppid != cur.pid {
            match self.procs.get(&cur.ppid) {
                Some(p) => {
                    out.push(p);
                    cur = p;
                }
                None => break,
            }
        }
        out
    }
}

/// Wall-clock ns at boot (`CLOCK_REALTIME - CLOCK_BOOTTIME`).
fn boot_wall_ns() -> u64 {
    let now = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid out-pointer.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    now(libc::CLOCK_REALTIME).saturating_sub(now(libc::CLOCK_BOOTTIME))
}

/// The name a process gets at exec: the kernel's (the basename of the
/// name passed to exec, which for a script is the script), except when
/// that name was only a handle on the file (`/proc/self/exe`,
/// `/dev/fd/3`): then it says nothing ("exe", "3") and the program may
/// rename itself afterwards, so the resolved executable's name stands in,
/// cut as the kernel cuts names.
fn exec_name(comm: &Text, x: &Exec) -> Text {
    let Some(filename) = x.filename.as_ref().map(|f| f.bytes.as_slice()) else {
        return comm.clone();
    };
    let handle = filename.starts_with(b"/dev/fd/")
        || (filename.starts_with(b"/proc/")
            && (filename.ends_with(b"/exe") || filename.windows(4).any(|w| w == b"/fd/")));
    // Newer kernels name an fd exec after the file itself: then the
    // kernel's name is already the truth.
    let named_after_handle = filename.rsplit(|&c| c == b'/').next() == Some(&comm.bytes[..]);
    let path = x
        .exe_path
        .as_ref()
        .map(|p| p.bytes.as_slice())
        .unwrap_or_default();
    let path = path.strip_suffix(b" (deleted)").unwrap_or(path);
    let base = path.rsplit(|&c| c == b'/').next().unwrap_or_default();
    if !handle || !named_after_handle || base.is_empty() {
        return comm.clone();
    }
    Text::new(&base[..base.len().min(mamori_common::COMM_LEN - 1)])
}

/// `proc.cmdline`: the name and the arguments.
pub fn cmdline(p: &Process) -> Vec<u8> {
    let mut out = p.name.bytes.clone();
    if !p.args.is_empty() {
        out.push(b' ');
        out.extend(text::join(&p.args));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, Param, Task};

    #[test]
    fn the_exec_name_is_the_kernels_unless_it_names_a_handle() {
        let x = |filename: &str, path: &str| Exec {
            filename: Some(filename.into()),
            exe_path: Some(path.into()),
            ..Exec::default()
        };
        let name = |comm: &str, e: &Exec| exec_name(&comm.into(), e).to_str_lossy().into_owned();
        assert_eq!(name("cat", &x("/bin/cat", "/usr/bin/cat")), "cat");
        // A script: the kernel names it after the script, not the interpreter.
        assert_eq!(
            name("backup.sh", &x("/opt/backup.sh", "/usr/bin/dash")),
            "backup.sh"
        );
        // busybox re-executing itself for an applet; fexecve; a memfd.
        assert_eq!(
            name("exe", &x("/proc/self/exe", "/usr/bin/busybox")),
            "busybox"
        );
        assert_eq!(
            name("3", &x("/dev/fd/3", "/tmp/x/a-very-long-program-name")),
            "a-very-long-pro"
        );
        assert_eq!(
            name("4", &x("/proc/self/fd/4", "/memfd:payload (deleted)")),
            "memfd:payload"
        );
        // An fd exec the kernel already named after the file (runc from its
        // sealed copy, whose path reads "/").
        assert_eq!(name("runc", &x("/dev/fd/6", "/")), "runc");
        assert_eq!(name("6", &x("/dev/fd/6", "/")), "6");
    }

    fn ev(ty: &'static str, pid: u32, params: Vec<Param>) -> Event {
        Event {
            ty: EventType::Syscall(mamori_common::syscalls::by_name(ty).unwrap()),
            time_ns: 1,
            task: Task {
                tgid: pid,
                tid: pid,
                ppid: 1,
                comm: Text::from("sh"),
                ..Task::default()
            },
            ret: 0,
            detail: Detail::Syscall {
                args: [0; 6],
                params,
                uring: None,
            },
        }
    }

    #[test]
    fn chdir_moves_the_working_directory() {
        let mut t = ProcessTable::new(16);
        let pid = u32::MAX - 7; // no such process: a stub from the header
        t.ensure(pid, &ev("chdir", pid, vec![]));
        t.procs.get_mut(&pid).unwrap().cwd = Text::from("/home/u");
        t.chdir(&ev(
            "chdir",
            pid,
            vec![Param::Str(Text::from("../srv/./app"))],
        ));
        assert_eq!(t.get(pid).unwrap().cwd, Text::from("/home/srv/app"));
        t.chdir(&ev(
            "fchdir",
            pid,
            vec![Param::Path {
                path: Text::from("/var/log"),
                partial: false,
            }],
        ));
        assert_eq!(t.get(pid).unwrap().cwd, Text::from("/var/log"));
    }

    #[test]
    fn ancestry_and_capacity() {
        let mut t = ProcessTable::new(10);
        for pid in 2..=12u32 {
            let mut p = Process::stub(&ev("open", pid, vec![]));
            p.ppid = pid - 1;
            p.start_ns = u64::from(pid);
            t.insert(p);
        }
        assert!(t.len() <= 10);
        assert!(t.evicted > 0);
        assert_eq!(t.ancestor(12, 2).unwrap().pid, 10);
        assert_eq!(
            t.ancestors(12, 3).iter().map(|p| p.pid).collect::<Vec<_>>(),
            [11, 10, 9]
        );
    }
}
