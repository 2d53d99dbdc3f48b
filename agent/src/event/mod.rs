//! Events as the rest of the agent sees them: owned, typed, no wire
//! layouts (`capture::decode` builds them from the kernel's records).
//! Strings stay bytes (`Text`): file names and arguments are not
//! guaranteed UTF-8 and must reach the outputs unchanged.
//!
//! With them, the pure helpers every later stage uses on an event alone:
//! each syscall's arguments by name and their Falco rendering (`args`,
//! `names`), and path, address and argument-list helpers (`text`).

use std::fmt;

use mamori_common::syscalls::Syscall;
pub mod args;
pub mod names;
pub mod text;

pub use mamori_common::{FileInfo, SockTuple};

/// Bytes from the kernel, maybe not UTF-8, maybe cut at a bound.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Text {
    pub bytes: Vec<u8>,
    /// The kernel cut the value at its bound.
    pub truncated: bool,
}

impl Text {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            bytes: bytes.into(),
            truncated: false,
        }
    }

    /// Lossy UTF-8 view, for display and matching.
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_str_lossy())?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes())
    }
}

/// A variable-length value of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    /// The value does not exist (null pointer, failed call, no such fd).
    Absent,
    /// The kernel could not read it.
    Fault,
    /// A string as the caller passed it (user memory).
    Str(Text),
    /// A path the kernel resolved from a dentry. `partial` when the walk did
    /// not reach the task's root (too deep, or not under it).
    Path {
        path: Text,
        partial: bool,
    },
    /// A string from kernel memory.
    KernelStr(Text),
    /// Raw bytes from user memory (a sockaddr, a small struct).
    Bytes(Vec<u8>),
    /// NUL-separated strings (argv, envp).
    List(Vec<Text>, bool),
    Sock(SockTuple),
    File(FileInfo),
    /// The directory the path string at the same position among the call's
    /// strings resolves against, resolved by the kernel from its objects
    /// (the directory fd's file, or the working directory). `None` when the
    /// string is absolute or not a path, or the kernel could not say;
    /// `partial` as for [`Param::Path`].
    BaseDir {
        path: Option<Text>,
        partial: bool,
    },
    /// A path string read again at syscall exit (`None`: unreadable); the
    /// one in its place was copied at entry.
    AtExit(Option<Text>),
    /// A kernel object's id read from the object behind a descriptor: the
    /// host pid a pidfd names, a bpf map's, link's or program's id.
    Id(u32),
}

impl Param {
    /// A kernel path whose walk ran out before the root (too deep, too
    /// many mounts): only its end is known.
    pub fn is_cut_path(&self) -> bool {
        matches!(self, Param::Path { path, partial: true } if path.truncated)
    }

    /// Whether this is one of the extras that follow a call's path strings
    /// ([`Param::BaseDir`], [`Param::AtExit`]).
    pub fn is_path_extra(&self) -> bool {
        matches!(self, Param::BaseDir { .. } | Param::AtExit(_))
    }

    /// The text of a string-like parameter.
    pub fn text(&self) -> Option<&Text> {
        match self {
            Param::Str(t) | Param::KernelStr(t) | Param::Path { path: t, .. } => Some(t),
            _ => None,
        }
    }
}

/// Who did it: the task's identity and context at the time of the event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Task {
    pub tgid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub ns_tgid: u32,
    pub ns_tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// `u32::MAX` when unset.
    pub loginuid: u32,
    pub sessionid: u32,
    pub pidns: u32,
    pub mntns: u32,
    pub cgroup_id: u64,
    pub cap_effective: u64,
    pub cap_permitted: u64,
    pub comm: Text,
}

/// A successful exec, as the kernel saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exec {
    /// Resolved path of the executed file.
    pub exe_path: Option<Text>,
    pub exe_path_partial: bool,
    pub exe_file: Option<FileInfo>,
    /// The name passed to exec.
    pub filename: Option<Text>,
    /// The interpreter for scripts (equal to `filename` otherwise).
    pub interp: Option<Text>,
    pub args: Vec<Text>,
    pub args_truncated: bool,
    /// The captured environment; when it was cut, with the loader's
    /// variables (`LD_*`) of all of it instead of those captured.
    pub env: Vec<Text>,
    pub env_truncated: bool,
    /// Not every loader variable of a cut environment is known.
    pub loader_env_truncated: bool,
    pub cwd: Option<Text>,
    pub cgroup_leaf: Option<Text>,
    pub cgroup_parent: Option<Text>,
    pub sid: u32,
    pub pgid: u32,
    /// `(major << 20) | minor`, 0 when none.
    pub tty: u32,
    /// 0 when the executable is deleted or a memfd.
    pub exe_nlink: u32,
    pub start_boot_ns: u64,
    /// What the kernel read of the executable's inode; `None` when it
    /// could not (a kernel without the members, a recording made before).
    pub exe_facts: Option<ExeFacts>,
}

/// The executable's inode as exec saw it (Falco's `proc.is_exe_*` and
/// `proc.exe_ino.*` fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExeFacts {
    /// On overlayfs (a container's root file system).
    pub overlay: bool,
    /// On overlayfs with an upper-layer copy: written or changed in the
    /// container, not as its image has it.
    pub upper: bool,
    pub uid: u32,
    pub gid: u32,
    /// `i_mode`.
    pub mode: u32,
    pub ctime_ns: u64,
    pub mtime_ns: u64,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// A syscall at its exit: raw argument registers and parameters.
    Syscall {
        args: [u64; 6],
        params: Vec<Param>,
        /// `Some(IORING_OP_*)` when the act came through io_uring: no such
        /// syscall was made, a ring request did what it does.
        uring: Option<u8>,
    },
    Exec(Box<Exec>),
    Fork {
        child_tgid: u32,
        child_tid: u32,
        child_ns_tgid: u32,
        child_ns_tid: u32,
        clone_flags: u64,
    },
    Exit {
        /// `status << 8 | signal`.
        code: u32,
        /// The last thread of the process exited.
        group_dead: bool,
    },
}

/// The event type, named as Falco's `evt.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Syscall(&'static Syscall),
    /// `execve`/`execveat` success (named after the syscall that did it).
    Exec(&'static str),
    /// `clone`/`clone3`/`fork`/`vfork` (named after the syscall).
    Fork(&'static str),
    /// Falco's `procexit`.
    Exit,
}

/// Every event type name the agent produces: the captured syscalls and
/// `procexit` (what rules are loaded against).
pub static TYPE_NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    mamori_common::syscalls::ALL
        .iter()
        .map(|s| s.name)
        .chain(["procexit"])
        .collect()
});

impl EventType {
    pub fn name(&self) -> &'static str {
        match self {
            EventType::Syscall(s) => s.name,
            EventType::Exec(n) | EventType::Fork(n) => n,
            EventType::Exit => "procexit",
        }
    }
}

/// One captured event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub ty: EventType,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: u64,
    pub task: Task,
    /// Syscall return value (child tid for forks, 0 for exec and exit).
    pub ret: i64,
    pub detail: Detail,
}

impl Event {
    /// Syscall parameters (empty for non-syscall events).
    pub fn params(&self) -> &[Param] {
        match &self.detail {
            Detail::Syscall { params, .. } => params,
            _ => &[],
        }
    }

    /// The first path string a racing thread changed during the call: the
    /// exit read (`None`: unreadable at exit) of a string whose entry copy
    /// is in its place and differs. The strings come first, so the `k`-th
    /// exit read belongs to parameter `k`.
    pub fn changed_path_arg(&self) -> Option<Option<&Text>> {
        let params = self.params();
        params
            .iter()
            .filter_map(|p| match p {
                Param::AtExit(t) => Some(t.as_ref()),
                _ => None,
            })
            .enumerate()
            .find(|(k, at_exit)| params.get(*k).and_then(Param::text) != *at_exit)
            .map(|(_, at_exit)| at_exit)
    }

    /// The first bytes of the data a socket send or receive moved
    /// (`evt.buffer`), when the kernel was asked for them.
    pub fn buffer(&self) -> Option<&[u8]> {
        let at = match self.ty.name() {
            "sendto" => 2,
            "recvfrom" | "sendmsg" | "recvmsg" => 1,
            _ => return None,
        };
        match self.params().get(at)? {
            Param::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The kernel object id the call carries ([`Param::Id`]): the pid a
    /// pidfd names, the bpf object a `bpf` call took or changed.
    pub fn kernel_id(&self) -> Option<u32> {
        self.params().iter().find_map(|p| match p {
            Param::Id(id) => Some(*id),
            _ => None,
        })
    }

    /// `IORING_OP_*` when the act came through io_uring.
    pub fn uring_op(&self) -> Option<u8> {
        match self.detail {
            Detail::Syscall { uring, .. } => uring,
            _ => None,
        }
    }

    /// The syscall number, for a syscall event: cheaper to match than the name.
    pub fn syscall_nr(&self) -> Option<u32> {
        match self.ty {
            EventType::Syscall(s) => Some(s.nr),
            _ => None,
        }
    }

    /// A call that changes the process's user or group ids.
    pub fn changes_ids(&self) -> bool {
        use mamori_common::syscalls::{SETGID, SETRESGID, SETRESUID, SETUID};
        matches!(
            self.syscall_nr(),
            Some(SETUID | SETRESUID | SETGID | SETRESGID)
        )
    }

    /// Raw syscall argument registers, if a syscall.
    pub fn args(&self) -> Option<&[u64; 6]> {
        match &self.detail {
            Detail::Syscall { args, .. } => Some(args),
            _ => None,
        }
    }
}
