//! Wire records → [`Event`]s. Nothing past this module sees a `#[repr(C)]`
//! layout. Every length is checked: a malformed record is an error value,
//! never a panic or an out-of-bounds read.

use mamori_common::{
    EXE_READ, EXE_UPPER, EXEC_NPARAMS, EventHeader, EventKind, ExecBody, ExecParam, ExitBody,
    FileInfo, ForkBody, OVERLAYFS_MAGIC, PARAM_ABSENT, PARAM_ALIGN, PARAM_FAULT,
    PARAM_PARTIAL_PATH, PARAM_TRUNCATED, ParamHeader, ParamType, SockTuple, SyscallBody,
    URING_NO_COMPLETION, UringBody, syscalls,
};

use crate::event::{Detail, Event, EventType, ExeFacts, Exec, Param, Task, Text};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("record says {said} bytes but {got} arrived")]
    SizeMismatch { said: usize, got: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
    #[error("unknown syscall number {0}")]
    UnknownSyscall(u32),
    #[error("parameter {index} overruns the record")]
    ParamOverrun { index: usize },
    #[error("parameter {index} has unknown type {ty}")]
    UnknownParamType { index: usize, ty: u8 },
}

/// Reads a `T` at `off` of `bytes`, if it fits.
fn read<T: Copy>(bytes: &[u8], off: usize) -> Option<T> {
    let end = off.checked_add(size_of::<T>())?;
    let src = bytes.get(off..end)?;
    // SAFETY: `src` holds exactly size_of::<T>() bytes; T is a plain
    // #[repr(C)] integer struct, valid for any bit pattern.
    Some(unsafe { std::ptr::read_unaligned(src.as_ptr().cast::<T>()) })
}

/// Converts kernel boot-clock times to wall-clock times.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// `CLOCK_REALTIME - CLOCK_BOOTTIME`, ns.
    offset_ns: u64,
}

impl Clock {
    pub fn now() -> Self {
        let rt = clock_ns(libc::CLOCK_REALTIME);
        let boot = clock_ns(libc::CLOCK_BOOTTIME);
        Self {
            offset_ns: rt.saturating_sub(boot),
        }
    }

    /// A clock that maps boot time 0 to `offset_ns` (tests, replay).
    pub fn with_offset(offset_ns: u64) -> Self {
        Self { offset_ns }
    }

    /// Wall-clock time now, on this clock.
    pub fn now_ns(&self) -> u64 {
        self.wall_ns(clock_ns(libc::CLOCK_BOOTTIME))
    }

    pub fn wall_ns(&self, boot_ns: u64) -> u64 {
        boot_ns.saturating_add(self.offset_ns)
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Decodes one record.
pub fn decode(bytes: &[u8], clock: &Clock) -> Result<Event, Error> {
    let h: EventHeader = read(bytes, 0).ok_or(Error::Short(bytes.len()))?;
    let size = h.size as usize;
    if size > bytes.len() || size < size_of::<EventHeader>() {
        return Err(Error::SizeMismatch {
            said: size,
            got: bytes.len(),
        });
    }
    let bytes = &bytes[..size];
    let body_at = size_of::<EventHeader>();
    let kind = EventKind::from_u16(h.kind).ok_or(Error::UnknownKind(h.kind))?;
    let short = || Error::Short(bytes.len());
    let (ty, detail) = match kind {
        EventKind::Syscall => {
            let sc = syscalls::by_nr(h.syscall_nr).ok_or(Error::UnknownSyscall(h.syscall_nr))?;
            let body: SyscallBody = read(bytes, body_at).ok_or_else(short)?;
            let mut params = params(bytes, body_at + size_of::<SyscallBody>(), h.nparams)?;
            if sc.nr == syscalls::CONNECT {
                complete_connect(&mut params);
            }
            (
                EventType::Syscall(sc),
                Detail::Syscall {
                    args: body.args,
                    params,
                    uring: None,
                },
            )
        }
        EventKind::UringSubmit | EventKind::UringComplete => {
            let sc = syscalls::by_nr(h.syscall_nr).ok_or(Error::UnknownSyscall(h.syscall_nr))?;
            let body: UringBody = read(bytes, body_at).ok_or_else(short)?;
            let params = params(bytes, body_at + size_of::<UringBody>(), h.nparams)?;
            (
                EventType::Syscall(sc),
                Detail::Syscall {
                    args: body.args,
                    params,
                    uring: Some(body.op as u8),
                },
            )
        }
        EventKind::Exec => {
            let body: ExecBody = read(bytes, body_at).ok_or_else(short)?;
            let params = params(bytes, body_at + size_of::<ExecBody>(), h.nparams)?;
            let x = exec(&body, params);
            // NB: at sched_process_exec the saved syscall number reads as
            // execve even for execveat on 6.18, so fd-based execveat is
            // recognised by the name the kernel gives it: "/dev/fd/N".
            // A path-based execveat(dirfd, "path") is reported as execve.
            let by_fd = x
                .filename
                .as_ref()
                .is_some_and(|f| f.bytes.starts_with(b"/dev/fd/"));
            let name = if h.syscall_nr == syscalls::EXECVEAT || by_fd {
                "execveat"
            } else {
                "execve"
            };
            (EventType::Exec(name), Detail::Exec(Box::new(x)))
        }
        EventKind::Fork => {
            let b: ForkBody = read(bytes, body_at).ok_or_else(short)?;
            let name = syscalls::by_nr(h.syscall_nr).map_or("clone", |s| s.name);
            (
                EventType::Fork(name),
                Detail::Fork {
                    child_tgid: b.child_tgid,
                    child_tid: b.child_tid,
                    child_ns_tgid: b.child_ns_tgid,
                    child_ns_tid: b.child_ns_tid,
                    clone_flags: b.clone_flags,
                },
            )
        }
        EventKind::Exit => {
            let b: ExitBody = read(bytes, body_at).ok_or_else(short)?;
            (
                EventType::Exit,
                Detail::Exit {
                    code: b.exit_code,
                    group_dead: b.group_dead != 0,
                },
            )
        }
    };
    Ok(Event {
        ty,
        time_ns: clock.wall_ns(h.boot_ns),
        task: task(&h),
        ret: h.ret,
        detail,
    })
}

/// Which half of an io_uring request a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UringPart {
    /// Submitted; `last` when no completion will follow.
    Submitted {
        last: bool,
    },
    Completed,
}

/// The request an io_uring record belongs to (`req` pairs the halves),
/// or `None` for any other record.
pub fn uring_part(bytes: &[u8]) -> Option<(u64, UringPart)> {
    let h: EventHeader = read(bytes, 0)?;
    let body: UringBody = read(bytes, size_of::<EventHeader>())?;
    let part = match EventKind::from_u16(h.kind)? {
        EventKind::UringSubmit => UringPart::Submitted {
            last: body.flags & URING_NO_COMPLETION != 0,
        },
        EventKind::UringComplete => UringPart::Completed,
        _ => return None,
    };
    Some((body.req, part))
}

fn task(h: &EventHeader) -> Task {
    let comm_len = h.comm.iter().position(|&b| b == 0).unwrap_or(h.comm.len());
    Task {
        tgid: h.tgid,
        tid: h.tid,
        ppid: h.ppid,
        ns_tgid: h.ns_tgid,
        ns_tid: h.ns_tid,
        uid: h.uid,
        gid: h.gid,
        euid: h.euid,
        egid: h.egid,
        loginuid: h.loginuid,
        sessionid: h.sessionid,
        pidns: h.pidns,
        mntns: h.mntns,
        cgroup_id: h.cgroup_id,
        cap_effective: h.cap_effective,
        cap_permitted: h.cap_permitted,
        comm: Text::new(&h.comm[..comm_len]),
    }
}

/// Decodes `n` parameters starting at `off`.
fn params(bytes: &[u8], mut off: usize, n: u16) -> Result<Vec<Param>, Error> {
    let mut out = Vec::with_capacity(n as usize);
    for index in 0..n as usize {
        off = off.next_multiple_of(PARAM_ALIGN);
        let ph: ParamHeader = read(bytes, off).ok_or(Error::ParamOverrun { index })?;
        let start = off + size_of::<ParamHeader>();
        let data = bytes
            .get(start..start + ph.len as usize)
            .ok_or(Error::ParamOverrun { index })?;
        off = start + ph.len as usize;
        out.push(param(index, &ph, data)?);
    }
    Ok(out)
}

fn param(index: usize, ph: &ParamHeader, data: &[u8]) -> Result<Param, Error> {
    let ty = ParamType::from_u8(ph.ty).ok_or(Error::UnknownParamType { index, ty: ph.ty })?;
    let truncated = ph.flags & PARAM_TRUNCATED != 0;
    let text = || Text {
        bytes: data.to_vec(),
        truncated,
    };
    let value = ph.flags & (PARAM_ABSENT | PARAM_FAULT) == 0;
    Ok(match ty {
        // The path extras keep their kind when empty: the agent pairs them
        // with the strings by position.
        ParamType::BaseDir => Param::BaseDir {
            path: value.then(text),
            partial: ph.flags & PARAM_PARTIAL_PATH != 0,
        },
        ParamType::UserStrAtExit => Param::AtExit(value.then(text)),
        _ if ph.flags & PARAM_ABSENT != 0 => Param::Absent,
        _ if ph.flags & PARAM_FAULT != 0 => Param::Fault,
        ParamType::UserStr => Param::Str(text()),
        ParamType::KernelStr => Param::KernelStr(text()),
        ParamType::KernelPath => Param::Path {
            path: text(),
            partial: ph.flags & PARAM_PARTIAL_PATH != 0,
        },
        ParamType::UserBytes => Param::Bytes(data.to_vec()),
        ParamType::StrList => Param::List(split_list(data), truncated),
        ParamType::SockTuple => match read::<SockTuple>(data, 0) {
            Some(t) => Param::Sock(t),
            None => return Err(Error::ParamOverrun { index }),
        },
        ParamType::KernelId => match read::<u32>(data, 0) {
            Some(id) => Param::Id(id),
            None => return Err(Error::ParamOverrun { index }),
        },
        ParamType::FileInfo => match read::<FileInfo>(data, 0) {
            Some(f) => Param::File(f),
            None => return Err(Error::ParamOverrun { index }),
        },
    })
}

/// The loader variables that load code into a process: the kernel scans a
/// cut environment for these (agent-ebpf `loader_env`).
const LOADS_CODE: [&[u8]; 2] = [b"LD_PRELOAD=", b"LD_AUDIT="];

/// The captured part of a cut environment without its code-loading
/// variables, then those of all of it (`loader`, in their order): the
/// kernel scanned them past the cut, so a variable cut at the bound, or one
/// only past it, is whole; `ld.so` takes the last of each, as the list
/// still says. An item cut inside such a name (`LD_PRE`) goes too.
fn with_loader_env(env: &mut Vec<Text>, loader: &[Text]) {
    let is_loader = |t: &Text| {
        LOADS_CODE
            .iter()
            .any(|name| t.bytes.starts_with(name) || (t.truncated && name.starts_with(&t.bytes)))
    };
    env.retain(|t| !is_loader(t));
    env.extend(loader.iter().cloned());
}

/// Splits NUL-separated strings; a trailing NUL ends the list.
fn split_list(data: &[u8]) -> Vec<Text> {
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == 0).map(Text::new).collect()
}

fn exec(b: &ExecBody, mut p: Vec<Param>) -> Exec {
    // A record too full for the last parameter ends before it.
    let loader_env_sent = p.len() > ExecParam::LoaderEnv as usize;
    p.resize(EXEC_NPARAMS as usize, Param::Absent);
    let text = |i: ExecParam| p[i as usize].text().cloned();
    let (args, args_truncated) = match &p[ExecParam::Args as usize] {
        Param::List(l, t) => (l.clone(), *t),
        _ => (Vec::new(), false),
    };
    let (mut env, env_truncated) = match &p[ExecParam::Env as usize] {
        Param::List(l, t) => (l.clone(), *t),
        _ => (Vec::new(), false),
    };
    if let Some(last) = env.last_mut().filter(|_| env_truncated) {
        last.truncated = true;
    }
    let loader_env_truncated = match &p[ExecParam::LoaderEnv as usize] {
        Param::List(loader, t) => {
            with_loader_env(&mut env, loader);
            *t
        }
        _ => env_truncated && !loader_env_sent,
    };
    Exec {
        exe_path: text(ExecParam::ExePath),
        exe_path_partial: matches!(
            p[ExecParam::ExePath as usize],
            Param::Path { partial: true, .. }
        ),
        exe_file: match p[ExecParam::ExeFile as usize] {
            Param::File(f) => Some(f),
            _ => None,
        },
        filename: text(ExecParam::Filename),
        interp: text(ExecParam::Interp),
        args,
        args_truncated,
        env,
        env_truncated,
        loader_env_truncated,
        cwd: text(ExecParam::Cwd),
        cgroup_leaf: text(ExecParam::CgroupLeaf),
        cgroup_parent: text(ExecParam::CgroupParent),
        sid: b.sid,
        pgid: b.pgid,
        tty: b.tty,
        exe_nlink: b.exe_nlink,
        start_boot_ns: b.start_boot_ns,
        exe_facts: exe_facts(b, &p[ExecParam::ExeFile as usize]),
    }
}

/// The executable's inode facts, when the kernel read them.
fn exe_facts(b: &ExecBody, file: &Param) -> Option<ExeFacts> {
    if b.exe_flags & EXE_READ == 0 {
        return None;
    }
    let file = match file {
        Param::File(f) => *f,
        _ => FileInfo::default(),
    };
    let overlay = file.fs_magic == OVERLAYFS_MAGIC;
    Some(ExeFacts {
        overlay,
        upper: overlay && b.exe_flags & EXE_UPPER != 0,
        uid: b.exe_uid,
        gid: b.exe_gid,
        mode: file.mode,
        ctime_ns: b.exe_ctime_ns,
        mtime_ns: b.exe_mtime_ns,
    })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;

/// A connect that failed leaves the socket without its peer's port (the
/// kernel clears it): the tuple takes the address and port the caller
/// asked for, as Falco reports them.
fn complete_connect(params: &mut [Param]) {
    let [Param::Bytes(addr), Param::Sock(t), ..] = params else {
        return;
    };
    let family = match addr.get(..2) {
        Some(f) => u16::from_le_bytes([f[0], f[1]]),
        None => return,
    };
    let (ip, at) = match family {
        2 => (4, 4),
        10 => (16, 8),
        _ => return,
    };
    let (Some(port), Some(raddr)) = (addr.get(2..4), addr.get(at..at + ip)) else {
        return;
    };
    if t.family != family || t.rport != 0 {
        return;
    }
    t.rport = u16::from_be_bytes([port[0], port[1]]);
    t.raddr = [0; 16];
    t.raddr[..ip].copy_from_slice(raddr);
}
