//! Resolving a `(dentry, vfsmount)` pair to a path, as the task sees it.
//!
//! There is no `bpf_d_path` for these program types, so the walk follows
//! `d_parent` up to the mount root, crosses to the parent mount at its
//! mountpoint, and stops at the task's root (`fs->root`): a process in a
//! container gets the path inside its container, as rules expect.
//! Components are written backwards into the path area of the scratch
//! buffer, then copied into the record in one read.
//!
//! Bounded: at most `MAX_PATH_DEPTH` steps and `MAX_STR` bytes. A walk that
//! runs out, or ends at a root that is not the task's (a pipe, a memfd, a
//! path outside the task's root), is flagged `PARAM_PARTIAL_PATH`.

use mamori_common::{
    MAX_PATH_DEPTH, MAX_STR, PARAM_ABSENT, PARAM_FAULT, PARAM_PARTIAL_PATH, ParamType,
};

use crate::{
    bound::bound,
    kernel::{ptr, read},
    maps::off,
    record::{PATH_AREA, Record, WALK_STATE},
};

/// End of the path being built, relative to the path area.
const END: u64 = MAX_STR as u64 + 256;
/// The walk stops before writing below this position.
const FLOOR: u64 = 256;
const POS_MASK: u64 = 8191;
const NAME_MAX: u64 = 255;

/// `(dentry, vfsmount)` of the `struct path` at `base + at`: one read when
/// it is `{ mnt, dentry }`, as on every kernel since 2.6.
#[inline(always)]
unsafe fn path_at(base: u64, at: u32) -> (u64, u64) {
    let (m, d) = (off!(path_mnt), off!(path_dentry));
    if m == 0 && d == 8 {
        let v = read::<[u64; 2]>(base, at).unwrap_or([0; 2]);
        (v[1], v[0])
    } else {
        (ptr(base, at.wrapping_add(d)), ptr(base, at.wrapping_add(m)))
    }
}

/// The task's root directory: `(dentry, vfsmount)`.
#[inline(always)]
pub unsafe fn task_root(task: u64) -> (u64, u64) {
    path_at(ptr(task, off!(task_fs)), off!(fs_root))
}

/// The task's working directory: `(dentry, vfsmount)`.
#[inline(always)]
pub unsafe fn task_cwd(task: u64) -> (u64, u64) {
    path_at(ptr(task, off!(task_fs)), off!(fs_pwd))
}

/// `(dentry, vfsmount)` of an open `struct file`.
#[inline(always)]
pub unsafe fn file_path(file: u64) -> (u64, u64) {
    path_at(file, off!(file_path))
}

/// Appends the path of `(dentry, vfsmnt)` seen from `root` as a parameter.
///
/// The loop-carried position lives in map memory (volatile), not in a
/// register: at each iteration the verifier sees an unknown value bounded by
/// a mask, so the states of all paths through the body converge instead of
/// multiplying with every iteration.
#[inline(never)]
pub unsafe fn push_path(rec: &mut Record, dentry: u64, vfsmnt: u64, root: &(u64, u64)) {
    let ty = ParamType::KernelPath;
    let Some(slot) = rec.slot() else { return };
    if dentry == 0 || vfsmnt == 0 {
        rec.commit(slot, 0, ty, PARAM_ABSENT);
        return;
    }
    let area = rec.buf + PATH_AREA;
    let pos_cell = (rec.buf + WALK_STATE) as *mut u64;
    core::ptr::write_volatile(pos_cell, END);
    let mount_mnt = off!(mount_mnt) as u64;
    let mut d = dentry;
    let mut mnt = vfsmnt;
    let mut flags = PARAM_PARTIAL_PATH;
    let mut pseudo = 0u64;
    for _ in 0..MAX_PATH_DEPTH {
        if d == root.0 && mnt == root.1 {
            flags = 0;
            break;
        }
        let mount = mnt.wrapping_sub(mount_mnt);
        if d == ptr(mnt, off!(vfsmount_root)) {
            let parent = ptr(mount, off!(mount_parent));
            if parent == mount || parent == 0 {
                break; // top of the mount tree, outside the task's root
            }
            d = ptr(mount, off!(mount_mountpoint));
            mnt = parent + mount_mnt;
            continue;
        }
        let parent = ptr(d, off!(dentry_parent));
        if parent == d {
            // A pseudo dentry (memfd, pipe, socket) is its own parent: its
            // name ("memfd:x") is added after the loop.
            pseudo = d;
            break;
        }
        if parent == 0 {
            break;
        }
        if !prepend_name(area, pos_cell, d) {
            break; // longer than MAX_STR, or unreadable: partial
        }
        d = parent;
    }
    if pseudo != 0 && !prepend_name(area, pos_cell, pseudo) {
        rec.commit(slot, 0, ty, PARAM_FAULT);
        return;
    }
    let mut pos = bound(core::ptr::read_volatile(pos_cell), POS_MASK);
    if pos >= END {
        pos = END - 1;
        *((area + bound(pos, POS_MASK)) as *mut u8) = b'/';
    }
    let len = bound(END - pos, 2 * MAX_STR as u64 - 1);
    let len = if len > MAX_STR as u64 {
        MAX_STR as u64
    } else {
        len
    };
    if !Record::copy_kernel(slot.data, area + bound(pos, POS_MASK), len as u32) {
        rec.commit(slot, 0, ty, PARAM_FAULT);
        return;
    }
    rec.commit(slot, len as u32, ty, flags);
}

/// Writes `/<name of d>` before the position stored in `pos_cell`; false
/// when it does not fit or cannot be read.
#[inline(always)]
unsafe fn prepend_name(area: u64, pos_cell: *mut u64, d: u64) -> bool {
    let len = bound(
        read::<u32>(d, off!(dentry_name_len)).unwrap_or(0) as u64,
        NAME_MAX,
    );
    let pos = bound(core::ptr::read_volatile(pos_cell), POS_MASK);
    if pos < FLOOR + len + 1 {
        return false;
    }
    let start = pos - len - 1;
    let name = ptr(d, off!(dentry_name_ptr));
    if !Record::copy_kernel(area + bound(start + 1, POS_MASK), name, len as u32) {
        return false;
    }
    *((area + bound(start, POS_MASK)) as *mut u8) = b'/';
    core::ptr::write_volatile(pos_cell, start);
    true
}
