//! `sys_exit_proc`: credentials, process control and the kernel
//! (ptrace, kill, namespaces, modules, bpf). `raw_sys_exit` runs the same
//! code for captured syscalls that have no tracepoint on this kernel.

use aya_ebpf::{
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use mamori_common::syscalls::*;

use aya_ebpf::helpers::generated::bpf_get_current_pid_tgid;
use mamori_common::{Counter, ParamType};

use crate::{
    fd::{BpfObject, fd_bpf_id, fd_pid, push_fd},
    kernel::{current_task, in_compat_syscall, is_self, read_user},
    maps::{COMPAT_SEEN, ENABLED, count},
    record::Record,
    syscall::{begin, exit_args, start},
};

/// `ENABLED` value of a syscall that only `raw_sys_exit` can see.
const VIA_RAW: u8 = 2;

#[tracepoint]
pub fn sys_exit_proc(ctx: TracePointContext) -> u32 {
    unsafe {
        let Some((nr, ret)) = exit_args(&ctx) else {
            return 0;
        };
        handle(nr, ret);
    }
    0
}

/// `sys_exit(struct pt_regs *regs, long ret)` as a BTF tracepoint. It runs
/// on every syscall of the host, so a syscall nobody wants costs one direct
/// load (`regs->orig_ax`, typed by BTF: no helper call) and one array
/// lookup, and nothing else.
///
/// A 32-bit syscall (`TS_COMPAT` set) is never read as the 64-bit call
/// with the same number (ia32 175 is `rt_sigprocmask`, x86_64 175
/// `init_module`): it is reported once per process as `compat_syscall`.
#[btf_tracepoint(function = "sys_exit")]
pub fn raw_sys_exit(ctx: BtfTracePointContext) -> i32 {
    unsafe {
        let regs: *const u64 = ctx.arg(0);
        // x86_64 `struct pt_regs`: orig_ax is the 16th u64 (offset 120).
        let nr = core::ptr::read_volatile(regs.add(15)) as u32;
        if in_compat_syscall() {
            compat(nr, ctx.arg(1), regs);
            return 0;
        }
        match ENABLED.get(nr) {
            Some(v) if *v == VIA_RAW => {}
            _ => return 0,
        }
        let ret: i64 = ctx.arg(1);
        handle(nr, ret);
    }
    0
}

/// Reports the current process's first 32-bit syscall: its ia32 number and
/// argument registers (bx, cx, dx, si, di). Later ones are counted only
/// (`COMPAT_SEEN` remembers the process until it execs or exits).
///
/// # Safety
///
/// Only from `raw_sys_exit`; `regs` is its BTF-typed `struct pt_regs *`.
#[inline(always)]
unsafe fn compat(nr: u32, ret: i64, regs: *const u64) {
    match ENABLED.get(COMPAT_SYSCALL) {
        Some(v) if *v == VIA_RAW => {}
        _ => return,
    }
    count(Counter::CompatSyscalls);
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if COMPAT_SEEN.get(&tgid).is_some() || is_self() {
        return;
    }
    let _ = COMPAT_SEEN.insert(&tgid, &1, 0);
    let reg = |slot: usize| core::ptr::read_volatile(regs.add(slot)) & 0xffff_ffff;
    // ia32 arguments: bx, cx, dx, si, di by their pt_regs slots.
    let args = [nr as u64, reg(5), reg(11), reg(12), reg(13), reg(14)];
    let Some(rec) = start(COMPAT_SYSCALL, ret, &args) else {
        return;
    };
    rec.submit();
}

/// # Safety
///
/// Only from the tracepoint program it serves, in that program's context (the
/// current task is the one making the syscall).
#[inline(always)]
unsafe fn handle(nr: u32, ret: i64) {
    // A successful exec is reported by sched_process_exec, with the
    // kernel's view of what ran.
    if (nr == EXECVE || nr == EXECVEAT) && ret == 0 {
        return;
    }
    let Some((mut rec, a)) = begin(nr, ret) else {
        return;
    };
    params(&mut rec, nr, ret, &a);
    rec.submit();
}

/// `prctl` option that renames the calling thread.
const PR_SET_NAME: u64 = 15;

/// # Safety
///
/// Only from the tracepoint program it serves, in that program's context (the
/// current task is the one making the syscall).
#[inline(always)]
unsafe fn params(rec: &mut Record, nr: u32, ret: i64, a: &[u64; 6]) {
    match nr {
        EXECVE => rec.push_user_str(a[0]),
        EXECVEAT => rec.push_user_str(a[1]),
        INIT_MODULE => rec.push_user_str(a[2]),
        FINIT_MODULE => {
            rec.push_user_str(a[1]);
            push_fd(rec, current_task(), a[0] as i32 as i64);
        }
        SETNS => push_fd(rec, current_task(), a[0] as i32 as i64),
        // The name as passed; the kernel's copy is the header's comm.
        PRCTL if a[0] == PR_SET_NAME => rec.push_user_str(a[1]),
        PIDFD_SEND_SIGNAL | PIDFD_GETFD => {
            push_id(rec, fd_pid(current_task(), a[0] as i32 as i64));
        }
        BPF => bpf_object(rec, a[0], a[1], ret),
        _ => {}
    }
}

/// `bpf` commands that hand out or change a map, link or program.
const BPF_MAP_UPDATE_ELEM: u64 = 2;
const BPF_MAP_DELETE_ELEM: u64 = 3;
const BPF_PROG_GET_FD_BY_ID: u64 = 13;
const BPF_MAP_GET_FD_BY_ID: u64 = 14;
const BPF_MAP_FREEZE: u64 = 22;
const BPF_LINK_UPDATE: u64 = 29;
const BPF_LINK_GET_FD_BY_ID: u64 = 30;
const BPF_LINK_DETACH: u64 = 34;

/// The id of the object a `bpf` call took or changed: for `*_GET_FD_BY_ID`
/// the object behind the fd it returned (the kernel's, not the id the
/// caller asked for), for the others the object behind the attribute's
/// fd (its first `u32` for these commands). Other commands carry nothing.
///
/// # Safety
///
/// Only from the tracepoint program it serves (the current task made the
/// call; `attr` is its user pointer).
#[inline(always)]
unsafe fn bpf_object(rec: &mut Record, cmd: u64, attr: u64, ret: i64) {
    let task = current_task();
    let (fd, kind) = match cmd {
        BPF_MAP_GET_FD_BY_ID => (ret, BpfObject::Map),
        BPF_LINK_GET_FD_BY_ID => (ret, BpfObject::Link),
        BPF_PROG_GET_FD_BY_ID => (ret, BpfObject::Prog),
        BPF_MAP_UPDATE_ELEM | BPF_MAP_DELETE_ELEM | BPF_MAP_FREEZE => {
            (attr_fd(attr), BpfObject::Map)
        }
        BPF_LINK_UPDATE | BPF_LINK_DETACH => (attr_fd(attr), BpfObject::Link),
        _ => return,
    };
    push_id(rec, fd_bpf_id(task, fd, kind));
}

/// The fd in the first `u32` of a `bpf` attribute; -1 when unreadable.
#[inline(always)]
unsafe fn attr_fd(attr: u64) -> i64 {
    read_user::<u32>(attr).map_or(-1, |fd| fd as i32 as i64)
}

/// # Safety
///
/// As [`Record::push_value`].
#[inline(always)]
unsafe fn push_id(rec: &mut Record, id: Option<u32>) {
    match id {
        Some(id) => rec.push_value(&id, ParamType::KernelId),
        None => rec.push_absent(ParamType::KernelId),
    }
}
