//! What every syscall-exit program shares: filtering, the header and the
//! argument registers.

use aya_ebpf::programs::TracePointContext;
use mamori_common::{Counter, EventKind, SyscallBody};

use crate::{
    kernel::{current_regs, fill_header, is_self},
    maps::{count, enabled},
    record::Record,
};

/// `__syscall_nr` and `ret` of a `syscalls:sys_exit_*` record
/// (`/sys/kernel/tracing/events/syscalls/sys_exit_*/format`).
///
/// # Safety
///
/// Only from the tracepoint program it serves, in that program's context (the
/// current task is the one making the syscall).
#[inline(always)]
pub unsafe fn exit_args(ctx: &TracePointContext) -> Option<(u32, i64)> {
    use aya_ebpf::EbpfContext;
    // The context is readable memory for tracepoint programs: direct loads,
    // no helper calls.
    let base = ctx.as_ptr() as *const u8;
    let nr = core::ptr::read_volatile(base.add(8) as *const i32) as u32;
    let ret = core::ptr::read_volatile(base.add(16) as *const i64);
    Some((nr, ret))
}

/// Whether syscall `nr` is wanted and the caller is not the agent.
///
/// # Safety
///
/// Only from a BPF program (it reads the settings and syscall maps).
#[inline(always)]
pub unsafe fn wanted(nr: u32) -> bool {
    if !enabled(nr) {
        return false;
    }
    if is_self() {
        count(Counter::SkippedSelf);
        return false;
    }
    true
}

/// Starts the record of syscall `nr` with its argument registers `args`.
///
/// # Safety
///
/// Only from the tracepoint program it serves, in that program's context (the
/// current task is the one making the syscall).
#[inline(always)]
pub unsafe fn start(nr: u32, ret: i64, args: &[u64; 6]) -> Option<Record> {
    let rec = Record::begin(EventKind::Syscall, size_of::<SyscallBody>() as u32)?;
    // A namespace change is visible in the header of the call that made it.
    let refresh = nr == mamori_common::syscalls::SETNS || nr == mamori_common::syscalls::UNSHARE;
    fill_header(rec.header(), nr, ret, refresh);
    (*rec.body::<SyscallBody>()).args = *args;
    Some(rec)
}

/// The body of a family's exit program: when syscall `nr` is wanted, the
/// caller is not the agent and `keep` (a cheap test of the result and the
/// registers, before any record is built) admits the call, its record with
/// the parameters `params` pushes.
///
/// # Safety
///
/// Only from the tracepoint program it serves, in that program's context (the
/// current task is the one making the syscall).
#[inline(always)]
pub unsafe fn on_exit(
    ctx: &TracePointContext,
    keep: impl FnOnce(u32, i64, &[u64; 6]) -> bool,
    params: impl FnOnce(&mut Record, u32, &[u64; 6], i64),
) {
    let Some((nr, ret)) = exit_args(ctx) else {
        return;
    };
    if !wanted(nr) {
        return;
    }
    let a = current_regs().args;
    if !keep(nr, ret, &a) {
        return;
    }
    let Some(mut rec) = start(nr, ret, &a) else {
        return;
    };
    params(&mut rec, nr, &a, ret);
    rec.submit();
}

/// Starts a syscall record when `nr` is wanted and the caller is not the
/// agent. Returns the record and the argument registers.
///
/// # Safety
///
/// Only from the tracepoint program it serves, in that program's context (the
/// current task is the one making the syscall).
#[inline(always)]
pub unsafe fn begin(nr: u32, ret: i64) -> Option<(Record, [u64; 6])> {
    if !wanted(nr) {
        return None;
    }
    let regs = current_regs();
    Some((start(nr, ret, &regs.args)?, regs.args))
}
