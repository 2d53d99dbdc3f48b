//! `sys_exit_net`: sockets. Addresses come from the kernel's socket
//! (`SockTuple`); the caller's sockaddr is kept beside it.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use mamori_common::syscalls::*;

use crate::{fd::push_sock, kernel::current_task, record::Record, syscall::on_exit};

#[tracepoint]
pub fn sys_exit_net(ctx: TracePointContext) -> u32 {
    unsafe {
        on_exit(
            &ctx,
            |_, _, _| true,
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
    let fd = a[0] as i32 as i64;
    match nr {
        CONNECT | BIND => {
            rec.push_user_bytes(a[1], a[2] & 0xffff_ffff);
            push_sock(rec, task, fd);
        }
        SENDTO => {
            rec.push_user_bytes(a[4], a[5] & 0xffff_ffff);
            push_sock(rec, task, fd);
        }
        ACCEPT | ACCEPT4 | SOCKET => push_sock(rec, task, ret),
        LISTEN | RECVFROM | SENDMSG | RECVMSG => push_sock(rec, task, fd),
        _ => {}
    }
}
