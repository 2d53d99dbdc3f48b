//! io_uring operations mamori reports, and the syscall each stands for:
//! a request is reported as that syscall's event (`evt.type`), with the
//! same parameters, marked as coming through io_uring.
//!
//! Parameter layout: the syscall's (see [`crate::syscalls`]). The
//! submission record carries what the kernel copied at submission (path
//! names from `struct filename`, the caller's sockaddr, the descriptor's
//! socket or file before the call); the completion record carries what
//! the result made (the new descriptor's path, file or socket; a socket's
//! state after the call), with the others absent. Userspace merges the two.

use crate::syscalls::*;

macro_rules! ops {
    ($( $konst:ident = $op:literal, $name:literal, $sc:ident; )*) => {
        $( pub const $konst: u8 = $op; )*
        /// `(IORING_OP_*, name, syscall)` of every reported operation.
        pub const OPS: &[(u8, &str, u32)] = &[ $( ($op, $name, $sc), )* ];

        /// The syscall an operation stands for, or `None` when it is not
        /// reported.
        #[inline(always)]
        pub const fn syscall_of(op: u8) -> Option<u32> {
            match op {
                $( $op => Some($sc), )*
                _ => None,
            }
        }
    };
}

ops! {
    OP_SENDMSG = 9, "IORING_OP_SENDMSG", SENDMSG;
    OP_RECVMSG = 10, "IORING_OP_RECVMSG", RECVMSG;
    OP_ACCEPT = 13, "IORING_OP_ACCEPT", ACCEPT4;
    OP_CONNECT = 16, "IORING_OP_CONNECT", CONNECT;
    OP_OPENAT = 18, "IORING_OP_OPENAT", OPENAT;
    OP_CLOSE = 19, "IORING_OP_CLOSE", CLOSE;
    OP_SEND = 26, "IORING_OP_SEND", SENDTO;
    OP_RECV = 27, "IORING_OP_RECV", RECVFROM;
    OP_OPENAT2 = 28, "IORING_OP_OPENAT2", OPENAT2;
    OP_RENAMEAT = 35, "IORING_OP_RENAMEAT", RENAMEAT2;
    OP_UNLINKAT = 36, "IORING_OP_UNLINKAT", UNLINKAT;
    OP_MKDIRAT = 37, "IORING_OP_MKDIRAT", MKDIRAT;
    OP_SYMLINKAT = 38, "IORING_OP_SYMLINKAT", SYMLINKAT;
    OP_LINKAT = 39, "IORING_OP_LINKAT", LINKAT;
    OP_SOCKET = 45, "IORING_OP_SOCKET", SOCKET;
    OP_SEND_ZC = 47, "IORING_OP_SEND_ZC", SENDTO;
    OP_SENDMSG_ZC = 48, "IORING_OP_SENDMSG_ZC", SENDMSG;
    OP_FTRUNCATE = 55, "IORING_OP_FTRUNCATE", FTRUNCATE;
    OP_BIND = 56, "IORING_OP_BIND", BIND;
    OP_LISTEN = 57, "IORING_OP_LISTEN", LISTEN;
}

/// `REQ_F_CQE_SKIP` of `io_kiocb.flags` (bit `REQ_F_CQE_SKIP_BIT`, checked
/// against the kernel's BTF by the agent's tests).
pub const REQ_F_CQE_SKIP: u64 = 1 << 6;

/// The name of operation `op` (`IORING_OP_*`), when reported.
pub fn name_of(op: u8) -> Option<&'static str> {
    OPS.iter().find(|(o, _, _)| *o == op).map(|(_, n, _)| *n)
}
