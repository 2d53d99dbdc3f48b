//! mamori's kernel programs.
//!
//! Every program fills one record in a per-CPU scratch area and copies it
//! to the `EVENTS` ring buffer without waking the reader (unless the ring
//! holds more than `Settings::wakeup_bytes`): a wake-up per event costs far
//! more than the event. Loss is counted per CPU in `COUNTERS`.
//!
//! Programs:
//! - `sys_exit_file`, `sys_exit_fs`, `sys_exit_net`, `sys_exit_proc`: tracepoint programs
//!   attached to `syscalls/sys_exit_<name>` of each captured syscall; they
//!   read the arguments from the task's saved registers.
//! - `sys_exit_path` and `sys_enter_paths`: attached to the exit and enter
//!   tracepoints of the captured syscalls that pass path strings: copied at
//!   entry and read at exit, so a thread that swaps them during the call
//!   shows, with the directory each resolves against (`path_args.rs`).
//! - `raw_sys_exit`: a BTF tracepoint on the raw `sys_exit` for captured syscalls
//!   that have no per-syscall tracepoint on this kernel (attached only then).
//! - `sched_process_exec`, `sched_process_fork`, `sched_process_exit`:
//!   BTF tracepoints giving the kernel's view of process life.
//! - `io_uring_submit_req`, `io_uring_complete`: BTF tracepoints reporting
//!   io_uring operations as the syscalls they stand for.
#![no_std]
#![no_main]
#![allow(
    unsafe_op_in_unsafe_fn,
    reason = "every function here runs in a BPF program and is unsafe for the \
              reasons its `# Safety` section gives; an `unsafe` block around \
              each helper call inside one would repeat them, not check them"
)]
// Inline asm on the BPF target: `bound()` hides masks from LLVM.
#![feature(asm_experimental_arch)]

mod bound;
mod fd;
mod kernel;
mod loader_env;
mod maps;
mod path;
mod path_args;
mod prefilter;
mod record;
mod sched;
mod sys_file;
mod sys_fs;
mod sys_net;
mod sys_proc;
mod syscall;
mod uring;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
