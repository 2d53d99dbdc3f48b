//! The syscalls mamori captures (x86_64 numbers) and which kernel program
//! handles each one's exit.
//!
//! Parameter layout of each syscall's [`crate::EventKind::Syscall`] record,
//! in order (the decoder relies on it):
//!
//! | syscalls | parameters |
//! | --- | --- |
//! | open, openat, openat2, creat | path (user), fd path (kernel), fd [`crate::FileInfo`], openat2: `open_how` (user bytes) |
//! | unlink(at), rmdir, mkdir(at), chmod, fchmodat, chdir, umount2 | path (user) |
//! | rename(at/at2), link(at), symlink(at) | old path / target (user), new path / link path (user) |
//! | fchmod, fchdir, setns, finit_module | fd path (kernel), fd [`crate::FileInfo`] |
//! | dup, dup2, dup3 | new fd's path (kernel), its [`crate::FileInfo`], its socket [`crate::SockTuple`] |
//! | memfd_create | name (user), fd path (kernel), fd [`crate::FileInfo`] |
//! | mount | source, target, fstype (user) |
//! | truncate, chroot, fsopen, open_tree, mount_setattr | path / fs name (user) |
//! | fchmodat2 | path (user) |
//! | pivot_root, move_mount | new root / from path (user), old root / to path (user) |
//! | fsconfig | key (user), value (user, `FSCONFIG_SET_STRING` only) |
//! | ftruncate, open_by_handle_at | fd path (kernel), fd [`crate::FileInfo`] (the argument's fd; open_by_handle_at: the new one) |
//! | fcntl (`F_DUPFD`, `F_DUPFD_CLOEXEC` only; others are not sent) | as dup |
//! | init_module, finit_module | module params (user) |
//! | prctl (PR_SET_NAME only) | the new name (user) |
//! | pidfd_send_signal, pidfd_getfd | the pid the fd names (`KernelId`: a pidfd or a `/proc/PID` directory; absent when neither) |
//! | bpf (`*_GET_FD_BY_ID`, map update/delete/freeze, link update/detach) | the map's, link's or program's id (`KernelId`, from the object behind the fd) |
//! | execve, execveat (failed only) | filename (user), argv (user list) |
//! | connect, bind | sockaddr (user bytes), socket [`crate::SockTuple`] |
//! | sendto | sockaddr (user bytes), socket [`crate::SockTuple`], data (user bytes, when `Settings::buffer_bytes`) |
//! | recvfrom, sendmsg, recvmsg | socket [`crate::SockTuple`], data (user bytes, the first buffer; when `Settings::buffer_bytes`) |
//! | accept, accept4, listen, socket | socket [`crate::SockTuple`] |
//! | everything else | none (arguments are in the body) |
//!
//! The syscalls whose path strings [`crate::path_args`] names (unlink,
//! rename, mkdir, link, symlink, chmod, truncate, chroot, mount, umount2,
//! pivot_root and the new mount API's) follow their strings with path
//! extras: one `UserStrAtExit` per string copied at entry (the first two;
//! none when no entry copy was found), then one `BaseDir` per string.
//!
//! io_uring requests reported as one of these syscalls carry the same
//! layout (see [`crate::uring`]) without the extras; their path names are
//! kernel strings.

/// Which kernel program handles a syscall's exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Program {
    /// `sys_exit_file`: paths and file descriptors.
    File,
    /// `sys_exit_fs`: the other doors to `File`'s acts (truncation,
    /// chroot, the new mount API, fchmodat2, open_by_handle_at, fcntl).
    Fs,
    /// `sys_exit_path`: syscalls that pass path strings (unlink, rename,
    /// mkdir, link, mount...): copied at entry too, with the directory each
    /// resolves against.
    Path,
    /// `sys_exit_net`: sockets.
    Net,
    /// `sys_exit_proc`: credentials, process control, kernel.
    Proc,
    /// No syscall exit record: the `sched_*` tracepoints report it.
    Sched,
    /// Not a 64-bit syscall: only `raw_sys_exit` reports it.
    Raw,
}

/// One captured syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Syscall {
    /// Name as Falco's `evt.type` spells it.
    pub name: &'static str,
    pub nr: u32,
    pub program: Program,
}

macro_rules! syscalls {
    ($( $konst:ident = $nr:literal, $name:literal, $prog:ident; )*) => {
        $( pub const $konst: u32 = $nr; )*
        /// Every captured syscall, ordered by number.
        pub const ALL: &[Syscall] = &[
            $( Syscall { name: $name, nr: $nr, program: Program::$prog }, )*
        ];
    };
}

syscalls! {
    OPEN = 2, "open", File;
    CLOSE = 3, "close", File;
    DUP = 32, "dup", File;
    DUP2 = 33, "dup2", File;
    SOCKET = 41, "socket", Net;
    CONNECT = 42, "connect", Net;
    ACCEPT = 43, "accept", Net;
    SENDTO = 44, "sendto", Net;
    RECVFROM = 45, "recvfrom", Net;
    SENDMSG = 46, "sendmsg", Net;
    RECVMSG = 47, "recvmsg", Net;
    BIND = 49, "bind", Net;
    LISTEN = 50, "listen", Net;
    CLONE = 56, "clone", Sched;
    FORK = 57, "fork", Sched;
    VFORK = 58, "vfork", Sched;
    EXECVE = 59, "execve", Proc;
    KILL = 62, "kill", Proc;
    FCNTL = 72, "fcntl", Fs;
    TRUNCATE = 76, "truncate", Path;
    FTRUNCATE = 77, "ftruncate", Fs;
    CHDIR = 80, "chdir", Path;
    FCHDIR = 81, "fchdir", File;
    RENAME = 82, "rename", Path;
    MKDIR = 83, "mkdir", Path;
    RMDIR = 84, "rmdir", Path;
    CREAT = 85, "creat", File;
    LINK = 86, "link", Path;
    UNLINK = 87, "unlink", Path;
    SYMLINK = 88, "symlink", Path;
    CHMOD = 90, "chmod", Path;
    FCHMOD = 91, "fchmod", File;
    PTRACE = 101, "ptrace", Proc;
    SETUID = 105, "setuid", Proc;
    SETGID = 106, "setgid", Proc;
    SETREUID = 113, "setreuid", Proc;
    SETREGID = 114, "setregid", Proc;
    SETRESUID = 117, "setresuid", Proc;
    SETRESGID = 119, "setresgid", Proc;
    CAPSET = 126, "capset", Proc;
    PIVOT_ROOT = 155, "pivot_root", Path;
    PRCTL = 157, "prctl", Proc;
    CHROOT = 161, "chroot", Path;
    MOUNT = 165, "mount", Path;
    UMOUNT2 = 166, "umount2", Path;
    INIT_MODULE = 175, "init_module", Proc;
    TKILL = 200, "tkill", Proc;
    TGKILL = 234, "tgkill", Proc;
    OPENAT = 257, "openat", File;
    MKDIRAT = 258, "mkdirat", Path;
    UNLINKAT = 263, "unlinkat", Path;
    RENAMEAT = 264, "renameat", Path;
    LINKAT = 265, "linkat", Path;
    SYMLINKAT = 266, "symlinkat", Path;
    FCHMODAT = 268, "fchmodat", Path;
    UNSHARE = 272, "unshare", Proc;
    ACCEPT4 = 288, "accept4", Net;
    DUP3 = 292, "dup3", File;
    OPEN_BY_HANDLE_AT = 304, "open_by_handle_at", Fs;
    SETNS = 308, "setns", Proc;
    PROCESS_VM_READV = 310, "process_vm_readv", Proc;
    PROCESS_VM_WRITEV = 311, "process_vm_writev", Proc;
    FINIT_MODULE = 313, "finit_module", Proc;
    RENAMEAT2 = 316, "renameat2", Path;
    MEMFD_CREATE = 319, "memfd_create", File;
    BPF = 321, "bpf", Proc;
    EXECVEAT = 322, "execveat", Proc;
    USERFAULTFD = 323, "userfaultfd", Proc;
    OPEN_TREE = 428, "open_tree", Path;
    PIDFD_SEND_SIGNAL = 424, "pidfd_send_signal", Proc;
    MOVE_MOUNT = 429, "move_mount", Path;
    FSOPEN = 430, "fsopen", Path;
    FSCONFIG = 431, "fsconfig", Path;
    FSMOUNT = 432, "fsmount", Fs;
    CLONE3 = 435, "clone3", Sched;
    OPENAT2 = 437, "openat2", File;
    PIDFD_GETFD = 438, "pidfd_getfd", Proc;
    MOUNT_SETATTR = 442, "mount_setattr", Path;
    FCHMODAT2 = 452, "fchmodat2", Path;
    // A process's first 32-bit (ia32) syscall, seen by `raw_sys_exit`. Not
    // a syscall: the x86_64 table never reaches this number. The record's
    // argument registers are the ia32 number and its first five arguments.
    COMPAT_SYSCALL = 511, "compat_syscall", Raw;
}

impl Syscall {
    /// Name of its `syscalls:sys_exit_*` tracepoint (the kernel's
    /// `SYSCALL_DEFINE` name, which differs for a few).
    pub const fn tracepoint(&self) -> &'static str {
        match self.nr {
            UMOUNT2 => "umount",
            _ => self.name,
        }
    }
}

/// The syscall named `name`, if captured.
pub fn by_name(name: &str) -> Option<&'static Syscall> {
    ALL.iter().find(|s| s.name == name)
}

/// The syscall numbered `nr`, if captured.
pub fn by_nr(nr: u32) -> Option<&'static Syscall> {
    ALL.iter().find(|s| s.nr == nr)
}
