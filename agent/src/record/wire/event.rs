//! The recorded shapes of events: the task, the parameters, an exec's
//! facts and the event itself.

use mamori_common::syscalls;
use serde::{Deserialize, Serialize};

use super::{TextRec, addr16, hex, opt, texts, unhex, unopt, untexts};
use crate::event::{Detail, Event, EventType, ExeFacts, Exec, FileInfo, Param, SockTuple, Task};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct TaskRec {
    pub tgid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub ns_tgid: u32,
    pub ns_tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub loginuid: u32,
    pub sessionid: u32,
    pub pidns: u32,
    pub mntns: u32,
    pub cgroup_id: u64,
    pub cap_effective: u64,
    pub cap_permitted: u64,
    pub comm: TextRec,
}

impl From<&Task> for TaskRec {
    fn from(t: &Task) -> Self {
        Self {
            tgid: t.tgid,
            tid: t.tid,
            ppid: t.ppid,
            ns_tgid: t.ns_tgid,
            ns_tid: t.ns_tid,
            uid: t.uid,
            gid: t.gid,
            euid: t.euid,
            egid: t.egid,
            loginuid: t.loginuid,
            sessionid: t.sessionid,
            pidns: t.pidns,
            mntns: t.mntns,
            cgroup_id: t.cgroup_id,
            cap_effective: t.cap_effective,
            cap_permitted: t.cap_permitted,
            comm: (&t.comm).into(),
        }
    }
}

impl TaskRec {
    fn to_task(&self) -> Task {
        Task {
            tgid: self.tgid,
            tid: self.tid,
            ppid: self.ppid,
            ns_tgid: self.ns_tgid,
            ns_tid: self.ns_tid,
            uid: self.uid,
            gid: self.gid,
            euid: self.euid,
            egid: self.egid,
            loginuid: self.loginuid,
            sessionid: self.sessionid,
            pidns: self.pidns,
            mntns: self.mntns,
            cgroup_id: self.cgroup_id,
            cap_effective: self.cap_effective,
            cap_permitted: self.cap_permitted,
            comm: self.comm.to_text(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ParamRec {
    Absent,
    Fault,
    Str(TextRec),
    Path {
        path: TextRec,
        partial: bool,
    },
    KernelStr(TextRec),
    Bytes(String),
    List {
        items: Vec<TextRec>,
        truncated: bool,
    },
    Sock(SockRec),
    File(FileRec),
    BaseDir {
        path: Option<TextRec>,
        partial: bool,
    },
    AtExit(Option<TextRec>),
    Id(u32),
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SockRec {
    pub family: u16,
    pub sock_type: u16,
    pub protocol: u16,
    pub state: u16,
    pub lport: u16,
    pub rport: u16,
    pub laddr: String,
    pub raddr: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FileRec {
    pub ino: u64,
    pub dev: u32,
    pub mode: u32,
    pub flags: u32,
    pub fs_magic: u32,
}

impl From<&FileInfo> for FileRec {
    fn from(f: &FileInfo) -> Self {
        Self {
            ino: f.ino,
            dev: f.dev,
            mode: f.mode,
            flags: f.flags,
            fs_magic: f.fs_magic,
        }
    }
}

impl FileRec {
    fn to_info(&self) -> FileInfo {
        FileInfo {
            ino: self.ino,
            dev: self.dev,
            mode: self.mode,
            flags: self.flags,
            fs_magic: self.fs_magic,
        }
    }
}

impl From<&Param> for ParamRec {
    fn from(p: &Param) -> Self {
        match p {
            Param::Absent => ParamRec::Absent,
            Param::Fault => ParamRec::Fault,
            Param::Str(t) => ParamRec::Str(t.into()),
            Param::Path { path, partial } => ParamRec::Path {
                path: path.into(),
                partial: *partial,
            },
            Param::KernelStr(t) => ParamRec::KernelStr(t.into()),
            Param::Bytes(b) => ParamRec::Bytes(hex(b)),
            Param::List(items, truncated) => ParamRec::List {
                items: texts(items),
                truncated: *truncated,
            },
            Param::Sock(s) => ParamRec::Sock(SockRec {
                family: s.family,
                sock_type: s.sock_type,
                protocol: s.protocol,
                state: s.state,
                lport: s.lport,
                rport: s.rport,
                laddr: hex(&s.laddr),
                raddr: hex(&s.raddr),
            }),
            Param::File(f) => ParamRec::File(f.into()),
            Param::BaseDir { path, partial } => ParamRec::BaseDir {
                path: path.as_ref().map(Into::into),
                partial: *partial,
            },
            Param::AtExit(t) => ParamRec::AtExit(t.as_ref().map(Into::into)),
            Param::Id(id) => ParamRec::Id(*id),
        }
    }
}

impl ParamRec {
    pub fn to_param(&self) -> Param {
        match self {
            ParamRec::Absent => Param::Absent,
            ParamRec::Fault => Param::Fault,
            ParamRec::Str(t) => Param::Str(t.to_text()),
            ParamRec::Path { path, partial } => Param::Path {
                path: path.to_text(),
                partial: *partial,
            },
            ParamRec::KernelStr(t) => Param::KernelStr(t.to_text()),
            ParamRec::Bytes(h) => Param::Bytes(unhex(h)),
            ParamRec::List { items, truncated } => Param::List(untexts(items), *truncated),
            ParamRec::Sock(s) => Param::Sock(SockTuple {
                family: s.family,
                sock_type: s.sock_type,
                protocol: s.protocol,
                state: s.state,
                lport: s.lport,
                rport: s.rport,
                _pad: 0,
                laddr: addr16(&s.laddr),
                raddr: addr16(&s.raddr),
            }),
            ParamRec::File(f) => Param::File(f.to_info()),
            ParamRec::BaseDir { path, partial } => Param::BaseDir {
                path: path.as_ref().map(TextRec::to_text),
                partial: *partial,
            },
            ParamRec::AtExit(t) => Param::AtExit(t.as_ref().map(TextRec::to_text)),
            ParamRec::Id(id) => Param::Id(*id),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ExecRec {
    pub exe_path: Option<TextRec>,
    pub exe_path_partial: bool,
    pub exe_file: Option<FileRec>,
    pub filename: Option<TextRec>,
    pub interp: Option<TextRec>,
    pub args: Vec<TextRec>,
    pub args_truncated: bool,
    pub env: Vec<TextRec>,
    pub env_truncated: bool,
    pub loader_env_truncated: bool,
    pub cwd: Option<TextRec>,
    pub cgroup_leaf: Option<TextRec>,
    pub cgroup_parent: Option<TextRec>,
    pub sid: u32,
    pub pgid: u32,
    pub tty: u32,
    pub exe_nlink: u32,
    pub start_boot_ns: u64,
    pub exe_facts: Option<ExeFacts>,
}

impl From<&Exec> for ExecRec {
    fn from(x: &Exec) -> Self {
        Self {
            exe_path: opt(&x.exe_path),
            exe_path_partial: x.exe_path_partial,
            exe_file: x.exe_file.as_ref().map(FileRec::from),
            filename: opt(&x.filename),
            interp: opt(&x.interp),
            args: texts(&x.args),
            args_truncated: x.args_truncated,
            env: texts(&x.env),
            env_truncated: x.env_truncated,
            loader_env_truncated: x.loader_env_truncated,
            cwd: opt(&x.cwd),
            cgroup_leaf: opt(&x.cgroup_leaf),
            cgroup_parent: opt(&x.cgroup_parent),
            sid: x.sid,
            pgid: x.pgid,
            tty: x.tty,
            exe_nlink: x.exe_nlink,
            start_boot_ns: x.start_boot_ns,
            exe_facts: x.exe_facts,
        }
    }
}

impl ExecRec {
    pub fn to_exec(&self) -> Exec {
        Exec {
            exe_path: unopt(&self.exe_path),
            exe_path_partial: self.exe_path_partial,
            exe_file: self.exe_file.as_ref().map(FileRec::to_info),
            filename: unopt(&self.filename),
            interp: unopt(&self.interp),
            args: untexts(&self.args),
            args_truncated: self.args_truncated,
            env: untexts(&self.env),
            env_truncated: self.env_truncated,
            loader_env_truncated: self.loader_env_truncated,
            cwd: unopt(&self.cwd),
            cgroup_leaf: unopt(&self.cgroup_leaf),
            cgroup_parent: unopt(&self.cgroup_parent),
            sid: self.sid,
            pgid: self.pgid,
            tty: self.tty,
            exe_nlink: self.exe_nlink,
            start_boot_ns: self.start_boot_ns,
            exe_facts: self.exe_facts,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DetailRec {
    Syscall {
        args: [u64; 6],
        params: Vec<ParamRec>,
        /// `IORING_OP_*` when the act came through io_uring.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uring: Option<u8>,
    },
    Exec(Box<ExecRec>),
    Fork {
        child_tgid: u32,
        child_tid: u32,
        child_ns_tgid: u32,
        child_ns_tid: u32,
        clone_flags: u64,
    },
    Exit {
        code: u32,
        group_dead: bool,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventRec {
    /// `evt.type`.
    #[serde(rename = "type")]
    pub ty: String,
    pub time_ns: u64,
    pub task: TaskRec,
    pub ret: i64,
    pub detail: DetailRec,
}

impl From<&Event> for EventRec {
    fn from(ev: &Event) -> Self {
        let detail = match &ev.detail {
            Detail::Syscall {
                args,
                params,
                uring,
            } => DetailRec::Syscall {
                args: *args,
                params: params.iter().map(ParamRec::from).collect(),
                uring: *uring,
            },
            Detail::Exec(x) => DetailRec::Exec(Box::new(x.as_ref().into())),
            Detail::Fork {
                child_tgid,
                child_tid,
                child_ns_tgid,
                child_ns_tid,
                clone_flags,
            } => DetailRec::Fork {
                child_tgid: *child_tgid,
                child_tid: *child_tid,
                child_ns_tgid: *child_ns_tgid,
                child_ns_tid: *child_ns_tid,
                clone_flags: *clone_flags,
            },
            Detail::Exit { code, group_dead } => DetailRec::Exit {
                code: *code,
                group_dead: *group_dead,
            },
        };
        Self {
            ty: ev.ty.name().to_owned(),
            time_ns: ev.time_ns,
            task: (&ev.task).into(),
            ret: ev.ret,
            detail,
        }
    }
}

impl EventRec {
    pub fn to_event(&self) -> Result<Event, String> {
        let detail = match &self.detail {
            DetailRec::Syscall {
                args,
                params,
                uring,
            } => Detail::Syscall {
                args: *args,
                params: params.iter().map(ParamRec::to_param).collect(),
                uring: *uring,
            },
            DetailRec::Exec(x) => Detail::Exec(Box::new(x.to_exec())),
            DetailRec::Fork {
                child_tgid,
                child_tid,
                child_ns_tgid,
                child_ns_tid,
                clone_flags,
            } => Detail::Fork {
                child_tgid: *child_tgid,
                child_tid: *child_tid,
                child_ns_tgid: *child_ns_tgid,
                child_ns_tid: *child_ns_tid,
                clone_flags: *clone_flags,
            },
            DetailRec::Exit { code, group_dead } => Detail::Exit {
                code: *code,
                group_dead: *group_dead,
            },
        };
        Ok(Event {
            ty: event_type(&self.ty, &detail)?,
            time_ns: self.time_ns,
            task: self.task.to_task(),
            ret: self.ret,
            detail,
        })
    }
}

/// The event type named `name`, checked against the detail's kind.
pub fn event_type(name: &str, detail: &Detail) -> Result<EventType, String> {
    let unknown = || format!("unknown event type `{name}`");
    Ok(match detail {
        Detail::Exec(_) => match name {
            "execve" => EventType::Exec("execve"),
            "execveat" => EventType::Exec("execveat"),
            _ => return Err(format!("`{name}` is not an exec")),
        },
        Detail::Fork { .. } => {
            let s = syscalls::ALL
                .iter()
                .find(|s| s.name == name && s.program == syscalls::Program::Sched)
                .ok_or_else(unknown)?;
            EventType::Fork(s.name)
        }
        Detail::Exit { .. } => EventType::Exit,
        Detail::Syscall { .. } => EventType::Syscall(
            syscalls::ALL
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(unknown)?,
        ),
    })
}
