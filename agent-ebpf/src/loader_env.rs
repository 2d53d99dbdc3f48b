//! The dynamic loader's code-loading variables (`LD_PRELOAD`, `LD_AUDIT`)
//! of an environment longer than the capture bound.
//!
//! The environment is captured up to `capture.env_bytes`; padding it is a
//! cheap way to push `LD_PRELOAD` past what a monitor reads (and `ld.so`
//! takes the *last* `LD_PRELOAD`, so a harmless one before the cut hides
//! nothing). When the environment is cut, its strings are scanned from the
//! start, one per `bpf_loop` step, and every `LD_PRELOAD=`/`LD_AUDIT=`
//! string is sent, up to `KEEP` bytes in all. Only these two: they load
//! code into the process, and a long harmless `LD_LIBRARY_PATH` (cargo's,
//! under `cargo test`) must not mark the scan truncated. A scan that could not finish (too many strings), a
//! kept string cut at `STR_READ - 1` bytes, or a list that ran out of room
//! flags the parameter truncated: then not every loader variable is known.

use aya_ebpf::{
    cty::c_void,
    helpers::generated::{bpf_loop, bpf_probe_read_user_str},
};
use mamori_common::{PARAM_ABSENT, PARAM_TRUNCATED, ParamType};

use crate::{
    bound::bound,
    record::{Record, WALK_STATE},
};

/// Bytes of loader variables kept per exec.
const KEEP: u64 = 1024;
/// Bytes read per step (one string, or the next piece of a long one).
const STR_READ: u64 = 256;
/// Masks (`bound`) covering `KEEP` and `STR_READ`: a read at
/// `out + (used & USED_MASK)` of `STR_READ` bytes stays in the slot.
const USED_MASK: u64 = 2047;
const READ_MASK: u64 = 511;
/// Strings (and pieces of long strings) scanned at most: an environment
/// of more is reported as not scanned whole.
const MAX_STEPS: u32 = 32768;

/// What the scan carries from step to step (`bpf_loop`'s context).
#[repr(C)]
struct Scan {
    /// The parameter's data area in the record.
    out: u64,
    /// Where the bytes kept in `out` are counted: map memory, so that the
    /// verifier sees an unknown value at each step and the steps' states
    /// converge.
    used_cell: u64,
    /// The next user address to read, and the environment's end.
    pos: u64,
    end: u64,
    /// Inside a string longer than one read (its start was already seen).
    mid: u64,
    flags: u64,
}

/// Pushes the loader variables of the environment `[start, end)` when it is
/// longer than `limit` (and `limit` is not 0: environment capture off);
/// absent otherwise.
///
/// # Safety
///
/// Only from the exec program, on the record this CPU is building;
/// `start..end` is a user range of the current task (read with
/// `bpf_probe_read_user_str`, which fails instead of faulting).
#[inline(never)]
pub unsafe fn push_loader_env(rec: &mut Record, start: u64, end: u64, limit: u64) {
    let ty = ParamType::StrList;
    let Some(slot) = rec.slot() else { return };
    if limit == 0 || start == 0 || end <= start || end - start <= limit {
        rec.commit(slot, 0, ty, PARAM_ABSENT);
        return;
    }
    // The cell the path walks use: they are done.
    let used_cell = (rec.buf + WALK_STATE) as *mut u64;
    core::ptr::write_volatile(used_cell, 0);
    let mut scan = Scan {
        out: slot.data,
        used_cell: used_cell as u64,
        pos: start,
        end,
        mid: 0,
        flags: 0,
    };
    bpf_loop(
        MAX_STEPS,
        scan_step as *mut c_void,
        &mut scan as *mut Scan as *mut c_void,
        0,
    );
    if scan.pos < scan.end {
        scan.flags |= PARAM_TRUNCATED as u64; // not scanned whole
    }
    let used = bound(core::ptr::read_volatile(used_cell), USED_MASK).min(KEEP);
    rec.commit(slot, used as u32, ty, scan.flags as u8);
}

/// `LD_PRELOAD=` or `LD_AUDIT=` at `p`, a string of `len` bytes with its
/// NUL (both names shorter than a read, so `p` holds them whole).
#[inline(always)]
unsafe fn loads_code(p: *const u8, len: u64) -> bool {
    let starts =
        |name: &[u8]| len > name.len() as u64 && (0..name.len()).all(|i| *p.add(i) == name[i]);
    starts(b"LD_PRELOAD=") || starts(b"LD_AUDIT=")
}

/// One string (or the next piece of a long one). Returns 1 to stop.
///
/// # Safety
///
/// Only as `bpf_loop`'s callback from [`push_loader_env`], whose `Scan`
/// `ctx` points to.
#[inline(never)]
unsafe extern "C" fn scan_step(_index: u64, ctx: *mut c_void) -> i64 {
    let s = &mut *(ctx as *mut Scan);
    if s.pos >= s.end {
        return 1;
    }
    // Read where a kept string would go: past what is kept (the area holds
    // at most USED_MASK + STR_READ bytes, within the slot's MAX_STR).
    let used = bound(
        core::ptr::read_volatile(s.used_cell as *const u64),
        USED_MASK,
    );
    let at = s.out + used;
    let rc = bpf_probe_read_user_str(at as *mut c_void, STR_READ as u32, s.pos as *const c_void);
    if rc <= 0 {
        s.flags |= PARAM_TRUNCATED as u64;
        return 1; // unreadable: the rest is unknown
    }
    let rc = bound(rc as u64, READ_MASK); // at most STR_READ
    // A full read may have stopped before the string's end.
    let more = rc == STR_READ;
    // A string's start (not the next piece of a long one) that loads code.
    let loader = s.mid == 0 && loads_code(at as *const u8, rc);
    if loader {
        if used + rc > KEEP {
            s.flags |= PARAM_TRUNCATED as u64;
            return 1; // no room: the rest is unknown
        }
        // With its NUL, the list's separator.
        core::ptr::write_volatile(s.used_cell as *mut u64, used + rc);
        if more {
            s.flags |= PARAM_TRUNCATED as u64; // kept cut
        }
    }
    s.pos += if more { rc - 1 } else { rc };
    s.mid = more as u64;
    0
}
