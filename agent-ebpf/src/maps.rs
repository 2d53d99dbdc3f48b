//! Every map and load-time constant of the kernel side. Names are the
//! contract with the loader (`agent/src/capture/loader.rs`).

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use mamori_common::{
    COUNTERS as N_COUNTERS, KernelOffsets, MAX_SYSCALLS, NameKey, OpenFilter, SCRATCH_SIZE,
    Settings,
};

/// Records to userspace. The loader sets the size.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 * 1024 * 1024, 0);

/// One scratch area per CPU, indexed by CPU id (a per-CPU array cannot hold
/// values this large). The loader sets `max_entries` to the CPU count.
#[map]
pub static SCRATCH: Array<[u8; SCRATCH_SIZE]> = Array::with_max_entries(1, 0);

/// Non-zero at index `nr` when syscall `nr` is wanted by some rule.
#[map]
pub static ENABLED: Array<u8> = Array::with_max_entries(MAX_SYSCALLS, 0);

/// Non-zero at index `nr` when no rule reads a failed call of syscall
/// `nr` (a path syscall): the exit program sends none. Written with the
/// open prefilter.
#[map]
pub static FAILURES_DROPPED: Array<u8> = Array::with_max_entries(MAX_SYSCALLS, 0);

/// The open prefilter (all zero: none). Written by the agent at start and
/// at every rules reload.
#[map]
pub static OPEN_FILTER: Array<OpenFilter> = Array::with_max_entries(1, 0);

/// Names the open prefilter looks up: the mask of the terms each admits.
#[map]
pub static NAME_MASKS: HashMap<NameKey, u64> = HashMap::with_max_entries(4096, 0);

/// Files rules name whole, by identity: inode number → device
/// (`super_block.s_dev`). An open the prefilter would drop by its name is
/// sent when its file is one of these (another name for it: a hard link,
/// a bind mount). Written by the agent, refreshed as files are replaced.
#[map]
pub static WATCHED_INODES: HashMap<u64, u32> = HashMap::with_max_entries(4096, 0);

/// Path strings of the syscalls in flight, copied at entry, by thread id
/// (`path_args.rs`), up to 255 bytes each. Preallocated (no allocation per
/// call) and LRU: the entry of a thread that died inside a call ages out.
/// A call whose strings are longer points to `PATH_COPIES_LONG`.
#[map]
pub static PATH_COPIES: LruHashMap<u32, crate::path_args::ShortCopy> =
    LruHashMap::with_max_entries(4096, 0);

/// The strings of the calls in flight with one longer than 255 bytes.
/// Allocated as used (4096 preallocated would be 32 MiB). A full table
/// leaves a call with its exit read only (counted:
/// `Counter::EntryCopyFull`).
#[map]
pub static PATH_COPIES_LONG: HashMap<u32, crate::path_args::LongCopy> =
    HashMap::with_max_entries(4096, BPF_F_NO_PREALLOC);
const BPF_F_NO_PREALLOC: u32 = 1;

/// `path_bases` at index 0, for `sys_exit_path`'s tail call. Written by
/// the loader.
#[map]
pub static PATH_WALK: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Per-CPU counters, indexed by `mamori_common::Counter`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(N_COUNTERS, 0);

/// Header fields that rarely change, per thread (see `kernel::TaskInfo`).
#[map]
pub static TASK_CACHE: LruHashMap<u32, crate::kernel::TaskInfo> =
    LruHashMap::with_max_entries(65536, 0);

/// Processes (tgid) whose 32-bit syscall use was reported; forgotten at
/// exec and exit. A full table evicts the oldest: at worst a process is
/// reported again.
#[map]
pub static COMPAT_SEEN: LruHashMap<u32, u8> = LruHashMap::with_max_entries(8192, 0);

/// Bumped by the agent every second: cache entries of an older generation
/// are refreshed, so a change no hook reports (reparenting, a cgroup move)
/// shows within a second.
#[map]
pub static GENERATION: Array<u32> = Array::with_max_entries(1, 0);

/// Struct member offsets of the running kernel, written by the loader.
#[unsafe(no_mangle)]
pub static OFFSETS: KernelOffsets = KernelOffsets::missing();

/// Run-time settings, written by the loader.
#[unsafe(no_mangle)]
pub static SETTINGS: Settings = Settings {
    agent_tgid: 0,
    wakeup_bytes: 256 * 1024,
    cgroup_subsys: u32::MAX,
    env_bytes: 0,
    args_bytes: mamori_common::MAX_STR as u32,
    buffer_bytes: 0,
};

/// One of each wire record. Never read: it puts the wire types in the
/// object's BTF, so the agent's tests can check both sides agree on every
/// size and offset.
#[repr(C)]
pub struct WireTypes {
    pub header: mamori_common::EventHeader,
    pub syscall: mamori_common::SyscallBody,
    pub exec: mamori_common::ExecBody,
    pub fork: mamori_common::ForkBody,
    pub exit: mamori_common::ExitBody,
    pub uring: mamori_common::UringBody,
    pub param: mamori_common::ParamHeader,
    pub sock: mamori_common::SockTuple,
    pub file: mamori_common::FileInfo,
}

#[unsafe(no_mangle)]
// SAFETY: all-zero is a valid value of these integer-only records.
pub static WIRE_TYPES: WireTypes = unsafe { core::mem::zeroed() };

/// Reads one offset; volatile so the compiler never folds the placeholder.
macro_rules! off {
    ($field:ident) => {
        unsafe { core::ptr::read_volatile(&$crate::maps::OFFSETS.$field) }
    };
}
pub(crate) use off;

/// Reads one setting.
macro_rules! setting {
    ($field:ident) => {
        unsafe { core::ptr::read_volatile(&$crate::maps::SETTINGS.$field) }
    };
}
pub(crate) use setting;

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn count(counter: mamori_common::Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, programs do not nest on one CPU.
        unsafe { *slot += 1 };
    }
}

/// True when a failed call of syscall `nr` is dropped (no rule reads it).
#[inline(always)]
pub fn failure_dropped(nr: u32) -> bool {
    FAILURES_DROPPED.get(nr).is_some_and(|v| *v != 0)
}

/// True when syscall `nr` is enabled.
#[inline(always)]
pub fn enabled(nr: u32) -> bool {
    match ENABLED.get(nr) {
        Some(v) => *v != 0,
        None => false,
    }
}
