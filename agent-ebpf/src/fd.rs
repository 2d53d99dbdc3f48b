//! What a file descriptor refers to, read from the kernel's own objects
//! (the task's fd table, the `struct file`, its inode and socket) rather
//! than from the caller's arguments.

use mamori_common::{FileInfo, ParamType, SockTuple, offsets::MISSING};

use crate::{
    kernel::{load, ptr, read},
    maps::off,
    path::{file_path, push_path, task_root},
    record::Record,
};

const S_IFMT: u32 = 0o170000;
const S_IFSOCK: u32 = 0o140000;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// The `struct file *` behind `fd` in `task`'s table; 0 when none.
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
pub unsafe fn fd_file(task: u64, fd: i64) -> u64 {
    if fd < 0 {
        return 0;
    }
    // task -> files -> fdt are BTF-typed struct pointers: direct loads.
    let files = load::<u64>(task, off!(task_files));
    if files == 0 {
        return 0;
    }
    let fdt = load::<u64>(files, off!(files_fdt));
    if fdt == 0 {
        return 0;
    }
    let max = load::<u32>(fdt, off!(fdtable_max_fds));
    let array = load::<u64>(fdt, off!(fdtable_fd));
    if fd as u64 >= max as u64 {
        return 0;
    }
    if array == 0 {
        return 0;
    }
    read::<u64>(array, ((fd as u32) & 0x0fff_ffff).wrapping_mul(8)).unwrap_or(0)
}

/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
#[inline(always)]
pub unsafe fn file_info(file: u64) -> FileInfo {
    let inode = ptr(file, off!(file_inode));
    let sb = ptr(inode, off!(inode_sb));
    FileInfo {
        ino: read::<u64>(inode, off!(inode_ino)).unwrap_or(0),
        dev: read::<u32>(sb, off!(sb_dev)).unwrap_or(0),
        mode: read::<u16>(inode, off!(inode_mode)).unwrap_or(0) as u32,
        flags: read::<u32>(file, off!(file_flags)).unwrap_or(0),
        fs_magic: read::<u64>(sb, off!(sb_magic)).unwrap_or(0) as u32,
    }
}

/// Pushes the fd's resolved path and its [`FileInfo`] (two parameters).
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting. `rec` is
/// the record this CPU is building.
#[inline(always)]
pub unsafe fn push_fd(rec: &mut Record, task: u64, fd: i64) {
    push_file(rec, task, fd_file(task, fd));
}

/// Pushes a `struct file`'s resolved path and its [`FileInfo`] (two
/// parameters, absent when `file` is 0).
///
/// # Safety
///
/// As [`push_fd`]; `file` is a kernel address or 0, read through
/// `bpf_probe_read_kernel`.
#[inline(always)]
pub unsafe fn push_file(rec: &mut Record, task: u64, file: u64) {
    if file == 0 {
        rec.push_absent(ParamType::KernelPath);
        rec.push_absent(ParamType::FileInfo);
        return;
    }
    let (dentry, mnt) = file_path(file);
    let root = task_root(task);
    push_path(rec, dentry, mnt, &root, ParamType::KernelPath);
    rec.push_value(&file_info(file), ParamType::FileInfo);
}

/// Pushes the socket addresses behind `fd` as a [`SockTuple`].
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting. `rec` is
/// the record this CPU is building.
#[inline(always)]
pub unsafe fn push_sock(rec: &mut Record, task: u64, fd: i64) {
    push_sock_file(rec, fd_file(task, fd));
}

/// Pushes the socket addresses of a `struct file` as a [`SockTuple`]
/// (absent when it is not a socket).
///
/// # Safety
///
/// As [`push_sock`]; `file` is a kernel address or 0, read through
/// `bpf_probe_read_kernel`.
#[inline(always)]
pub unsafe fn push_sock_file(rec: &mut Record, file: u64) {
    let inode = ptr(file, off!(file_inode));
    let mode = read::<u16>(inode, off!(inode_mode)).unwrap_or(0) as u32;
    if file == 0 || mode & S_IFMT != S_IFSOCK {
        rec.push_absent(ParamType::SockTuple);
        return;
    }
    let socket = ptr(file, off!(file_private));
    let sk = ptr(socket, off!(socket_sk));
    let skc = sk.wrapping_add(off!(sock_common) as u64);
    let family = read::<u16>(skc, off!(skc_family)).unwrap_or(0);
    let mut t = SockTuple {
        family,
        sock_type: read::<u16>(socket, off!(socket_type)).unwrap_or(0),
        protocol: read::<u16>(sk, off!(sock_protocol)).unwrap_or(0),
        state: read::<u8>(skc, off!(skc_state)).unwrap_or(0) as u16,
        lport: read::<u16>(skc, off!(skc_num)).unwrap_or(0),
        rport: u16::from_be(read::<u16>(skc, off!(skc_dport)).unwrap_or(0)),
        _pad: 0,
        laddr: [0; 16],
        raddr: [0; 16],
    };
    if family == AF_INET {
        let l = read::<[u8; 4]>(skc, off!(skc_rcv_saddr)).unwrap_or([0; 4]);
        let r = read::<[u8; 4]>(skc, off!(skc_daddr)).unwrap_or([0; 4]);
        t.laddr[..4].copy_from_slice(&l);
        t.raddr[..4].copy_from_slice(&r);
    } else if family == AF_INET6 {
        t.laddr = read::<[u8; 16]>(skc, off!(skc_v6_rcv_saddr)).unwrap_or([0; 16]);
        t.raddr = read::<[u8; 16]>(skc, off!(skc_v6_daddr)).unwrap_or([0; 16]);
    }
    rec.push_value(&t, ParamType::SockTuple);
}

/// An absent fd pair, for failed calls.
///
/// # Safety
///
/// Only from a BPF program, on the record this CPU is building in its per-CPU
/// scratch area (from `Record::begin`): BPF programs run to completion on one
/// CPU, so nothing else writes that area meanwhile.
#[inline(always)]
pub unsafe fn push_no_fd(rec: &mut Record) {
    rec.push_absent(ParamType::KernelPath);
    rec.push_absent(ParamType::FileInfo);
}

/// `PIDFS_MAGIC`: pidfds live in pidfs since 6.9; the `struct pid` is the
/// inode's `i_private` (the file's `private_data` in 6.9).
const PIDFS_MAGIC: u32 = 0x5049_4446;
/// `PROC_SUPER_MAGIC`: a `/proc/PID` directory fd, which
/// `pidfd_send_signal` also accepts; the pid hangs off its `proc_inode`.
const PROC_SUPER_MAGIC: u32 = 0x9fa0;

/// The host pid that `fd` names when it is a pidfd or a `/proc/PID`
/// directory: taken from the kernel's `struct pid`, so neither a number in
/// the caller's memory nor a pid namespace can misname the target.
///
/// # Safety
///
/// As [`fd_file`]: only from a BPF program, `task` the current task.
#[inline(always)]
pub unsafe fn fd_pid(task: u64, fd: i64) -> Option<u32> {
    let file = fd_file(task, fd);
    let inode = ptr(file, off!(file_inode));
    let magic = read::<u64>(ptr(inode, off!(inode_sb)), off!(sb_magic))? as u32;
    let pid = match magic {
        PIDFS_MAGIC => match ptr(inode, off!(inode_private)) {
            0 => ptr(file, off!(file_private)),
            pid => pid,
        },
        PROC_SUPER_MAGIC => {
            let vfs = off!(proc_inode_vfs);
            if vfs == MISSING {
                return None;
            }
            ptr(inode.wrapping_sub(vfs as u64), off!(proc_inode_pid))
        }
        _ => return None,
    };
    // `numbers[0]` is the pid in the initial namespace; `nr` leads `upid`.
    read::<u32>(pid, off!(pid_numbers)).filter(|&nr| nr != 0)
}

/// Which bpf object an fd is expected to hold (the command says).
#[derive(Clone, Copy)]
pub enum BpfObject {
    Map,
    Link,
    Prog,
}

/// The id of the bpf map, link or program behind `fd` (its
/// `private_data`), as `bpftool` and `/proc/PID/fdinfo` show it.
///
/// # Safety
///
/// As [`fd_file`]: only from a BPF program, `task` the current task. The
/// caller knows from a successful command which object the fd holds.
#[inline(always)]
pub unsafe fn fd_bpf_id(task: u64, fd: i64, kind: BpfObject) -> Option<u32> {
    let obj = ptr(fd_file(task, fd), off!(file_private));
    match kind {
        BpfObject::Map => read::<u32>(obj, off!(bpf_map_id)),
        BpfObject::Link => read::<u32>(obj, off!(bpf_link_id)),
        BpfObject::Prog => read::<u32>(ptr(obj, off!(bpf_prog_aux)), off!(bpf_prog_aux_id)),
    }
}
