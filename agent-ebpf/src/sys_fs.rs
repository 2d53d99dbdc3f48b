//! `sys_exit_fs`: the descriptor-based doors to what `sys_exit_file`
//! watches — `ftruncate`, `fsmount`, `open_by_handle_at` and descriptor
//! duplication through `fcntl` (truncate, chroot, pivot_root and the rest
//! of the new mount API pass path strings: `sys_exit_path`). A
//! program of their own, so each family's program stays within what the
//! verifier accepts.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use mamori_common::{Counter, syscalls::*};

use crate::{
    fd::{push_fd, push_no_fd, push_sock},
    kernel::current_task,
    maps::count,
    record::Record,
    syscall::on_exit,
};

/// `fcntl` commands that duplicate a descriptor.
const F_DUPFD: u64 = 0;
const F_DUPFD_CLOEXEC: u64 = 1030;

#[tracepoint]
pub fn sys_exit_fs(ctx: TracePointContext) -> u32 {
    unsafe {
        on_exit(
            &ctx,
            |nr, _, a| {
                // Of fcntl, only the commands that make a descriptor matter.
                let dup = nr != FCNTL || a[1] == F_DUPFD || a[1] == F_DUPFD_CLOEXEC;
                if !dup {
                    count(Counter::Filtered);
                }
                dup
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
        // The descriptor the call works on (ftruncate) or made
        // (open_by_handle_at), from the kernel's objects.
        FTRUNCATE | OPEN_BY_HANDLE_AT => {
            let fd = if nr == FTRUNCATE {
                a[0] as i32 as i64
            } else {
                ret
            };
            if fd >= 0 {
                push_fd(rec, task, fd);
            } else {
                push_no_fd(rec);
            }
        }
        // The new descriptor, described as dup's is.
        FCNTL => {
            push_fd(rec, task, ret);
            push_sock(rec, task, ret);
        }
        _ => {}
    }
}
