//! The kernel/user wire contract of mamori.
//!
//! Invariants:
//! - Every record starts with an [`EventHeader`]; `header.size` is the length
//!   of the whole record, `header.kind` an [`EventKind`] id.
//! - After the header comes the kind's fixed body ([`SyscallBody`],
//!   [`ExecBody`], [`ForkBody`] or [`ExitBody`]), then `header.nparams`
//!   variable-length parameters, each a [`ParamHeader`] followed by its bytes
//!   and padded to [`PARAM_ALIGN`].
//! - Wire structs hold only fixed-size integers and arrays, never `bool` or
//!   `Option`, and have no implicit padding (the size asserts check it).
//! - Numeric ids are stable: retired ids are listed, never reused.
#![no_std]

pub mod offsets;
pub mod path_args;
pub mod syscalls;
pub mod uring;

pub use offsets::KernelOffsets;

/// Length of `task_struct.comm`.
pub const COMM_LEN: usize = 16;
/// Longest string or path parameter; longer values are cut and flagged
/// [`PARAM_TRUNCATED`].
pub const MAX_STR: usize = 4096;
/// Longest byte parameter (socket addresses, small user structs).
pub const MAX_BYTES: usize = 128;
/// Parameters start at multiples of this.
pub const PARAM_ALIGN: usize = 8;
/// Size of the per-CPU scratch area an event is assembled in. Offsets into
/// it are masked to `SCRATCH_SIZE / 2 - 1`, so a write of up to
/// [`MAX_STR`] + header at any masked offset stays inside.
pub const SCRATCH_SIZE: usize = 65536;
/// Largest record the kernel can emit (the mask bound of [`SCRATCH_SIZE`]).
pub const MAX_RECORD: usize = SCRATCH_SIZE / 2;
/// Entries in the enabled-syscall map, indexed by syscall number.
pub const MAX_SYSCALLS: u32 = 512;
/// Steps (components and mount crossings) walked when resolving a dentry
/// to a path: `MAX_STR` bytes hold at most `MAX_STR / 2` components, the
/// rest is room for stacked mounts.
pub const MAX_PATH_DEPTH: u32 = 4096;

/// Kinds of record. Retired ids: none.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A syscall seen at its exit: [`SyscallBody`] + parameters.
    Syscall = 1,
    /// A successful exec, from `sched_process_exec`: [`ExecBody`] + parameters.
    Exec = 2,
    /// A new task, from `sched_process_fork`: [`ForkBody`].
    Fork = 3,
    /// A task exit, from `sched_process_exit`: [`ExitBody`].
    Exit = 4,
    /// An io_uring request as submitted, after the kernel copied its
    /// arguments: [`UringBody`] + the parameters of the syscall it stands
    /// for (`header.syscall_nr`) known then.
    UringSubmit = 5,
    /// The same request's completion: [`UringBody`] + the parameters known
    /// from its result (`header.ret`), the others absent.
    UringComplete = 6,
}

impl EventKind {
    pub const fn from_u16(v: u16) -> Option<Self> {
        match v {
            1 => Some(Self::Syscall),
            2 => Some(Self::Exec),
            3 => Some(Self::Fork),
            4 => Some(Self::Exit),
            5 => Some(Self::UringSubmit),
            6 => Some(Self::UringComplete),
            _ => None,
        }
    }
}

/// Context common to every record: who did it, when, where.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// An [`EventKind`] id.
    pub kind: u16,
    /// Number of parameters after the body.
    pub nparams: u16,
    /// Bytes in the whole record.
    pub size: u32,
    /// `CLOCK_BOOTTIME` nanoseconds.
    pub boot_ns: u64,
    /// Host thread-group id (the process id).
    pub tgid: u32,
    /// Host thread id.
    pub tid: u32,
    /// Host tgid of the real parent.
    pub ppid: u32,
    /// tgid as seen in the task's own pid namespace.
    pub ns_tgid: u32,
    /// tid as seen in the task's own pid namespace.
    pub ns_tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// Audit login uid; `u32::MAX` when unset.
    pub loginuid: u32,
    /// Audit session id; `u32::MAX` when unset.
    pub sessionid: u32,
    /// Inode number of the pid namespace.
    pub pidns: u32,
    /// Inode number of the mount namespace.
    pub mntns: u32,
    /// Syscall number (`orig_ax`), or `u32::MAX` when not in a syscall.
    pub syscall_nr: u32,
    /// Kernfs id of the task's cgroup in the hierarchy used for containers.
    pub cgroup_id: u64,
    /// Effective capabilities.
    pub cap_effective: u64,
    /// Permitted capabilities.
    pub cap_permitted: u64,
    /// Syscall return value (0 for records not tied to a syscall return).
    pub ret: i64,
    pub comm: [u8; COMM_LEN],
}

/// Body of [`EventKind::Syscall`]: the raw argument registers at exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallBody {
    pub args: [u64; 6],
}

/// Body of [`EventKind::UringSubmit`] and [`EventKind::UringComplete`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UringBody {
    /// The arguments the syscall it stands for would have had in its
    /// registers (descriptors, flags, modes; pointers are 0).
    pub args: [u64; 6],
    /// The request (`struct io_kiocb *`): pairs a submission with its
    /// completion. Requests are reused once completed.
    pub req: u64,
    /// `IORING_OP_*`.
    pub op: u32,
    /// [`URING_NO_COMPLETION`].
    pub flags: u32,
}

/// The request asked for no completion on success
/// (`IOSQE_CQE_SKIP_SUCCESS`): its submission is all there will be.
pub const URING_NO_COMPLETION: u32 = 1;

/// Body of [`EventKind::Exec`]. Parameters follow in [`ExecParam`] order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecBody {
    /// Session id (host pid of the session leader).
    pub sid: u32,
    /// Process group id (host view).
    pub pgid: u32,
    /// Controlling tty as `(major << 20) | minor`, 0 when none.
    pub tty: u32,
    /// `i_nlink` of the executed file: 0 when it was deleted or is a memfd.
    pub exe_nlink: u32,
    /// Process start time, `CLOCK_BOOTTIME` ns.
    pub start_boot_ns: u64,
    /// [`EXE_READ`], and [`EXE_UPPER`] when the executable is an
    /// overlayfs file with an upper-layer copy (written in the container).
    pub exe_flags: u32,
    /// Owner and group of the executable (`i_uid`, `i_gid`).
    pub exe_uid: u32,
    pub exe_gid: u32,
    pub _pad: u32,
    /// The executable's change and modification times, ns since the epoch.
    pub exe_ctime_ns: u64,
    pub exe_mtime_ns: u64,
}

/// [`ExecBody::exe_flags`]: the kernel read the executable's facts (an
/// older record, or a failed read, lacks them).
pub const EXE_READ: u32 = 1;
/// [`ExecBody::exe_flags`]: the overlayfs inode has an upper dentry.
pub const EXE_UPPER: u32 = 2;
/// `OVERLAYFS_SUPER_MAGIC`.
pub const OVERLAYFS_MAGIC: u32 = 0x794c_7630;

/// Parameter order of an [`EventKind::Exec`] record.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecParam {
    /// Resolved path of the executed file (`bprm->file`).
    ExePath = 0,
    /// [`FileInfo`] of the executed file.
    ExeFile = 1,
    /// The name passed to exec (`bprm->filename`).
    Filename = 2,
    /// The interpreter (`bprm->interp`), equal to the filename unless a script.
    Interp = 3,
    /// argv, NUL-separated, from the new process's memory.
    Args = 4,
    /// envp, NUL-separated.
    Env = 5,
    /// Current working directory.
    Cwd = 6,
    /// Name of the cgroup (leaf), for container lookup.
    CgroupLeaf = 7,
    /// Name of the cgroup's parent.
    CgroupParent = 8,
    /// The `LD_*` strings of an environment longer than the capture bound
    /// (absent when it is not), NUL-separated; truncated when not every
    /// one is known (see `agent-ebpf/src/loader_env.rs`).
    LoaderEnv = 9,
}
pub const EXEC_NPARAMS: u16 = 10;

/// Body of [`EventKind::Fork`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkBody {
    pub child_tgid: u32,
    pub child_tid: u32,
    pub child_ns_tgid: u32,
    pub child_ns_tid: u32,
    /// Clone flags when known (clone, clone3), else the implied flags.
    pub clone_flags: u64,
}

/// Body of [`EventKind::Exit`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitBody {
    /// `task->exit_code` (status << 8 | signal).
    pub exit_code: u32,
    /// 1 when this is the last thread of its process.
    pub group_dead: u32,
    /// tgid of the task that will receive the children (0 if unknown).
    pub reaper_tgid: u32,
    pub _pad: u32,
}

/// Header of one variable-length parameter.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParamHeader {
    /// Bytes of data following (no NUL terminator for strings).
    pub len: u16,
    /// [`ParamType`] id.
    pub ty: u8,
    /// [`PARAM_TRUNCATED`], [`PARAM_FAULT`], [`PARAM_ABSENT`].
    pub flags: u8,
    pub _pad: u32,
}

/// The value was longer than its bound and was cut.
pub const PARAM_TRUNCATED: u8 = 1;
/// Reading the value failed (bad user pointer, unreadable kernel object).
pub const PARAM_FAULT: u8 = 2;
/// The value does not exist (null pointer, failed syscall, no such fd).
pub const PARAM_ABSENT: u8 = 4;
/// A resolved path whose walk hit [`MAX_PATH_DEPTH`] or [`MAX_STR`], or an
/// unreachable root: the leading components are missing.
pub const PARAM_PARTIAL_PATH: u8 = 8;

/// What a parameter's bytes are.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// A string read from user memory, as the caller passed it.
    UserStr = 1,
    /// A path resolved by the kernel from a dentry (absolute).
    KernelPath = 2,
    /// Raw bytes from user memory (socket address, small struct).
    UserBytes = 3,
    /// A [`SockTuple`].
    SockTuple = 4,
    /// A [`FileInfo`].
    FileInfo = 5,
    /// NUL-separated strings (argv, envp).
    StrList = 6,
    /// A string from kernel memory (not a dentry walk).
    KernelStr = 7,
    /// The directory a relative path string resolves against, resolved by
    /// the kernel from a dentry like [`ParamType::KernelPath`]: the
    /// directory fd's file or the working directory. One per path string
    /// (absent when the string is absolute or not a path), after them.
    BaseDir = 8,
    /// A path string read again at syscall exit, when the one in its place
    /// was copied at entry: a difference is a racing thread's work. After
    /// the [`ParamType::BaseDir`]s.
    UserStrAtExit = 9,
    /// A kernel object's id (`u32`) read from the object behind a file
    /// descriptor: the host pid a pidfd or `/proc/PID` directory names, a
    /// bpf map's, link's or program's id.
    KernelId = 10,
}

impl ParamType {
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::UserStr),
            2 => Some(Self::KernelPath),
            3 => Some(Self::UserBytes),
            4 => Some(Self::SockTuple),
            5 => Some(Self::FileInfo),
            6 => Some(Self::StrList),
            7 => Some(Self::KernelStr),
            8 => Some(Self::BaseDir),
            9 => Some(Self::UserStrAtExit),
            10 => Some(Self::KernelId),
            _ => None,
        }
    }
}

/// A socket's addresses as the kernel holds them (`struct sock_common`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockTuple {
    /// `AF_INET`, `AF_INET6`, `AF_UNIX`...
    pub family: u16,
    /// `SOCK_STREAM`, `SOCK_DGRAM`...
    pub sock_type: u16,
    /// `IPPROTO_TCP`, `IPPROTO_UDP`...
    pub protocol: u16,
    /// TCP state (`TCP_ESTABLISHED`...), 0 when not applicable.
    pub state: u16,
    /// Local port, host byte order.
    pub lport: u16,
    /// Remote port, host byte order.
    pub rport: u16,
    pub _pad: u32,
    /// Local address; IPv4 in the first 4 bytes.
    pub laddr: [u8; 16],
    /// Remote address; IPv4 in the first 4 bytes.
    pub raddr: [u8; 16],
}

/// What a file descriptor refers to, from its `struct file` and inode.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    pub ino: u64,
    /// `s_dev` of the superblock.
    pub dev: u32,
    /// `i_mode` (type and permission bits).
    pub mode: u32,
    /// `f_flags` of the open file.
    pub flags: u32,
    /// Superblock magic (overlayfs, tmpfs, proc...).
    pub fs_magic: u32,
}

/// Indexes of the per-CPU counters map.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Records written to the ring buffer.
    Sent = 0,
    /// Records lost because the ring buffer was full.
    LostRingFull = 1,
    /// Records lost because the scratch area was unavailable.
    LostNoScratch = 2,
    /// Events from the agent itself, skipped.
    SkippedSelf = 3,
    /// Calls no loaded rule could match, dropped before a record was
    /// built: opens by the prefilter, failed path calls no rule reads.
    Filtered = 4,
    /// 32-bit (ia32) syscalls seen (each process is reported once).
    CompatSyscalls = 5,
    /// Path strings not copied at syscall entry because the table of
    /// in-flight copies was full (the exit read is then the only one).
    EntryCopyFull = 6,
}
pub const COUNTERS: u32 = 7;

/// Terms the open prefilter can hold (bits of a `u64`).
pub const PREFILTER_TERMS: usize = 64;
/// Longest name a [`NameKey`] holds; longer names match no exact entry
/// (a term naming one is not name-filtered). 30 keeps the key at 32 bytes:
/// the kernel hashes and compares every byte of it on each lookup.
pub const NAME_KEY_LEN: usize = 30;
/// Distinct suffix lengths the kernel looks up.
pub const PREFILTER_SUFFIXES: usize = 4;
/// Open flags a term can require (`O_CREAT`, `O_EXCL`, `O_TRUNC`, `O_APPEND`).
pub const PREFILTER_FLAGS: usize = 4;

/// The open prefilter as the kernel tests it (the rules' over-approximation
/// of the opens they can match, from `mamori_rules::prefilter`): a set of
/// terms, each a bit, narrowed by masks. An open is sent when some term of
/// its syscall survives. All zero means no filter: everything is sent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFilter {
    /// Bit `i` set: the filter applies to [`OpenFilter::slot`] `i`.
    pub active: u32,
    /// Suffix lengths looked up in [`NameKind::Suffix`] (0: unused).
    pub suffix_lens: [u8; PREFILTER_SUFFIXES],
    /// Terms of each syscall, by slot.
    pub type_terms: [u64; 4],
    /// Terms that need the open to have succeeded.
    pub success: u64,
    /// Terms that allow each `flags & O_ACCMODE` value.
    pub access: [u64; 4],
    /// The flags terms may require, and which terms require each.
    pub flag_bits: [u32; PREFILTER_FLAGS],
    pub flag_terms: [u64; PREFILTER_FLAGS],
    /// Terms that need "../" in the path as passed (`fd.nameraw`).
    pub dotdot: u64,
    /// Terms that constrain the last path component.
    pub name: u64,
    /// Terms among those that accept a suffix of it.
    pub suffix: u64,
    /// Terms that constrain the component before it.
    pub dir: u64,
    /// Bit `n` set: some whole last component of length `n` is in the name
    /// map. Any other length is looked up no further: a name map lookup
    /// (read the name, hash it) is the costliest step of a dropped open.
    pub last_lens: u64,
    /// The same for the component before the last.
    pub dir_lens: u64,
}

impl OpenFilter {
    /// The slot of an open syscall, or `None` for another syscall.
    pub const fn slot(nr: u32) -> Option<usize> {
        match nr {
            syscalls::OPEN => Some(0),
            syscalls::OPENAT => Some(1),
            syscalls::OPENAT2 => Some(2),
            syscalls::CREAT => Some(3),
            _ => None,
        }
    }
}

/// What a [`NameKey`] names.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// The last path component, whole.
    Last = 1,
    /// The last `len` bytes of the last path component.
    Suffix = 2,
    /// The component before the last, whole.
    Dir = 3,
}

/// Key of the prefilter's name map; the value is the mask of terms that
/// accept the name. Unused bytes are zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NameKey {
    pub kind: u8,
    pub len: u8,
    pub bytes: [u8; NAME_KEY_LEN],
}

impl NameKey {
    /// The key of `name`, or `None` when it is too long to be one.
    pub fn new(kind: NameKind, name: &[u8]) -> Option<Self> {
        if name.len() > NAME_KEY_LEN {
            return None;
        }
        let mut bytes = [0; NAME_KEY_LEN];
        bytes[..name.len()].copy_from_slice(name);
        Some(Self {
            kind: kind as u8,
            len: name.len() as u8,
            bytes,
        })
    }
}

/// Run-time settings the loader writes into `.rodata` before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The agent's own tgid: its events are never sent.
    pub agent_tgid: u32,
    /// Wake the reader only once this many bytes wait in the ring.
    pub wakeup_bytes: u32,
    /// Index of the cgroup v1 subsystem whose cgroup names containers, or
    /// `u32::MAX` to use the v2 (default) hierarchy.
    pub cgroup_subsys: u32,
    /// Bytes of the environment to capture at exec (0 disables).
    pub env_bytes: u32,
    /// Bytes of the command line to capture at exec (at most `MAX_STR`).
    pub args_bytes: u32,
    /// Bytes of the data of socket sends and receives to capture
    /// (`evt.buffer`; at most `MAX_BYTES`, 0 disables).
    pub buffer_bytes: u32,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<EventHeader>() == 120);
    assert!(offset_of!(EventHeader, size) == 4);
    assert!(offset_of!(EventHeader, boot_ns) == 8);
    assert!(offset_of!(EventHeader, cgroup_id) == 72);
    assert!(offset_of!(EventHeader, ret) == 96);
    assert!(offset_of!(EventHeader, comm) == 104);
    assert!(size_of::<SyscallBody>() == 48);
    assert!(size_of::<ExecBody>() == 56);
    assert!(size_of::<ForkBody>() == 24);
    assert!(size_of::<ExitBody>() == 16);
    assert!(size_of::<ParamHeader>() == PARAM_ALIGN);
    assert!(size_of::<SockTuple>() == 48);
    assert!(size_of::<FileInfo>() == 24);
    assert!(size_of::<Settings>() == 24);
    assert!(size_of::<OpenFilter>() == 176);
    assert!(size_of::<NameKey>() == 32);
    assert!(MAX_STR + size_of::<ParamHeader>() < MAX_RECORD);
};

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], made only of integers and integer
    // arrays, and have no padding (checked by the size asserts above).
    unsafe impl aya::Pod for super::EventHeader {}
    unsafe impl aya::Pod for super::Settings {}
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::OpenFilter {}
    unsafe impl aya::Pod for super::NameKey {}
}
