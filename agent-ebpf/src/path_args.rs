//! The path strings of path-taking syscalls (unlink, rename, mkdir, link,
//! mount...), taken so that a racing thread or a directory fd cannot make
//! the record say something else than the kernel did:
//!
//! - `sys_enter_paths` copies the strings at syscall entry into
//!   `PATH_COPIES` (per thread; strings longer than `SHORT` bytes into
//!   `PATH_COPIES_LONG`, which the short entry points to: most paths are
//!   short, and a short entry is a sixteenth of the copying and lives in a
//!   preallocated table). The exit program sends the entry copy in
//!   the string's place and the exit re-read after the base directories
//!   (`UserStrAtExit`): the agent compares them. The kernel copies the
//!   strings right after entry; a thread that swaps them back before exit
//!   shows as a difference.
//! - For each relative string, the directory it resolves against, walked
//!   from the kernel's objects (`BaseDir`): the directory fd's
//!   `struct file`, or the task's working directory. The walks run in
//!   `path_bases`, which `sys_exit_path` tail-calls with the record.

use aya_ebpf::{
    cty::c_void,
    helpers::generated::{
        bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_probe_read_user_str,
    },
    macros::tracepoint,
    programs::TracePointContext,
};
use mamori_common::{
    Counter, MAX_STR, PARAM_ABSENT, PARAM_FAULT, PARAM_TRUNCATED, ParamType,
    path_args::{AT_FDCWD, ENTRY_COPIES, NO_BASE, path_args},
};

use crate::{
    bound::bound,
    fd::fd_file,
    kernel::{current_regs, current_task, is_self},
    maps::{PATH_COPIES, PATH_COPIES_LONG, PATH_WALK, SCRATCH, count, enabled, failure_dropped},
    path::{file_path, push_path, task_cwd, task_root},
    record::Record,
    syscall::{begin, exit_args},
};

/// The strings of one call as read at its entry, up to `N` bytes each
/// (with the NUL).
#[repr(C)]
pub struct EntryCopy<const N: usize> {
    pub nr: u32,
    /// The strings are in `PATH_COPIES_LONG` (in a short copy).
    pub long: u32,
    pub len: [u32; ENTRY_COPIES],
    pub flags: [u32; ENTRY_COPIES],
    pub data: [[u8; N]; ENTRY_COPIES],
}

/// Bytes of each string a short copy holds, with its NUL.
const SHORT: usize = 256;
pub type ShortCopy = EntryCopy<SHORT>;
pub type LongCopy = EntryCopy<MAX_STR>;

/// The entry copy the exit program found: where each string is, with its
/// length and flags (from a short or a long copy).
struct Copied {
    len: [u32; ENTRY_COPIES],
    flags: [u32; ENTRY_COPIES],
    data: [u64; ENTRY_COPIES],
}

impl Copied {
    /// # Safety
    ///
    /// `c` points to an entry copy in a map, alive for the program's run.
    #[inline(always)]
    unsafe fn of<const N: usize>(c: *const EntryCopy<N>) -> Self {
        Self {
            len: (*c).len,
            flags: (*c).flags,
            data: [(*c).data[0].as_ptr() as u64, (*c).data[1].as_ptr() as u64],
        }
    }
}

/// The exit of every syscall that passes path strings: the strings and
/// their exit re-reads, then (when the call succeeded) a tail call to
/// `path_bases`, which walks the base directories and sends the record. The walks run in a program of
/// their own, which the verifier sees start from one state (the layout's
/// constants would otherwise multiply every walk's verification).
#[tracepoint]
pub fn sys_exit_path(ctx: TracePointContext) -> u32 {
    unsafe {
        let Some((nr, ret)) = exit_args(&ctx) else {
            return 0;
        };
        // A failed call no rule reads: only its entry copy goes.
        if ret < 0 && failure_dropped(nr) {
            drop_copy(bpf_get_current_pid_tgid() as u32, 2);
            count(Counter::Filtered);
            return 0;
        }
        let Some((mut rec, a)) = begin(nr, ret) else {
            return 0;
        };
        let n = push_strings(&mut rec, nr, &a);
        // A failed call touched nothing: its strings are sent as passed,
        // without the walks (most of this program's cost; failing calls
        // in a loop are a cheap way to load a monitor).
        if ret >= 0 {
            rec.save();
            PATH_WALK.tail_call(&ctx, 0);
        }
        // Reached when the call failed or the tail call did: no base
        // directories.
        for _ in 0..n {
            rec.push_absent(ParamType::BaseDir);
        }
        rec.submit();
    }
    0
}

/// The second half of `sys_exit_path` (tail-called; never attached).
#[tracepoint]
pub fn path_bases(_ctx: TracePointContext) -> u32 {
    unsafe {
        let Some(mut rec) = Record::resume() else {
            return 0;
        };
        let task = current_task();
        let root = task_root(task);
        let n = rec.cell(CELL_N);
        push_base(&mut rec, task, CELL_BASE0, CELL_FIRST0, &root);
        rec.settle();
        if n > 1 {
            push_base(&mut rec, task, CELL_BASE1, CELL_FIRST1, &root);
        }
        if n > 2 {
            // The third string (mount's file system type) is never a path.
            rec.push_absent(ParamType::BaseDir);
        }
        rec.submit();
    }
    0
}

/// Scratch cells (`Record::cell`) `sys_exit_path` leaves for `path_bases`.
const CELL_N: u64 = 3;
const CELL_BASE0: u64 = 4;
const CELL_FIRST0: u64 = 5;
const CELL_BASE1: u64 = 6;
const CELL_FIRST1: u64 = 7;

#[tracepoint]
pub fn sys_enter_paths(_ctx: TracePointContext) -> u32 {
    unsafe { enter() };
    0
}

/// # Safety
///
/// Only from `sys_enter_paths`: the current task is entering a syscall.
#[inline(always)]
unsafe fn enter() {
    // The saved registers, not the tracepoint record: a program reading
    // six arguments could not attach to a tracepoint that has fewer.
    let regs = current_regs();
    let nr = regs.nr;
    if !enabled(nr) || is_self() {
        return;
    }
    let p = path_args(nr, &regs.args);
    if p.n == 0 {
        return;
    }
    // Built in this CPU's scratch area (no record is being built while a
    // program runs), then copied into the map in one update. Short and long
    // copies share the header, so one area serves both.
    let Some(buf) = SCRATCH.get_ptr_mut(bpf_get_smp_processor_id()) else {
        return;
    };
    let tid = bpf_get_current_pid_tgid() as u32;
    let short = buf as *mut ShortCopy;
    (*short).nr = nr;
    (*short).long = 0;
    let mut fits = copy_one(short, 0, p.addr[0]);
    if p.n > 1 {
        fits &= copy_one(short, 1, p.addr[1]);
    } else {
        (*short).flags[1] = PARAM_ABSENT as u32;
    }
    if !fits {
        // Read again, whole, into the long layout; the short entry then
        // only says where the strings are.
        let long = buf as *mut LongCopy;
        copy_one(long, 0, p.addr[0]);
        if p.n > 1 {
            copy_one(long, 1, p.addr[1]);
        }
        if PATH_COPIES_LONG.insert(&tid, &*long, 0).is_err() {
            count(Counter::EntryCopyFull);
            let _ = PATH_COPIES.remove(&tid); // no stale short copy either
            return;
        }
        (*short).long = 1;
    }
    if PATH_COPIES.insert(&tid, &*short, 0).is_err() {
        count(Counter::EntryCopyFull);
    }
}

/// Reads string `i` of the call from `addr` into `copy`; false when it
/// did not fit in `N` bytes.
///
/// # Safety
///
/// Only from a BPF program; `copy` is this CPU's scratch area; `addr` is a
/// user address (read with `bpf_probe_read_user_str`, which fails instead
/// of faulting).
#[inline(always)]
unsafe fn copy_one<const N: usize>(copy: *mut EntryCopy<N>, i: usize, addr: u64) -> bool {
    let i = i & 1;
    if addr == 0 {
        (*copy).len[i] = 0;
        (*copy).flags[i] = PARAM_ABSENT as u32;
        return true;
    }
    let dst = (*copy).data[i].as_mut_ptr() as *mut c_void;
    let rc = bpf_probe_read_user_str(dst, N as u32, addr as *const c_void);
    let (len, flags) = if rc <= 0 {
        (0, PARAM_FAULT)
    } else if rc as usize >= N {
        (rc as u32 - 1, PARAM_TRUNCATED)
    } else {
        (rc as u32 - 1, 0)
    };
    (*copy).len[i] = len;
    (*copy).flags[i] = flags as u32;
    flags != PARAM_TRUNCATED
}

/// Finds this thread's entry copy for syscall `nr` and fills `out` from
/// it; returns 0 when there is none (a stale one, from a call whose exit
/// was not seen, is removed), else the tables to remove it from once the
/// strings are in the record ([`drop_copy`]): 1 short, 2 short and long.
///
/// # Safety
///
/// Only from a syscall exit program; `out` is on its stack.
#[inline(always)]
unsafe fn find_copy(tid: u32, nr: u32, out: &mut Copied) -> u32 {
    let Some(short) = PATH_COPIES.get_ptr(&tid) else {
        return 0;
    };
    let held = if (*short).long == 0 { 1 } else { 2 };
    if (*short).nr != nr {
        drop_copy(tid, held);
        return 0;
    }
    if held == 1 {
        *out = Copied::of(short);
        return 1;
    }
    match PATH_COPIES_LONG.get_ptr(&tid) {
        Some(long) if (*long).nr == nr => {
            *out = Copied::of(long);
            2
        }
        _ => {
            drop_copy(tid, held);
            0
        }
    }
}

/// Removes this thread's entry copy (`held` as [`find_copy`] returned).
/// Only after its strings are in the record: a preallocated table reuses
/// a removed element at once.
#[inline(always)]
fn drop_copy(tid: u32, held: u32) {
    let _ = PATH_COPIES.remove(&tid);
    if held == 2 {
        let _ = PATH_COPIES_LONG.remove(&tid);
    }
}

/// Pushes the call's path strings (the entry copy when there is one), then
/// the exit re-read of each string that was copied at entry, and leaves in
/// the scratch cells what `path_bases` needs for each string's base
/// directory. Returns how many strings there are.
///
/// # Safety
///
/// Only from a syscall exit program, in its context (the current task is
/// the one making the syscall); `rec` is the record this CPU is building.
#[inline(always)]
unsafe fn push_strings(rec: &mut Record, nr: u32, a: &[u64; 6]) -> u64 {
    let p = path_args(nr, a);
    let tid = bpf_get_current_pid_tgid() as u32;
    let mut copied = Copied {
        len: [0; ENTRY_COPIES],
        flags: [0; ENTRY_COPIES],
        data: [0; ENTRY_COPIES],
    };
    let held = find_copy(tid, nr, &mut copied);
    let copy = if held == 0 {
        core::ptr::null()
    } else {
        &copied as *const Copied
    };
    let n = p.n as u64;
    rec.set_cell(CELL_N, n);
    rec.set_cell(CELL_BASE0, p.base[0] as u64);
    rec.set_cell(CELL_BASE1, p.base[1] as u64);
    rec.set_cell(CELL_FIRST0, -1i64 as u64);
    rec.set_cell(CELL_FIRST1, -1i64 as u64);
    if n == 0 {
        return 0;
    }
    let first = push_string(rec, copy, 0, p.addr[0]);
    rec.set_cell(CELL_FIRST0, first as u64);
    if n > 1 {
        let first = push_string(rec, copy, 1, p.addr[1]);
        rec.set_cell(CELL_FIRST1, first as u64);
    }
    if n > 2 {
        push_string(rec, core::ptr::null(), 2, p.addr[2]);
    }
    if !copy.is_null() {
        rec.push_str(p.addr[0], ParamType::UserStrAtExit);
        if n > 1 {
            rec.push_str(p.addr[1], ParamType::UserStrAtExit);
        }
        drop_copy(tid, held);
    }
    n
}

/// Pushes string `i`: from the entry copy when `copy` has it, else read
/// now. Returns its first byte, or -1 when it has none (absent, unreadable).
///
/// # Safety
///
/// As [`push_path_args`]; `copy` is null or this thread's entry copy.
#[inline(always)]
unsafe fn push_string(rec: &mut Record, copy: *const Copied, i: usize, addr: u64) -> i32 {
    let ty = ParamType::UserStr;
    let Some(slot) = rec.slot() else { return -1 };
    let (data, slot_hdr) = (slot.data, slot.hdr);
    if copy.is_null() || i >= ENTRY_COPIES {
        rec.push_str(addr, ty);
    } else {
        let i = i & 1;
        let flags = (*copy).flags[i] as u8;
        let len = bound((*copy).len[i] as u64, MAX_STR as u64 - 1) as u32;
        if flags & (PARAM_ABSENT | PARAM_FAULT) != 0 {
            rec.commit(slot, 0, ty, flags);
            return -1;
        }
        let src = (*copy).data[i];
        if len > 0 && !Record::copy_kernel(data, src, len) {
            rec.commit(slot, 0, ty, PARAM_FAULT);
            return -1;
        }
        rec.commit(slot, len, ty, flags);
        if len == 0 {
            return 0;
        }
        return *(data as *const u8) as i32;
    }
    // Read now: the slot's data is where push_str put the string.
    let hdr = slot_hdr as *const mamori_common::ParamHeader;
    if (*hdr).flags & (PARAM_ABSENT | PARAM_FAULT) != 0 {
        return -1;
    }
    if (*hdr).len == 0 {
        return 0;
    }
    *(data as *const u8) as i32
}

/// Pushes the directory a string resolves against, given the cells that
/// hold its base (a dirfd, `AT_FDCWD`, `NO_BASE`) and its first byte (-1:
/// no value): absent for an absolute string, one with no value, or one
/// that is not a path.
///
/// # Safety
///
/// As [`push_path_args`]; `root` is the task's root.
#[inline(always)]
unsafe fn push_base(rec: &mut Record, task: u64, base: u64, first: u64, root: &(u64, u64)) {
    let (base, first) = (rec.cell(base) as i64, rec.cell(first) as i32);
    let ty = ParamType::BaseDir;
    if base == NO_BASE || first < 0 || first == b'/' as i32 {
        rec.push_absent(ty);
        return;
    }
    let (dentry, mnt) = if base == AT_FDCWD {
        task_cwd(task)
    } else {
        file_path(fd_file(task, base))
    };
    // One state for the walk whichever branch gave them (the cwd's are
    // typed pointers, the file's plain values).
    rec.set_cell(1, dentry);
    rec.set_cell(2, mnt);
    let (dentry, mnt) = (rec.cell(1), rec.cell(2));
    push_path(rec, dentry, mnt, root, ty);
}
