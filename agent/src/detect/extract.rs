//! Field values for rules: one event seen with the agent's state.
//!
//! Fields the agent cannot know are `None` (Falco's `<NA>`), never a
//! made-up value. Which fields are never or only partly filled, and why,
//! is `mamori_rules::fill` (`mamori fields` shows it).

use std::borrow::Cow;

use mamori_rules::{Extract, Field as F, FieldArg, FieldClass, Value};

use super::{containerview, fsview};
use crate::{
    event::{Detail, Event, Param, Text, args, names, text::join},
    state::{Process, State, agent_self::BpfKind, container::Container, fdview::FdView},
};

/// An event with the state it is evaluated against.
pub struct View<'a> {
    ev: &'a Event,
    state: &'a State,
    hostname: &'a str,
    evt_num: u64,
    /// The event's process, looked up once.
    proc: Option<&'a Process>,
    /// The event's descriptor, built on first use.
    fd: std::cell::OnceCell<Option<FdView<'a>>>,
    lineage: std::cell::OnceCell<Vec<&'a Process>>,
}

/// How far up `proc.aname` and the like look.
const MAX_ANCESTORS: usize = 64;

fn text(t: &Text) -> Value<'_> {
    Value::str(&t.bytes)
}

const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Capability names, space-separated, as Falco renders them.
pub fn caps(mask: u64) -> String {
    CAPS.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `HH:MM:SS.nnnnnnnnn` (UTC).
fn clock_time(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        ns % 1_000_000_000
    )
}

impl<'a> View<'a> {
    pub fn new(ev: &'a Event, state: &'a State, hostname: &'a str, evt_num: u64) -> Self {
        Self {
            ev,
            state,
            hostname,
            evt_num,
            proc: state.processes.get(ev.task.tgid),
            fd: std::cell::OnceCell::new(),
            lineage: std::cell::OnceCell::new(),
        }
    }

    fn proc(&self) -> Option<&'a Process> {
        self.proc
    }

    /// The user and group ids of `user.*`/`group.*`. For a call that
    /// changes them, the ids from before the call (the event comes at
    /// exit, when they have changed): Falco reads them at entry, and "who
    /// became root" needs who it was.
    fn ids(&self) -> (u32, u32) {
        let t = &self.ev.task;
        match self.proc() {
            Some(p) if self.ev.changes_ids() => (p.uid, p.gid),
            _ => (t.uid, t.gid),
        }
    }

    /// The event's process, when the table knows it.
    pub fn process(&self) -> Option<&'a Process> {
        self.proc
    }

    fn fd(&self) -> Option<&FdView<'a>> {
        self.fd
            .get_or_init(|| {
                FdView::of(self.ev, self.proc).map(|v| v.with_identity(&self.state.watched))
            })
            .as_ref()
    }

    /// Whether the event acts on the agent (`evt.targets_agent`).
    fn targets_agent(&self) -> bool {
        use mamori_common::syscalls::*;
        let Some(me) = &self.state.agent else {
            return false;
        };
        let ev = self.ev;
        let reg = |i: usize| ev.args().map_or(0, |a| a[i] as i32);
        let is_me = |pid: i32| pid == me.pid as i32;
        let path = |f: F| match fsview::field(ev, self.proc, f) {
            Some(Value::Str(s)) => me.owns(&s),
            _ => false,
        };
        match ev.syscall_nr() {
            Some(KILL | TGKILL | PROCESS_VM_READV | PROCESS_VM_WRITEV) => is_me(reg(0)),
            Some(TKILL) => me.has_thread(reg(0)),
            Some(PTRACE) => is_me(reg(1)),
            // The pid the kernel found behind the pidfd.
            Some(PIDFD_SEND_SIGNAL | PIDFD_GETFD) => ev.kernel_id() == Some(me.pid),
            Some(BPF) => {
                let cmd = ev.args().map_or(u64::MAX, |a| a[0]);
                match (BpfKind::changed_by(cmd), ev.kernel_id()) {
                    (Some(kind), Some(id)) => me.owns_bpf(kind, id),
                    _ => false,
                }
            }
            Some(OPEN | OPENAT | OPENAT2 | CREAT | FTRUNCATE) => {
                let Some(fd) = self.fd() else {
                    return false;
                };
                let Some(name) = fd.name.as_deref() else {
                    return false;
                };
                if me.is_memory_file(name) {
                    return true;
                }
                // Opened for writing, or to truncate (the call itself, or O_TRUNC).
                let writes = ev.syscall_nr() == Some(FTRUNCATE)
                    || fd
                        .file
                        .is_some_and(|f| f.flags & 3 != 0 || f.flags & 0o1000 != 0);
                writes && me.owns(name)
            }
            Some(UNLINK | UNLINKAT | TRUNCATE) => path(F::FsPathName),
            Some(RENAME | RENAMEAT | RENAMEAT2) => path(F::FsPathSource) || path(F::FsPathTarget),
            _ => false,
        }
    }

    fn ancestor(&self, n: u32) -> Option<&'a Process> {
        match n {
            0 => self.proc(),
            n => self.lineage().get(n as usize - 1).copied(),
        }
    }

    /// Ancestors from the parent up (at most [`MAX_ANCESTORS`]), walked
    /// once per event: `proc.aname`, `proc.aname[2]`, `proc.aexe`... share
    /// the walk.
    fn lineage(&self) -> &[&'a Process] {
        self.lineage.get_or_init(|| {
            // The header's ppid is the live parent (reparenting included).
            let Some(parent) = self.state.processes.get(self.ev.task.ppid) else {
                return Vec::new();
            };
            let mut v = Vec::with_capacity(8);
            v.push(parent);
            v.extend(
                self.state
                    .processes
                    .ancestors(parent.pid, MAX_ANCESTORS - 1),
            );
            v
        })
    }

    /// A per-process field of the N-th ancestor, or of any ancestor.
    fn anc<'s>(
        &'s self,
        arg: &FieldArg,
        f: impl Fn(&'s Process) -> Option<Value<'s>>,
    ) -> Option<Value<'s>> {
        match arg {
            FieldArg::Index(n) => self.ancestor(*n).and_then(f),
            _ => {
                let v: Vec<Value> = self.lineage().iter().filter_map(|p| f(p)).collect();
                (!v.is_empty()).then_some(Value::Many(v))
            }
        }
    }

    fn user_db(&self) -> Option<&crate::state::users::Db> {
        self.state.users.db(self.ev.task.mntns)
    }

    /// The container the process is in: the one its cgroup names, when
    /// the runtime or the namespaces confirm it ([`State::confirms`]).
    fn container(&self) -> Option<&Container> {
        self.claimed_container()
            .filter(|c| self.state.confirms(c, self.ev.task.mntns))
    }

    /// The container the process's cgroup names, confirmed or not.
    fn claimed_container(&self) -> Option<&Container> {
        self.proc()
            .and_then(|p| p.container.as_ref())
            .or_else(|| self.state.containers.by_cgroup(self.ev.task.cgroup_id))
    }

    fn container_id(&self, full: bool) -> Value<'_> {
        match self.container() {
            Some(c) if full => Value::owned(c.full_id.as_bytes()),
            Some(c) => Value::owned(c.id().as_bytes()),
            None => Value::str(b"host"),
        }
    }

    fn in_container(&self) -> bool {
        !matches!(self.container_id(false), Value::Str(ref s) if s.as_ref() == b"host")
    }

    fn is_open(&self) -> Option<u64> {
        let flags = match self.ev.ty.name() {
            "open" => self.ev.args()?[1],
            "openat" => self.ev.args()?[2],
            "openat2" => args::raw_by_name(self.ev, "flags")? as u64,
            "creat" => 0o1101,
            _ => return None,
        };
        Some(flags)
    }
}

impl View<'_> {
    /// `evt.*`, `syscall.*`.
    #[inline]
    fn event_field(&self, field: F, arg: &FieldArg) -> Option<Value<'_>> {
        let ev = self.ev;
        Some(match field {
            F::EvtType => Value::str(ev.ty.name().as_bytes()),
            F::SyscallType => match ev.detail {
                Detail::Exit { .. } => return None,
                _ => Value::str(ev.ty.name().as_bytes()),
            },
            F::EvtNum => Value::Int(self.evt_num as i64),
            F::EvtTime => Value::owned(clock_time(ev.time_ns)),
            F::EvtTimeIso => Value::owned(crate::time::rfc3339_nanos(ev.time_ns)),
            F::EvtRawTime => Value::Int(ev.time_ns as i64),
            F::EvtHostname => Value::str(self.hostname.as_bytes()),
            F::EvtSource => Value::str(b"syscall"),
            F::EvtDir => Value::str(b"<"),
            F::EvtCpu => return None,
            F::EvtBuffer => Value::str(ev.buffer()?),
            F::EvtRes => match names::result(ev.ret) {
                Cow::Borrowed(s) => Value::str(s.as_bytes()),
                Cow::Owned(s) => Value::owned(s),
            },
            F::EvtRawRes => Value::Int(ev.ret),
            F::EvtFailed => Value::Bool(ev.ret < 0),
            F::EvtIsOpenRead => Value::Bool(matches!(self.is_open()? & 3, 0 | 2)),
            F::EvtIsOpenWrite => Value::Bool(matches!(self.is_open()? & 3, 1 | 2)),
            F::EvtIsOpenCreate => Value::Bool(self.is_open()? & 0o100 != 0),
            F::EvtIsOpenExec => Value::Bool(matches!(ev.detail, Detail::Exec(_))),
            F::EvtIsIoUring => Value::Bool(ev.uring_op().is_some()),
            F::EvtTargetsAgent => Value::Bool(self.targets_agent()),
            F::EvtIsArgTruncated => Value::Bool(ev.params().iter().any(|p| match p {
                Param::List(_, cut) => *cut,
                p => p.text().is_some_and(|t| t.truncated),
            })),
            F::EvtIsArgChanged => Value::Bool(ev.changed_path_arg().is_some()),
            F::EvtArgAtExit => match ev.changed_path_arg()? {
                Some(t) => Value::str(&t.bytes),
                None => Value::str(b"<unreadable>"),
            },
            F::EvtIoUringOp => {
                Value::str(mamori_common::uring::name_of(ev.uring_op()?)?.as_bytes())
            }
            F::EvtArg => match arg {
                FieldArg::Key(name) => Value::owned(args::by_name(ev, name)?),
                FieldArg::Index(i) => Value::owned(args::by_index(ev, *i)?),
                FieldArg::None => return None,
            },
            F::EvtRawArg => match arg {
                FieldArg::Key(name) => Value::Int(args::raw_by_name(ev, name)?),
                _ => return None,
            },
            F::EvtArgs => Value::owned(args::all(ev)),
            _ => return None,
        })
    }

    /// `proc.*`, `thread.*`.
    #[inline]
    fn process_field(&self, field: F, arg: &FieldArg) -> Option<Value<'_>> {
        let ev = self.ev;
        let t = &ev.task;
        Some(match field {
            F::ProcPid => Value::Int(i64::from(t.tgid)),
            F::ProcPpid => Value::Int(i64::from(t.ppid)),
            F::ProcVpid => Value::Int(i64::from(t.ns_tgid)),
            F::ThreadTid => Value::Int(i64::from(t.tid)),
            F::ThreadVtid => Value::Int(i64::from(t.ns_tid)),
            F::ProcName => match self.proc() {
                Some(p) => text(&p.name),
                None => text(&t.comm),
            },
            F::ProcComm => text(&t.comm),
            F::ProcExe => text(&self.proc()?.exe),
            F::ProcExepath => nonempty(&self.proc()?.exepath)?,
            F::ProcProgram => {
                let p = self.proc()?;
                nonempty(&p.program).or_else(|| nonempty(&p.exepath))?
            }
            F::ProcArgs => Value::str(&self.proc()?.args_joined),
            F::ProcCmdline => Value::str(&self.proc()?.cmdline),
            F::ProcCmdnargs => Value::Int(self.proc()?.args.len() as i64),
            F::ProcCmdlenargs => Value::Int(
                self.proc()?
                    .args
                    .iter()
                    .map(|a| a.bytes.len() as i64 + 1)
                    .sum::<i64>()
                    .max(1)
                    - 1,
            ),
            F::ProcPname => text(&self.ancestor(1)?.name),
            F::ProcPexe => text(&self.ancestor(1)?.exe),
            F::ProcPexepath => nonempty(&self.ancestor(1)?.exepath)?,
            F::ProcPcmdline => Value::str(&self.ancestor(1)?.cmdline),
            F::ProcAname => self.anc(arg, |p| Some(text(&p.name)))?,
            F::ProcAexe => self.anc(arg, |p| Some(text(&p.exe)))?,
            F::ProcAexepath => self.anc(arg, |p| nonempty(&p.exepath))?,
            F::ProcAcmdline => self.anc(arg, |p| Some(Value::str(&p.cmdline)))?,
            F::ProcApid => self.anc(arg, |p| Some(Value::Int(i64::from(p.pid))))?,
            F::ProcTty => Value::Int(i64::from(self.proc()?.tty)),
            F::ProcCwd => nonempty(&self.proc()?.cwd)?,
            F::ProcArgsTruncated => {
                let p = self.proc()?;
                Value::Bool(p.args.last().unwrap_or(&p.exe).truncated)
            }
            F::ProcEnvTruncated => Value::Bool(self.proc()?.env_truncated),
            F::ProcLoaderEnvTruncated => Value::Bool(self.proc()?.loader_env_truncated),
            F::ProcEnv => {
                let env = &self.proc()?.env;
                match arg {
                    FieldArg::Key(k) => {
                        let prefix = format!("{k}=");
                        let mut set = env
                            .iter()
                            .filter(|e| e.bytes.starts_with(prefix.as_bytes()));
                        // getenv takes the first; ld.so takes the last of
                        // its own variables.
                        let v = if k.starts_with("LD_") {
                            set.next_back()
                        } else {
                            set.next()
                        }?;
                        Value::str(&v.bytes[prefix.len()..])
                    }
                    _ => Value::owned(join(env)),
                }
            }
            F::ProcLoginshellid => {
                let shells: &[&[u8]] = &[
                    b"bash", b"sh", b"zsh", b"dash", b"ksh", b"fish", b"tcsh", b"csh", b"ash",
                ];
                let mut chain = vec![self.proc()?];
                chain.extend(self.lineage());
                let outer = chain
                    .iter()
                    .rev()
                    .find(|p| shells.contains(&p.name.bytes.as_slice()))?;
                Value::Int(i64::from(outer.pid))
            }
            F::ProcDuration => Value::Int(ev.time_ns.saturating_sub(self.proc()?.start_ns) as i64),
            F::ProcPidTs => Value::Int(self.proc()?.start_ns as i64),
            F::ProcPpidTs => Value::Int(self.ancestor(1)?.start_ns as i64),
            F::ProcPpidDuration => {
                Value::Int(ev.time_ns.saturating_sub(self.ancestor(1)?.start_ns) as i64)
            }
            F::ProcSid => Value::Int(i64::from(self.proc()?.sid)),
            F::ProcVpgid => Value::Int(i64::from(self.proc()?.pgid)),
            F::ProcSname => text(&self.state.processes.get(self.proc()?.sid)?.name),
            F::ProcVpgidName => text(&self.state.processes.get(self.proc()?.pgid)?.name),
            F::ProcVpgidExe => text(&self.state.processes.get(self.proc()?.pgid)?.exe),
            F::ProcIsVpgidLeader => Value::Bool(self.proc()?.pgid == t.tgid),
            F::ProcIsSidLeader => Value::Bool(self.proc()?.sid == t.tgid),
            F::ProcIsExeFromMemfd => Value::Bool(self.proc()?.from_memfd),
            F::ProcExeIno => match self.proc()?.exe_ino {
                0 => return None,
                n => Value::Int(n as i64),
            },
            F::ProcIsExeUpperLayer => Value::Bool(self.proc()?.exe_facts?.upper),
            F::ProcIsExeLowerLayer => {
                let x = self.proc()?.exe_facts?;
                Value::Bool(x.overlay && !x.upper)
            }
            F::ProcExeInoCtime => Value::Int(self.proc()?.exe_facts?.ctime_ns as i64),
            F::ProcExeInoMtime => Value::Int(self.proc()?.exe_facts?.mtime_ns as i64),
            F::ProcExeInoCtimeDurationProcStart => {
                let p = self.proc()?;
                Value::Int(p.start_ns.saturating_sub(p.exe_facts?.ctime_ns) as i64)
            }
            F::ProcIsExeWritable => {
                let p = self.proc()?;
                Value::Bool(exe_writable(p, &p.exe_facts?, t.cap_effective))
            }
            F::ProcFdopencount
            | F::ProcStdinType
            | F::ProcStdinName
            | F::ProcStdoutType
            | F::ProcStdoutName
            | F::ProcStderrType
            | F::ProcStderrName => return None,

            F::ThreadCapEffective => Value::owned(caps(t.cap_effective)),
            F::ThreadCapPermitted => Value::owned(caps(t.cap_permitted)),
            F::ThreadCapInheritable => return None,
            _ => return None,
        })
    }

    /// `user.*`, `group.*`: of the ids before the call for one that changes them.
    #[inline]
    fn user_field(&self, field: F) -> Option<Value<'_>> {
        let t = &self.ev.task;
        Some(match field {
            F::UserUid => Value::Int(i64::from(self.ids().0)),
            F::UserName => Value::str(self.user_db()?.user(self.ids().0)?.name.as_bytes()),
            F::UserHomedir => Value::str(self.user_db()?.user(self.ids().0)?.home.as_bytes()),
            F::UserShell => Value::str(self.user_db()?.user(self.ids().0)?.shell.as_bytes()),
            F::UserLoginuid => Value::Int(i64::from(t.loginuid as i32)),
            F::UserLoginname => {
                if t.loginuid == u32::MAX {
                    return None;
                }
                Value::str(self.user_db()?.user(t.loginuid)?.name.as_bytes())
            }
            F::GroupGid => Value::Int(i64::from(self.ids().1)),
            F::GroupName => Value::str(self.user_db()?.group(self.ids().1)?.as_bytes()),
            _ => return None,
        })
    }

    /// `container.*`, `k8s.*`.
    #[inline]
    fn container_field(&self, field: F, arg: &FieldArg) -> Option<Value<'_>> {
        let ev = self.ev;
        Some(match field {
            F::ContainerId => self.container_id(false),
            F::ContainerFullId => self.container_id(true),
            F::ContainerUnconfirmedId => {
                let c = self.claimed_container()?;
                if self.state.confirms(c, self.ev.task.mntns) {
                    return None;
                }
                Value::owned(c.id().as_bytes())
            }
            F::ContainerName if !self.in_container() => Value::str(b"host"),
            F::ContainerType => match self.container() {
                Some(c) => Value::str(c.runtime.as_bytes()),
                None => Value::str(b"host"),
            },
            // Every other container.* and k8s.* field comes from the
            // runtime's metadata (absent for host processes).
            _ => {
                let c = self.container()?;
                let m = self.state.containers.metadata(&c.full_id)?;
                return containerview::field(m, field, arg, ev.time_ns);
            }
        })
    }
}

/// Whether the process's user may write its executable (Falco's
/// `proc.is_exe_writable`): by its permission bits for the owner, the
/// group or others, or with `CAP_DAC_OVERRIDE`. A read-only mount is not
/// considered.
fn exe_writable(p: &Process, x: &crate::event::ExeFacts, caps: u64) -> bool {
    const CAP_DAC_OVERRIDE: u64 = 1 << 1;
    let bit = if p.euid == x.uid {
        0o200
    } else if p.gid == x.gid {
        0o020
    } else {
        0o002
    };
    caps & CAP_DAC_OVERRIDE != 0 || x.mode & bit != 0
}

impl View<'_> {
    /// `fd.sip.name` and its siblings: the names in the rules the address
    /// currently resolves to (see [`crate::state::names`]).
    fn ip_name(&self, field: F) -> Option<Value<'_>> {
        let of = match field {
            F::FdSipName => F::FdSip,
            F::FdCipName => F::FdCip,
            F::FdLipName => F::FdLip,
            _ => F::FdRip,
        };
        let Value::Ip(ip) = self.fd()?.field(of)? else {
            return None;
        };
        let mut names = self
            .state
            .names
            .of(&crate::state::names::canonical(ip))?
            .into_iter()
            .map(|n| Value::owned(n.as_bytes()));
        match names.len() {
            1 => names.next(),
            _ => Some(Value::Many(names.collect())),
        }
    }
}

impl Extract for View<'_> {
    #[inline]
    fn extract(&self, field: F, arg: &FieldArg) -> Option<Value<'_>> {
        match field.class() {
            FieldClass::Event => self.event_field(field, arg),
            FieldClass::Process => self.process_field(field, arg),
            FieldClass::User => self.user_field(field),
            FieldClass::Fd => match field {
                F::FdSipName | F::FdCipName | F::FdLipName | F::FdRipName => self.ip_name(field),
                _ => self.fd()?.field(field),
            },
            FieldClass::FsPath => fsview::field(self.ev, self.proc(), field),
            FieldClass::Container => self.container_field(field, arg),
        }
    }
}

fn nonempty(t: &Text) -> Option<Value<'_>> {
    (!t.bytes.is_empty()).then(|| Value::str(&t.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        assert_eq!(caps(1 << 21 | 1), "CAP_CHOWN CAP_SYS_ADMIN");
        assert_eq!(caps(0), "");
    }

    #[test]
    fn clock() {
        assert_eq!(clock_time(1_795_606_870_371_008_876), "11:41:10.371008876");
    }
}
