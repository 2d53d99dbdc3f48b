//! `sys_exit_net`: sockets. Addresses come from the kernel's socket
//! (`SockTuple`); the caller's sockaddr is kept beside it. Sends and
//! receives carry the first bytes of their data (`evt.buffer`) when the
//! agent asks for them (`SETTINGS.buffer_bytes`).

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use mamori_common::syscalls::*;

use crate::{
    fd::push_sock,
    kernel::{current_task, read_user},
    maps::setting,
    record::Record,
    syscall::on_exit,
};

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
            push_data(rec, a[1], ret);
        }
        RECVFROM => {
            push_sock(rec, task, fd);
            push_data(rec, a[1], ret);
        }
        SENDMSG | RECVMSG => {
            push_sock(rec, task, fd);
            // The first buffer of the message (`struct user_msghdr`:
            // msg_iov at 16, msg_iovlen at 24; `struct iovec`: base, len).
            let iov = read_user::<u64>(a[1] + 16).unwrap_or(0);
            let n = read_user::<u64>(a[1] + 24).unwrap_or(0);
            let (base, len) = if iov != 0 && n > 0 {
                (
                    read_user::<u64>(iov).unwrap_or(0),
                    read_user::<u64>(iov + 8).unwrap_or(0),
                )
            } else {
                (0, 0)
            };
            push_data(rec, base, if ret < len as i64 { ret } else { len as i64 });
        }
        ACCEPT | ACCEPT4 | SOCKET => push_sock(rec, task, ret),
        LISTEN => push_sock(rec, task, fd),
        _ => {}
    }
}

/// The first bytes of the `done` bytes at `addr` a send or receive moved,
/// when the agent asks for them (no parameter otherwise; an absent one
/// when nothing moved).
#[inline(always)]
unsafe fn push_data(rec: &mut Record, addr: u64, done: i64) {
    let want = setting!(buffer_bytes) as i64;
    if want == 0 {
        return;
    }
    let n = if done < want { done } else { want };
    rec.push_user_bytes(addr, if n > 0 { n as u64 } else { 0 });
}
