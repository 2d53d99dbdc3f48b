//! The open prefilter: whether some loaded rule could match this open,
//! decided before any record is built (`mamori_common::OpenFilter`; the
//! agent's `capture::prefilter` is the reference this mirrors).
//!
//! Cheapest first: the result and the flags are already in registers; the
//! last two path components (kernel memory) are read only when a term
//! names them; the raw path (user memory, the costliest read: ~110 ns) only
//! when a term that survived the names needs "../". The components are found by
//! the same steps as the path walk (`path.rs`): a mount root stands for its
//! mountpoint, the task's root or the top of the mount tree ends the path.
//! Anything unreadable admits the open: the filter never guesses "no".

use aya_ebpf::{
    cty::c_void,
    helpers::generated::{
        bpf_get_smp_processor_id, bpf_probe_read_kernel, bpf_probe_read_user_str,
    },
};
use mamori_common::{
    NAME_KEY_LEN, NameKey, NameKind, OpenFilter, PREFILTER_FLAGS, PREFILTER_SUFFIXES,
    syscalls::{CREAT, OPEN, OPENAT},
};

use crate::{
    bound::bound,
    fd::fd_file,
    kernel::{ptr, read},
    maps::{NAME_MASKS, OPEN_FILTER, SCRATCH, WATCHED_INODES, off},
    path::{Head, dentry_head, file_path, task_root},
    record::PREFILTER_AREA,
};

const ALL: u64 = u64::MAX;
/// The smallest all-ones mask that holds `NAME_KEY_LEN`.
const KEY_MASK: u64 = (NAME_KEY_LEN as u64 + 1).next_power_of_two() - 1;
/// Bytes of the raw path searched for "../".
const RAW_SCAN: usize = 256;
/// Mount crossings followed to find one component.
const CROSSINGS: usize = 4;

/// True when some term of `nr`'s filter may hold for this open (or no
/// filter applies to `nr`).
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
pub unsafe fn admits(nr: u32, ret: i64, a: &[u64; 6], task: u64) -> bool {
    let Some(slot) = OpenFilter::slot(nr) else {
        return true;
    };
    let Some(f) = OPEN_FILTER.get_ptr(0) else {
        return true;
    };
    let f = &*f;
    if f.active & (1 << slot) == 0 {
        return true;
    }
    let mut cand = f.type_terms[slot & 3];
    if ret < 0 {
        cand &= !f.success;
    }
    // openat2's flags are in user memory: not tested here.
    let flags = match nr {
        OPEN => Some(a[1]),
        OPENAT => Some(a[2]),
        CREAT => Some(0o1101),
        _ => None,
    };
    if let Some(fl) = flags {
        cand &= f.access[(fl & 3) as usize];
        for i in 0..PREFILTER_FLAGS {
            if fl as u32 & f.flag_bits[i] == 0 {
                cand &= !f.flag_terms[i];
            }
        }
    }
    // The names next: they are in kernel memory, and they rule out most
    // terms, those that also need "../" among them.
    if cand != 0 && ret >= 0 && cand & (f.name | f.dir) != 0 {
        cand &= names_mask(ret, task, cand, f);
        // Ruled out by its name alone: still sent when the file is one a
        // rule names, reached by another name.
        if cand == 0 && is_watched(ret, task) {
            return true;
        }
    }
    // Last, "../" in the path as passed: a read of user memory, the
    // costliest step, made only when a term still needs it.
    if cand & f.dotdot != 0 {
        let path = if nr == OPEN || nr == CREAT {
            a[0]
        } else {
            a[1]
        };
        if !has_dotdot(path) {
            cand &= !f.dotdot;
        }
    }
    cand != 0
}

/// Terms the opened file's last two path components admit (all when they
/// cannot be read). The last component first: with most rules it alone
/// rules an open out.
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
unsafe fn names_mask(fd: i64, task: u64, cand: u64, f: &OpenFilter) -> u64 {
    let file = fd_file(task, fd);
    if file == 0 {
        return ALL;
    }
    let (d0, m0) = file_path(file);
    // A file that is the task's root has no name a rule can hold, whatever
    // this finds; the root matters only for the component before.
    let Some((d, m)) = component(d0, m0, &(0, 0)) else {
        return ALL;
    };
    let head = dentry_head(d);
    let mut mask = ALL;
    if cand & f.name != 0 {
        mask &= !f.name | last_mask(&head, cand, f);
        if cand & mask == 0 {
            return 0;
        }
    }
    if cand & mask & f.dir != 0 {
        mask &= !f.dir | dir_mask(d, m, head.parent, task, f);
    }
    mask
}

/// Whether the file behind `fd` is one of `WATCHED_INODES`.
///
/// # Safety
///
/// As [`names_mask`].
#[inline(always)]
unsafe fn is_watched(fd: i64, task: u64) -> bool {
    let file = fd_file(task, fd);
    let inode = ptr(file, off!(file_inode));
    let Some(ino) = read::<u64>(inode, off!(inode_ino)) else {
        return false;
    };
    match WATCHED_INODES.get(&ino) {
        Some(dev) => read::<u32>(ptr(inode, off!(inode_sb)), off!(sb_dev)) == Some(*dev),
        None => false,
    }
}

/// Whether the path as passed may contain "../" (true when it cannot be
/// read whole).
///
/// # Safety
///
/// Only from a BPF program, for the current task: `path` is a user address of
/// it (`bpf_probe_read_user_str` fails on a bad one instead of faulting).
#[inline(always)]
unsafe fn has_dotdot(path: u64) -> bool {
    let Some(buf) = SCRATCH.get_ptr_mut(bpf_get_smp_processor_id()) else {
        return true;
    };
    let area = (buf as *mut u8).add(PREFILTER_AREA as usize);
    let n = bpf_probe_read_user_str(area as *mut c_void, RAW_SCAN as u32, path as *const c_void);
    if n <= 0 || n as usize >= RAW_SCAN {
        return true;
    }
    let len = n as usize - 1;
    for i in 0..RAW_SCAN - 2 {
        if i + 2 >= len {
            break;
        }
        if core::ptr::read_volatile(area.add(i)) == b'.'
            && core::ptr::read_volatile(area.add(i + 1)) == b'.'
            && core::ptr::read_volatile(area.add(i + 2)) == b'/'
        {
            return true;
        }
    }
    false
}

/// Terms the component before the last admits: 0 when the file sits at
/// the root (no term names "/"), all when it cannot be read.
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
#[inline(always)]
unsafe fn dir_mask(d: u64, mnt: u64, parent: u64, task: u64, f: &OpenFilter) -> u64 {
    if parent == 0 || parent == d {
        return 0;
    }
    let root = task_root(task);
    match component(parent, mnt, &root) {
        Some((p, _)) => {
            let head = dentry_head(p);
            if head.name == 0 || head.len > 255 {
                return ALL;
            }
            if !known_len(f.dir_lens, head.len) {
                return 0;
            }
            lookup(head.name, head.len, 0, NameKind::Dir)
        }
        None => 0,
    }
}

/// The dentry whose name is the path's component at `(d, mnt)`: a mount
/// root stands for its mountpoint. `None` when the path ends here (the
/// task's root, the top of the mount tree) or the crossings run out.
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
#[inline(always)]
unsafe fn component(mut d: u64, mut mnt: u64, root: &(u64, u64)) -> Option<(u64, u64)> {
    let mount_mnt = off!(mount_mnt) as u64;
    for _ in 0..CROSSINGS {
        if d == root.0 && mnt == root.1 {
            return None;
        }
        if d != ptr(mnt, off!(vfsmount_root)) {
            return Some((d, mnt));
        }
        let mount = mnt.wrapping_sub(mount_mnt);
        let parent = ptr(mount, off!(mount_parent));
        if parent == mount || parent == 0 {
            return None;
        }
        d = ptr(mount, off!(mount_mountpoint));
        mnt = parent + mount_mnt;
    }
    None
}

/// Terms the last component admits (whole; its suffixes only when a
/// remaining term accepts one): all when it cannot be read.
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
#[inline(always)]
unsafe fn last_mask(head: &Head, cand: u64, f: &OpenFilter) -> u64 {
    if head.name == 0 || head.len > 255 {
        return ALL;
    }
    let mut mask = if known_len(f.last_lens, head.len) {
        lookup(head.name, head.len, 0, NameKind::Last)
    } else {
        0
    };
    if cand & f.suffix != 0 {
        for i in 0..PREFILTER_SUFFIXES {
            let l = f.suffix_lens[i] as u64;
            if l != 0 && l <= head.len {
                mask |= lookup(head.name, l, head.len - l, NameKind::Suffix);
            }
        }
    }
    mask
}

/// Whether some name of length `len` is in the map (`lens`: one bit per
/// length): no read, no hash for the others.
#[inline(always)]
fn known_len(lens: u64, len: u64) -> bool {
    len < 64 && lens & (1 << len) != 0
}

/// The mask stored for the `len` bytes at `name + skip`, 0 when none (a
/// name too long for a key matches no entry); all ones when unreadable.
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
#[inline(always)]
unsafe fn lookup(name: u64, len: u64, skip: u64, kind: NameKind) -> u64 {
    if len > NAME_KEY_LEN as u64 {
        return 0;
    }
    let mut key = NameKey {
        kind: kind as u8,
        len: len as u8,
        bytes: [0; NAME_KEY_LEN],
    };
    // Checked in 64 bits, the width the size is passed in: a check on a
    // truncated copy would not bound the register the call uses.
    let n = bound(len, KEY_MASK);
    if n > NAME_KEY_LEN as u64 {
        return 0;
    }
    if bpf_probe_read_kernel(
        key.bytes.as_mut_ptr() as *mut c_void,
        n as u32,
        (name + skip) as *const c_void,
    ) != 0
    {
        return ALL;
    }
    match NAME_MASKS.get(&key) {
        Some(m) => *m,
        None => 0,
    }
}
