//! `sys_exit_proc`: credentials, process control and the kernel
//! (ptrace, kill, namespaces, modules, bpf). `raw_sys_exit` runs the same
//! code for captured syscalls that have no tracepoint on this kernel.

use aya_ebpf::{
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use mamori_common::syscalls::*;

use crate::{
    fd::push_fd,
    kernel::current_task,
    maps::ENABLED,
    record::Record,
    syscall::{begin, exit_args},
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
#[btf_tracepoint(function = "sys_exit")]
pub fn raw_sys_exit(ctx: BtfTracePointContext) -> i32 {
    unsafe {
        let regs: *const u64 = ctx.arg(0);
        // x86_64 `struct pt_regs`: orig_ax is the 16th u64 (offset 120).
        let nr = core::ptr::read_volatile(regs.add(15)) as u32;
        match ENABLED.get(nr) {
            Some(v) if *v == VIA_RAW => {}
            _ => return 0,
        }
        let ret: i64 = ctx.arg(1);
        handle(nr, ret);
    }
    0
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
    params(&mut rec, nr, &a);
    rec.submit();
}

/// # Safety
///
/// Only from the tracepoint program it serves, in that program's context (the
/// current task is the one making the syscall).
#[inline(always)]
unsafe fn params(rec: &mut Record, nr: u32, a: &[u64; 6]) {
    match nr {
        EXECVE => rec.push_user_str(a[0]),
        EXECVEAT => rec.push_user_str(a[1]),
        INIT_MODULE => rec.push_user_str(a[2]),
        FINIT_MODULE => {
            rec.push_user_str(a[1]);
            push_fd(rec, current_task(), a[0] as i32 as i64);
        }
        SETNS => push_fd(rec, current_task(), a[0] as i32 as i64),
        _ => {}
    }
}
