//! io_uring: operations submitted through a ring make no syscall of their
//! own, so they are reported from io_uring's BTF tracepoints as the
//! syscall each stands for (`mamori_common::uring`).
//!
//! `io_uring_submit_req` runs after the operation's `prep` copied its
//! arguments into the request: path names are the kernel's copies
//! (`struct filename`), never re-read from user memory. `io_uring_complete`
//! runs with the result: the new descriptor's file or socket, or the
//! socket's state after connect. Both run in a task of the submitting
//! process (the submitter, its SQPOLL thread or an io-wq worker), which
//! shares its descriptor table and root.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use mamori_common::{EventKind, ParamType, URING_NO_COMPLETION, UringBody, uring::*};

use crate::{
    fd::{push_fd, push_file, push_sock, push_sock_file},
    kernel::{current_task, fill_header, is_self, load, ptr, read},
    maps::{enabled, off},
    record::Record,
};

/// `io_uring_submit_req(struct io_kiocb *req)`
#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn io_uring_submit_req(ctx: BtfTracePointContext) -> u32 {
    unsafe { submitted(ctx.arg::<u64>(0)) };
    0
}

/// `io_uring_complete(struct io_ring_ctx *ctx, void *req, struct io_uring_cqe *cqe)`
#[btf_tracepoint(function = "io_uring_complete")]
pub fn io_uring_complete(ctx: BtfTracePointContext) -> u32 {
    unsafe { completed(ctx.arg::<u64>(1), ctx.arg::<u64>(2)) };
    0
}

/// `io_uring_cqe.res` (UAPI: after the 8-byte `user_data`).
const CQE_RES: u32 = 8;

/// The syscall operation `op` stands for, when that syscall is wanted and
/// the caller is not the agent. Most requests (reads, writes, polls) stop
/// at the first test.
#[inline(always)]
fn wanted(op: u8) -> Option<(u8, u32)> {
    let nr = syscall_of(op)?;
    if !enabled(nr) || is_self() {
        return None;
    }
    Some((op, nr))
}

/// Starts a record of `kind` for request `req`.
///
/// # Safety
///
/// Only from a BPF program; at most one record per CPU is built at a time.
#[inline(always)]
unsafe fn start(kind: EventKind, req: u64, op: u8, nr: u32, ret: i64) -> Option<Record> {
    let rec = Record::begin(kind, size_of::<UringBody>() as u32)?;
    fill_header(rec.header(), nr, ret, false);
    let body = rec.body::<UringBody>();
    (*body).args = [0; 6];
    (*body).req = req;
    (*body).op = op as u32;
    (*body).flags = 0;
    Some(rec)
}

/// The command area of the request (`io_open`, `io_unlink`...).
#[inline(always)]
fn cmd(req: u64) -> u64 {
    req.wrapping_add(off!(uring_req_cmd) as u64)
}

/// A `struct filename *` member's kernel copy of the path.
///
/// # Safety
///
/// Only from a BPF program; `base` is a kernel address or 0.
#[inline(always)]
unsafe fn name(base: u64, member: u32) -> u64 {
    ptr(ptr(base, member), off!(filename_name))
}

/// An `int` member, sign-extended as a syscall register would hold it.
///
/// # Safety
///
/// Only from a BPF program; `base` is a kernel address or 0.
#[inline(always)]
unsafe fn int(base: u64, member: u32) -> u64 {
    read::<i32>(base, member).unwrap_or(-1) as i64 as u64
}

/// # Safety
///
/// Only from the `io_uring_submit_req` program; `req` is its argument.
#[inline(always)]
unsafe fn submitted(req: u64) {
    if req == 0 {
        return;
    }
    // `req` is the tracepoint's BTF-typed `struct io_kiocb *`: one direct
    // load, where a helper call would cost several times more on every
    // request of every ring.
    let Some((op, nr)) = wanted(load::<u8>(req, off!(uring_req_opcode))) else {
        return;
    };
    let Some(mut rec) = start(EventKind::UringSubmit, req, op, nr, 0) else {
        return;
    };
    let flags = read::<u64>(req, off!(uring_req_flags)).unwrap_or(0);
    let body = rec.body::<UringBody>();
    if flags & REQ_F_CQE_SKIP != 0 {
        (*body).flags = URING_NO_COMPLETION;
    }
    let c = cmd(req);
    let fd = int(req, off!(uring_req_fd));
    let task = current_task();
    let a = &mut (*body).args;
    match op {
        OP_OPENAT | OP_OPENAT2 => {
            let how = read::<[u64; 3]>(c, off!(uring_open_how)).unwrap_or([0; 3]);
            *a = [int(c, off!(uring_open_dfd)), 0, how[0], how[1], 0, 0];
            rec.push_kernel_str(name(c, off!(uring_open_name)));
            if op == OP_OPENAT2 {
                rec.push_absent(ParamType::KernelPath);
                rec.push_absent(ParamType::FileInfo);
                rec.push_value(&how, ParamType::UserBytes);
            }
        }
        OP_UNLINKAT => {
            *a = [
                int(c, off!(uring_unlink_dfd)),
                0,
                int(c, off!(uring_unlink_flags)),
                0,
                0,
                0,
            ];
            rec.push_kernel_str(name(c, off!(uring_unlink_name)));
        }
        OP_MKDIRAT => {
            let mode = read::<u16>(c, off!(uring_mkdir_mode)).unwrap_or(0) as u64;
            *a = [int(c, off!(uring_mkdir_dfd)), 0, mode, 0, 0, 0];
            rec.push_kernel_str(name(c, off!(uring_mkdir_name)));
        }
        OP_RENAMEAT => {
            *a = [
                int(c, off!(uring_rename_old_dfd)),
                0,
                int(c, off!(uring_rename_new_dfd)),
                0,
                int(c, off!(uring_rename_flags)),
                0,
            ];
            rec.push_kernel_str(name(c, off!(uring_rename_old)));
            rec.push_kernel_str(name(c, off!(uring_rename_new)));
        }
        OP_LINKAT | OP_SYMLINKAT => {
            let new_dfd = int(c, off!(uring_link_new_dfd));
            *a = if op == OP_LINKAT {
                [
                    int(c, off!(uring_link_old_dfd)),
                    0,
                    new_dfd,
                    0,
                    int(c, off!(uring_link_flags)),
                    0,
                ]
            } else {
                [0, new_dfd, 0, 0, 0, 0]
            };
            rec.push_kernel_str(name(c, off!(uring_link_old)));
            rec.push_kernel_str(name(c, off!(uring_link_new)));
        }
        OP_CONNECT => {
            let len = read::<i32>(c, off!(uring_connect_len)).unwrap_or(0) as u64;
            *a = [fd, 0, len, 0, 0, 0];
            rec.push_user_bytes(ptr(c, off!(uring_connect_addr)), len & 0xffff_ffff);
            push_sock(&mut rec, task, fd as i64);
        }
        OP_SOCKET => {
            *a = [
                int(c, off!(uring_socket_domain)),
                int(c, off!(uring_socket_type)),
                int(c, off!(uring_socket_protocol)),
                0,
                0,
                0,
            ];
            rec.push_absent(ParamType::SockTuple);
        }
        OP_ACCEPT => {
            *a = [fd, 0, 0, int(c, off!(uring_accept_flags)), 0, 0];
            rec.push_absent(ParamType::SockTuple);
        }
        OP_SEND | OP_SEND_ZC | OP_BIND => {
            *a = [fd, 0, 0, 0, 0, 0];
            rec.push_absent(ParamType::UserBytes);
            push_sock(&mut rec, task, fd as i64);
        }
        OP_RECV | OP_SENDMSG | OP_SENDMSG_ZC | OP_RECVMSG | OP_LISTEN => {
            *a = [fd, 0, 0, 0, 0, 0];
            push_sock(&mut rec, task, fd as i64);
        }
        OP_FTRUNCATE => {
            *a = [fd, 0, 0, 0, 0, 0];
            push_fd(&mut rec, task, fd as i64);
        }
        OP_CLOSE => {
            *a = [int(c, off!(uring_close_fd)), 0, 0, 0, 0, 0];
        }
        _ => {}
    }
    rec.submit();
}

/// # Safety
///
/// Only from the `io_uring_complete` program; `req` and `cqe` are its
/// arguments (`req` is 0 for completions no request made).
#[inline(always)]
unsafe fn completed(req: u64, cqe: u64) {
    // `void *req` here: read through the helper (0 for completions no
    // request made).
    let Some((op, nr)) = read::<u8>(req, off!(uring_req_opcode)).and_then(wanted) else {
        return;
    };
    let res = read::<i32>(cqe, CQE_RES).unwrap_or(0) as i64;
    let Some(mut rec) = start(EventKind::UringComplete, req, op, nr, res) else {
        return;
    };
    let c = cmd(req);
    let task = current_task();
    let file = ptr(req, off!(uring_req_file));
    match op {
        // A new descriptor in the task's table (not a ring-private
        // "direct" one: its path is the submitted name).
        OP_OPENAT | OP_OPENAT2 => {
            rec.push_absent(ParamType::KernelStr);
            let slot = read::<u32>(c, off!(uring_open_slot)).unwrap_or(1);
            if res >= 0 && slot == 0 {
                push_fd(&mut rec, task, res);
            } else {
                rec.push_absent(ParamType::KernelPath);
                rec.push_absent(ParamType::FileInfo);
            }
        }
        OP_SOCKET | OP_ACCEPT => {
            let slot_off = if op == OP_SOCKET {
                off!(uring_socket_slot)
            } else {
                off!(uring_accept_slot)
            };
            let slot = read::<u32>(c, slot_off).unwrap_or(1);
            if res >= 0 && slot == 0 {
                push_sock(&mut rec, task, res);
            } else {
                rec.push_absent(ParamType::SockTuple);
            }
        }
        OP_CONNECT | OP_SEND | OP_SEND_ZC | OP_BIND => {
            rec.push_absent(ParamType::UserBytes);
            push_sock_file(&mut rec, file);
        }
        OP_RECV | OP_SENDMSG | OP_SENDMSG_ZC | OP_RECVMSG | OP_LISTEN => {
            push_sock_file(&mut rec, file);
        }
        OP_FTRUNCATE => push_file(&mut rec, task, file),
        _ => {}
    }
    rec.submit();
}
