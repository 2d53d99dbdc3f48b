//! `sys_exit_fs`: the other doors to what `sys_exit_file` watches —
//! truncation, chroot and pivot_root, the new mount API, `fchmodat2`,
//! `open_by_handle_at` and descriptor duplication through `fcntl`. A
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
/// `fsconfig` command whose value is a string.
const FSCONFIG_SET_STRING: u64 = 1;

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
        _ => {
            let (n, s) = user_strings(nr, a);
            if n > 0 {
                rec.push_user_str(s[0]);
            }
            if n > 1 {
                rec.push_user_str(s[1]);
            }
        }
    }
}

/// The user strings a path syscall passes, in record order.
#[inline(always)]
fn user_strings(nr: u32, a: &[u64; 6]) -> (u32, [u64; 2]) {
    match nr {
        TRUNCATE | CHROOT | FSOPEN => (1, [a[0], 0]),
        FCHMODAT2 | OPEN_TREE | MOUNT_SETATTR => (1, [a[1], 0]),
        PIVOT_ROOT => (2, [a[0], a[1]]),
        MOVE_MOUNT => (2, [a[1], a[3]]),
        FSCONFIG if a[1] == FSCONFIG_SET_STRING => (2, [a[2], a[3]]),
        FSCONFIG => (1, [a[2], 0]),
        _ => (0, [0; 2]),
    }
}
