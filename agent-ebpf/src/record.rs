//! Assembling one record in the per-CPU scratch area and sending it.
//!
//! Scratch layout (`SCRATCH_SIZE` bytes per CPU):
//! `[0, MAX_RECORD + MAX_STR + 8)` the record being built; every write
//! offset is masked to `MAX_RECORD - 1`, so the verifier can bound it.
//! `[PATH_AREA, PATH_AREA + 8192 + 256)` where `path.rs` builds a path
//! backwards before copying it into the record; then the walk's state and
//! the prefilter's raw-path area (`PREFILTER_AREA`, 256 bytes).

use aya_ebpf::{
    cty::c_void,
    helpers::generated::{
        bpf_get_smp_processor_id, bpf_probe_read_kernel, bpf_probe_read_kernel_str,
        bpf_probe_read_user, bpf_probe_read_user_str,
    },
};
use mamori_common::{
    Counter, EventHeader, EventKind, MAX_BYTES, MAX_RECORD, MAX_STR, PARAM_ABSENT, PARAM_ALIGN,
    PARAM_FAULT, PARAM_TRUNCATED, ParamHeader, ParamType,
};

use crate::{
    bound::bound,
    maps::{EVENTS, SCRATCH, count, setting},
};

pub const PATH_AREA: u64 = 40960;
/// A u64 cell for loop state the verifier must not track (see `path.rs`).
pub const WALK_STATE: u64 = PATH_AREA + 8192 + 512;
/// 256 bytes where the prefilter reads a raw path (see `prefilter.rs`).
pub const PREFILTER_AREA: u64 = WALK_STATE + 64;
const MASK: u32 = MAX_RECORD as u32 - 1;
const HEADER_LEN: u32 = size_of::<EventHeader>() as u32;
const PARAM_HDR: u32 = size_of::<ParamHeader>() as u32;
/// A parameter of up to `MAX_STR` bytes fits when the offset is at most this.
const LAST_FULL_SLOT: u32 = (MAX_RECORD - MAX_STR) as u32 - PARAM_HDR;

const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;

/// A record being built.
pub struct Record {
    pub buf: u64,
    off: u32,
    nparams: u16,
}

/// Where a parameter's data goes.
pub struct Slot {
    pub hdr: u64,
    pub data: u64,
    off: u32,
}

impl Record {
    /// Starts a record of `kind` whose body is `body_len` bytes.
    ///
    /// # Safety
    ///
    /// Only from a BPF program; at most one record per CPU is built at a time
    /// (BPF programs run to completion on one CPU).
    #[inline(always)]
    pub unsafe fn begin(kind: EventKind, body_len: u32) -> Option<Self> {
        let cpu = bpf_get_smp_processor_id();
        let Some(buf) = SCRATCH.get_ptr_mut(cpu) else {
            count(Counter::LostNoScratch);
            return None;
        };
        let rec = Self {
            buf: buf as u64,
            off: HEADER_LEN + body_len,
            nparams: 0,
        };
        (*rec.header()).kind = kind as u16;
        Some(rec)
    }

    #[inline(always)]
    pub fn header(&self) -> *mut EventHeader {
        self.buf as *mut EventHeader
    }

    #[inline(always)]
    pub fn body<T>(&self) -> *mut T {
        (self.buf + HEADER_LEN as u64) as *mut T
    }

    /// Room for the next parameter, or `None` when the record is full (the
    /// parameter is then sent empty and flagged truncated).
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    #[inline(always)]
    pub unsafe fn slot(&mut self) -> Option<Slot> {
        let off = (self.off + (PARAM_ALIGN as u32 - 1)) & !(PARAM_ALIGN as u32 - 1);
        if off > LAST_FULL_SLOT {
            return None;
        }
        let at = bound(off as u64, MASK as u64);
        Some(Slot {
            hdr: self.buf + at,
            data: self.buf + at + PARAM_HDR as u64,
            off,
        })
    }

    /// Finishes a parameter of `len` data bytes in `slot`.
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    #[inline(always)]
    pub unsafe fn commit(&mut self, slot: Slot, len: u32, ty: ParamType, flags: u8) {
        let len = if len > MAX_STR as u32 {
            MAX_STR as u32
        } else {
            len
        };
        let hdr = slot.hdr;
        *(hdr as *mut ParamHeader) = ParamHeader {
            len: len as u16,
            ty: ty as u8,
            flags,
            _pad: 0,
        };
        self.off = slot.off + PARAM_HDR + len;
        self.nparams += 1;
    }

    /// An empty parameter: the value does not exist.
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    #[inline(always)]
    pub unsafe fn push_absent(&mut self, ty: ParamType) {
        if let Some(slot) = self.slot() {
            self.commit(slot, 0, ty, PARAM_ABSENT);
        }
    }

    /// A NUL-terminated string from user memory.
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    /// `addr` is a user address of the current task (read with
    /// `bpf_probe_read_user_str`, which fails instead of faulting).
    #[inline(always)]
    pub unsafe fn push_user_str(&mut self, addr: u64) {
        self.push_str(addr, ParamType::UserStr);
    }

    /// A NUL-terminated string from kernel memory.
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    /// `addr` is a kernel address (read with `bpf_probe_read_kernel_str`,
    /// which fails instead of faulting).
    #[inline(always)]
    pub unsafe fn push_kernel_str(&mut self, addr: u64) {
        self.push_str(addr, ParamType::KernelStr);
    }

    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    /// `addr` is a user or kernel address as `ty` says (read with the matching
    /// helper, which fails instead of faulting).
    #[inline(always)]
    pub unsafe fn push_str(&mut self, addr: u64, ty: ParamType) {
        let Some(slot) = self.slot() else { return };
        if addr == 0 {
            self.commit(slot, 0, ty, PARAM_ABSENT);
            return;
        }
        let dst = slot.data as *mut c_void;
        let rc = if matches!(ty, ParamType::KernelStr) {
            bpf_probe_read_kernel_str(dst, MAX_STR as u32, addr as *const c_void)
        } else {
            bpf_probe_read_user_str(dst, MAX_STR as u32, addr as *const c_void)
        };
        if rc <= 0 {
            self.commit(slot, 0, ty, PARAM_FAULT);
            return;
        }
        // rc counts the NUL. A string that filled the buffer may be cut.
        let flags = if rc as usize >= MAX_STR {
            PARAM_TRUNCATED
        } else {
            0
        };
        self.commit(
            slot,
            bound(rc as u64 - 1, MAX_STR as u64 - 1) as u32,
            ty,
            flags,
        );
    }

    /// Up to `MAX_BYTES` bytes of user memory (socket addresses, small structs).
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    /// `addr` is a user address of the current task (read with
    /// `bpf_probe_read_user`, which fails instead of faulting).
    #[inline(always)]
    pub unsafe fn push_user_bytes(&mut self, addr: u64, len: u64) {
        let ty = ParamType::UserBytes;
        let Some(slot) = self.slot() else { return };
        if addr == 0 || len == 0 {
            self.commit(slot, 0, ty, PARAM_ABSENT);
            return;
        }
        let (n, flags) = if len > MAX_BYTES as u64 {
            (MAX_BYTES as u32, PARAM_TRUNCATED)
        } else {
            (len as u32, 0)
        };
        let n = bound(n as u64, 2 * MAX_BYTES as u64 - 1) as u32;
        if bpf_probe_read_user(slot.data as *mut c_void, n, addr as *const c_void) != 0 {
            self.commit(slot, 0, ty, PARAM_FAULT);
            return;
        }
        self.commit(slot, n, ty, flags);
    }

    /// The user memory range `[start, end)`, cut at `limit` bytes (argv, envp).
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    /// `start..end` is a user range of the current task (read with
    /// `bpf_probe_read_user`, which fails instead of faulting).
    #[inline(always)]
    pub unsafe fn push_user_range(&mut self, start: u64, end: u64, limit: u32) {
        let ty = ParamType::StrList;
        let Some(slot) = self.slot() else { return };
        if start == 0 || end <= start || limit == 0 {
            self.commit(slot, 0, ty, PARAM_ABSENT);
            return;
        }
        let limit = if limit > MAX_STR as u32 {
            MAX_STR as u32
        } else {
            limit
        };
        let len = end - start;
        let (n, flags) = if len > limit as u64 {
            (limit, PARAM_TRUNCATED)
        } else {
            (len as u32, 0)
        };
        let n = bound(n as u64, 2 * MAX_STR as u64 - 1) as u32;
        if n > MAX_STR as u32 {
            self.commit(slot, 0, ty, PARAM_FAULT);
            return;
        }
        if bpf_probe_read_user(slot.data as *mut c_void, n, start as *const c_void) != 0 {
            self.commit(slot, 0, ty, PARAM_FAULT);
            return;
        }
        self.commit(slot, n, ty, flags);
    }

    /// A fixed-size value built on the stack.
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    #[inline(always)]
    pub unsafe fn push_value<T: Copy>(&mut self, value: &T, ty: ParamType) {
        let Some(slot) = self.slot() else { return };
        core::ptr::write_unaligned(slot.data as *mut T, *value);
        self.commit(slot, size_of::<T>() as u32, ty, 0);
    }

    /// Copies `len` bytes of kernel memory (used by the path builder).
    ///
    /// # Safety
    ///
    /// Only from a BPF program; `dst` is inside this CPU's scratch area with
    /// `len` bytes left, and `src` a kernel address (`bpf_probe_read_kernel`
    /// fails on a bad one).
    #[inline(always)]
    pub unsafe fn copy_kernel(dst: u64, src: u64, len: u32) -> bool {
        bpf_probe_read_kernel(dst as *mut c_void, len, src as *const c_void) == 0
    }

    /// Writes cell `cell` (1 to 7) of this CPU's walk-state memory. The
    /// verifier does not track what map memory holds: a value read back
    /// with [`Record::cell`] is unknown to it, so values that differ only by
    /// constants set in earlier branches reach a path walk as one state.
    /// Cells also carry values across a tail call.
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building (cell 0
    /// is the path walk's position, which it sets before use).
    #[inline(always)]
    pub unsafe fn set_cell(&self, cell: u64, v: u64) {
        core::ptr::write_volatile(self.cell_at(cell), v);
    }

    /// Reads cell `cell` (see [`Record::set_cell`]).
    ///
    /// # Safety
    ///
    /// As [`Record::set_cell`].
    #[inline(always)]
    pub unsafe fn cell(&self, cell: u64) -> u64 {
        core::ptr::read_volatile(self.cell_at(cell))
    }

    #[inline(always)]
    fn cell_at(&self, cell: u64) -> *mut u64 {
        (self.buf + WALK_STATE + 8 * (cell & 7)) as *mut u64
    }

    /// Makes the record's fill level unknown to the verifier (through the
    /// record's header, where [`Record::submit`] writes it anyway): after
    /// a path walk every way out leaves a different known length, and a
    /// second walk would be verified once for each.
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building.
    #[inline(always)]
    pub unsafe fn settle(&mut self) {
        self.save();
        self.off = (*self.header()).size;
        self.nparams = (*self.header()).nparams;
    }

    /// Stores the fill level in the record's header, for [`Record::resume`]
    /// after a tail call.
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building.
    #[inline(always)]
    pub unsafe fn save(&mut self) {
        let h = self.header();
        core::ptr::write_volatile(&mut (*h).size, self.off);
        core::ptr::write_volatile(&mut (*h).nparams, self.nparams);
    }

    /// The record this CPU was building when its program tail-called the
    /// current one (after [`Record::save`]).
    ///
    /// # Safety
    ///
    /// Only from a tail-called BPF program whose caller saved a record.
    #[inline(always)]
    pub unsafe fn resume() -> Option<Self> {
        let cpu = bpf_get_smp_processor_id();
        let Some(buf) = SCRATCH.get_ptr_mut(cpu) else {
            count(Counter::LostNoScratch);
            return None;
        };
        let h = buf as *const EventHeader;
        Some(Self {
            buf: buf as u64,
            off: core::ptr::read_volatile(&(*h).size),
            nparams: core::ptr::read_volatile(&(*h).nparams),
        })
    }

    /// Sends the record, waking the reader only past the fill threshold.
    ///
    /// # Safety
    ///
    /// Only from a BPF program, on the record this CPU is building in its
    /// per-CPU scratch area (from `Record::begin`): BPF programs run to
    /// completion on one CPU, so nothing else writes that area meanwhile.
    #[inline(always)]
    pub unsafe fn submit(self) {
        let size = if self.off > MAX_RECORD as u32 {
            MAX_RECORD as u32
        } else {
            self.off
        };
        let size = bound(size as u64, 2 * MAX_RECORD as u64 - 1) as u32;
        (*self.header()).size = size;
        (*self.header()).nparams = self.nparams;
        let flags = if EVENTS.query(BPF_RB_AVAIL_DATA) >= setting!(wakeup_bytes) as u64 {
            BPF_RB_FORCE_WAKEUP
        } else {
            BPF_RB_NO_WAKEUP
        };
        let bytes = core::slice::from_raw_parts(self.buf as *const u8, size as usize);
        match EVENTS.output(bytes, flags) {
            Ok(()) => count(Counter::Sent),
            Err(_) => count(Counter::LostRingFull),
        }
    }
}
