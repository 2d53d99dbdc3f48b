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
#[inline(always)]
pub unsafe fn exit_args(ctx: &TracePointContext) -> Option<(u32, i64)> {
    let nr = ctx.read_at::<i32>(8).ok()? as u32;
    let ret = ctx.read_at::<i64>(16).ok()?;
    Some((nr, ret))
}

/// Starts a syscall record when `nr` is wanted and the caller is not the
/// agent. Returns the record and the argument registers.
#[inline(always)]
pub unsafe fn begin(nr: u32, ret: i64) -> Option<(Record, [u64; 6])> {
    if !enabled(nr) {
        return None;
    }
    if is_self() {
        count(Counter::SkippedSelf);
        return None;
    }
    let regs = current_regs();
    let rec = Record::begin(EventKind::Syscall, size_of::<SyscallBody>() as u32)?;
    fill_header(rec.header(), nr, ret);
    (*rec.body::<SyscallBody>()).args = regs.args;
    Some((rec, regs.args))
}
