//! Process life from the scheduler's BTF tracepoints: what the kernel
//! executed (`linux_binprm`), who forked whom, who exited.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use mamori_common::{
    EXE_READ, EXE_UPPER, EventKind, ExecBody, ExitBody, ForkBody, OVERLAYFS_MAGIC, ParamType,
    offsets::MISSING, syscalls,
};

use crate::{
    fd::file_info,
    kernel::{
        cgroup_kn, current_regs, current_task, fill_header, forget_compat, forget_task, is_self,
        ptr, read, read_user,
    },
    loader_env::push_loader_env,
    maps::{off, setting},
    path::{file_path, push_path, task_cwd, task_root},
    record::Record,
};

const PIDTYPE_PGID: u32 = 2;
const PIDTYPE_SID: u32 = 3;
const SIGCHLD: u64 = 17;
const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;

/// `sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> u32 {
    unsafe {
        let bprm: u64 = ctx.arg(2);
        exec(bprm);
    }
    0
}

/// # Safety
///
/// Only from the `sched_*` tracepoint program it serves; the `u64` arguments
/// are kernel addresses from that tracepoint's own arguments (BTF-typed) or 0.
#[inline(always)]
unsafe fn exec(bprm: u64) {
    if is_self() {
        return;
    }
    forget_compat();
    let task = current_task();
    let Some(mut rec) = Record::begin(EventKind::Exec, size_of::<ExecBody>() as u32) else {
        return;
    };
    fill_header(rec.header(), current_regs().nr, 0, true);
    let file = ptr(bprm, off!(bprm_file));
    let inode = ptr(file, off!(file_inode));
    let signal = ptr(task, off!(task_signal));
    *rec.body::<ExecBody>() = ExecBody {
        sid: host_pid(ptr(signal, off!(signal_pids).wrapping_add(PIDTYPE_SID * 8))),
        pgid: host_pid(ptr(
            signal,
            off!(signal_pids).wrapping_add(PIDTYPE_PGID * 8),
        )),
        tty: tty(ptr(signal, off!(signal_tty))),
        exe_nlink: read::<u32>(inode, off!(inode_nlink)).unwrap_or(u32::MAX),
        start_boot_ns: read::<u64>(task, off!(task_start_boottime)).unwrap_or(0),
        ..exe_facts(inode)
    };

    let root = task_root(task);
    let (dentry, mnt) = file_path(file);
    push_path(&mut rec, dentry, mnt, &root, ParamType::KernelPath);
    rec.push_value(&file_info(file), ParamType::FileInfo);
    rec.push_kernel_str(ptr(bprm, off!(bprm_filename)));
    rec.push_kernel_str(ptr(bprm, off!(bprm_interp)));
    let mm = ptr(task, off!(task_mm));
    rec.push_user_range(
        ptr(mm, off!(mm_arg_start)),
        ptr(mm, off!(mm_arg_end)),
        setting!(args_bytes),
    );
    let env = (ptr(mm, off!(mm_env_start)), ptr(mm, off!(mm_env_end)));
    rec.push_user_range(env.0, env.1, setting!(env_bytes));
    let (dentry, mnt) = task_cwd(task);
    push_path(&mut rec, dentry, mnt, &root, ParamType::KernelPath);
    let kn = cgroup_kn(task);
    rec.push_kernel_str(ptr(kn, off!(kernfs_name)));
    rec.push_kernel_str(ptr(ptr(kn, off!(kernfs_parent)), off!(kernfs_name)));
    push_loader_env(&mut rec, env.0, env.1, setting!(env_bytes) as u64);
    rec.submit();
}

/// What Falco's `proc.is_exe_upper_layer`, `proc.exe_ino.ctime` and
/// `proc.is_exe_writable` need of the executable's inode: its owner, its
/// times, and for an overlayfs file whether it has an upper-layer copy
/// (was written or changed in the container).
///
/// # Safety
///
/// Only from a BPF program; `inode` is a kernel address or 0.
#[inline(always)]
unsafe fn exe_facts(inode: u64) -> ExecBody {
    let (Some(uid), Some(ctime), Some(mtime)) = (
        read::<u32>(inode, off!(inode_uid)),
        read::<i64>(inode, off!(inode_ctime_sec)),
        read::<i64>(inode, off!(inode_mtime_sec)),
    ) else {
        return ExecBody::default();
    };
    let ns = |sec: i64, nsec: Option<u32>| {
        (sec.max(0) as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(u64::from(nsec.unwrap_or(0)))
    };
    let magic = read::<u64>(ptr(inode, off!(inode_sb)), off!(sb_magic)).unwrap_or(0) as u32;
    let (vfs, upper) = (off!(ovl_inode_vfs), off!(ovl_inode_upper));
    let mut flags = EXE_READ;
    if magic == OVERLAYFS_MAGIC && vfs != MISSING && upper != MISSING {
        // The ovl_inode around this vfs_inode.
        let ovl = inode.wrapping_sub(u64::from(vfs));
        if ptr(ovl, upper) != 0 {
            flags |= EXE_UPPER;
        }
    }
    ExecBody {
        exe_flags: flags,
        exe_uid: uid,
        exe_gid: read::<u32>(inode, off!(inode_gid)).unwrap_or(u32::MAX),
        exe_ctime_ns: ns(ctime, read::<u32>(inode, off!(inode_ctime_nsec))),
        exe_mtime_ns: ns(mtime, read::<u32>(inode, off!(inode_mtime_nsec))),
        ..ExecBody::default()
    }
}

/// A `struct pid`'s number in the initial namespace (`numbers[0].nr`).
///
/// # Safety
///
/// Only from the `sched_*` tracepoint program it serves; the `u64` arguments
/// are kernel addresses from that tracepoint's own arguments (BTF-typed) or 0.
#[inline(always)]
unsafe fn host_pid(pid: u64) -> u32 {
    read::<u32>(pid, off!(pid_numbers)).unwrap_or(0)
}

/// `(major << 20) | minor` of a `struct tty_struct *`, 0 for none.
///
/// # Safety
///
/// Only from the `sched_*` tracepoint program it serves; the `u64` arguments
/// are kernel addresses from that tracepoint's own arguments (BTF-typed) or 0.
#[inline(always)]
unsafe fn tty(tty: u64) -> u32 {
    if tty == 0 {
        return 0;
    }
    let driver = ptr(tty, off!(tty_driver));
    let major = read::<u32>(driver, off!(tty_driver_major)).unwrap_or(0);
    let minor_start = read::<u32>(driver, off!(tty_driver_minor_start)).unwrap_or(0);
    let index = read::<u32>(tty, off!(tty_index)).unwrap_or(0);
    (major << 20) | ((minor_start + index) & 0xfffff)
}

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> u32 {
    unsafe {
        let child: u64 = ctx.arg(1);
        fork(child);
    }
    0
}

/// # Safety
///
/// Only from the `sched_*` tracepoint program it serves; the `u64` arguments
/// are kernel addresses from that tracepoint's own arguments (BTF-typed) or 0.
#[inline(always)]
unsafe fn fork(child: u64) {
    if is_self() {
        return;
    }
    let regs = current_regs();
    let flags = match regs.nr {
        syscalls::CLONE => regs.args[0],
        syscalls::CLONE3 => read_user::<u64>(regs.args[0]).unwrap_or(0),
        syscalls::FORK => SIGCHLD,
        syscalls::VFORK => CLONE_VM | CLONE_VFORK | SIGCHLD,
        _ => 0,
    };
    let Some(rec) = Record::begin(EventKind::Fork, size_of::<ForkBody>() as u32) else {
        return;
    };
    let child_tid = read::<u32>(child, off!(task_pid)).unwrap_or(0);
    fill_header(rec.header(), regs.nr, child_tid as i64, false);
    let leader = ptr(child, off!(task_group_leader));
    *rec.body::<ForkBody>() = ForkBody {
        child_tgid: read::<u32>(child, off!(task_tgid)).unwrap_or(0),
        child_tid,
        child_ns_tgid: deepest_nr(ptr(leader, off!(task_thread_pid))),
        child_ns_tid: deepest_nr(ptr(child, off!(task_thread_pid))),
        clone_flags: flags,
    };
    rec.submit();
}

/// A `struct pid`'s number at its deepest level (its own namespace).
///
/// # Safety
///
/// Only from the `sched_*` tracepoint program it serves; the `u64` arguments
/// are kernel addresses from that tracepoint's own arguments (BTF-typed) or 0.
#[inline(always)]
unsafe fn deepest_nr(pid: u64) -> u32 {
    let level = read::<u32>(pid, off!(pid_level)).unwrap_or(0) & 31;
    read::<u32>(pid, off!(pid_numbers).wrapping_add(level * 16)).unwrap_or(0)
}

/// `sched_process_exit(struct task_struct *p, ...)`
#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(_ctx: BtfTracePointContext) -> u32 {
    unsafe { exit() };
    0
}

/// # Safety
///
/// Only from the `sched_*` tracepoint program it serves; the `u64` arguments
/// are kernel addresses from that tracepoint's own arguments (BTF-typed) or 0.
#[inline(always)]
unsafe fn exit() {
    if is_self() {
        return;
    }
    let task = current_task();
    let Some(rec) = Record::begin(EventKind::Exit, size_of::<ExitBody>() as u32) else {
        return;
    };
    fill_header(rec.header(), u32::MAX, 0, false);
    forget_task();
    let signal = ptr(task, off!(task_signal));
    let group_dead = read::<i32>(signal, off!(signal_live)).unwrap_or(1) == 0;
    if group_dead {
        forget_compat();
    }
    *rec.body::<ExitBody>() = ExitBody {
        exit_code: read::<u32>(task, off!(task_exit_code)).unwrap_or(0),
        group_dead: group_dead as u32,
        reaper_tgid: 0,
        _pad: 0,
    };
    rec.submit();
}
