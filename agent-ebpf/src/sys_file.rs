//! `sys_exit_file`: opens and the syscalls on file descriptors (the ones
//! that pass path strings are `sys_exit_path`'s).

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use mamori_common::{Counter, syscalls::*};

use crate::{
    fd::{push_fd, push_no_fd, push_sock},
    kernel::current_task,
    maps::count,
    prefilter,
    record::Record,
    syscall::on_exit,
};

#[tracepoint]
pub fn sys_exit_file(ctx: TracePointContext) -> u32 {
    unsafe {
        on_exit(
            &ctx,
            |nr, ret, a| {
                // No rule could match this open: drop it before any record is built.
                let admitted = prefilter::admits(nr, ret, a, current_task());
                if !admitted {
                    count(Counter::Filtered);
                }
                admitted
            },
            |rec, nr, a, ret| params(rec, nr, a, ret),
        )
    };
    0
}

/// # Safety
///
/// Only from the tracepoint program it serves, in that program's context (the
/// current task is the one making the syscall). `rec` is the record this CPU
/// is building.
#[inline(always)]
unsafe fn params(rec: &mut Record, nr: u32, a: &[u64; 6], ret: i64) {
    let task = current_task();
    match nr {
        OPEN | CREAT | MEMFD_CREATE => {
            rec.push_user_str(a[0]);
            opened(rec, task, ret);
        }
        OPENAT => {
            rec.push_user_str(a[1]);
            opened(rec, task, ret);
        }
        OPENAT2 => {
            rec.push_user_str(a[1]);
            opened(rec, task, ret);
            rec.push_user_bytes(a[2], 24); // struct open_how
        }
        FCHMOD | FCHDIR => push_fd(rec, task, a[0] as i32 as i64),
        // What the new descriptor refers to, from the kernel's objects: a
        // rule on dup needs no descriptor table kept from every open.
        DUP | DUP2 | DUP3 => {
            push_fd(rec, task, ret);
            push_sock(rec, task, ret);
        }
        _ => {}
    }
}

/// Path and file info of the descriptor an open-like call returned.
///
/// # Safety
///
/// Only from the tracepoint program it serves, in that program's context (the
/// current task is the one making the syscall). `rec` is the record this CPU
/// is building.
#[inline(always)]
unsafe fn opened(rec: &mut Record, task: u64, ret: i64) {
    if ret >= 0 {
        push_fd(rec, task, ret);
    } else {
        push_no_fd(rec);
    }
}
