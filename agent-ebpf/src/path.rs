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
    MAX_PATH_DEPTH, MAX_STR, PARAM_ABSENT, PARAM_FAULT, PARAM_PARTIAL_PATH, PARAM_TRUNCATED,
    ParamType,
};

use aya_ebpf::{cty::c_void, helpers::generated::bpf_loop};

use crate::{
    bound::bound,
    kernel::{load, ptr, read},
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
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
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
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
pub unsafe fn task_root(task: u64) -> (u64, u64) {
    fs_path(task, off!(fs_root))
}

/// The task's working directory: `(dentry, vfsmount)`.
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
pub unsafe fn task_cwd(task: u64) -> (u64, u64) {
    fs_path(task, off!(fs_pwd))
}

/// The `struct path` at `at` in the BTF-typed task's `fs_struct`: direct
/// loads (see [`load`]).
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
unsafe fn fs_path(task: u64, at: u32) -> (u64, u64) {
    let fs = load::<u64>(task, off!(task_fs));
    if fs == 0 {
        return (0, 0);
    }
    (
        load::<u64>(fs, at.wrapping_add(off!(path_dentry))),
        load::<u64>(fs, at.wrapping_add(off!(path_mnt))),
    )
}

/// `(dentry, vfsmount)` of an open `struct file`.
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
#[inline(always)]
pub unsafe fn file_path(file: u64) -> (u64, u64) {
    path_at(file, off!(file_path))
}

/// What a dentry's name and parent are.
pub struct Head {
    pub parent: u64,
    pub len: u64,
    pub name: u64,
}

/// `d_parent` and `d_name` of `d`: one read where they sit together (as
/// on every kernel since 3.x: `d_parent`, then `d_name`'s hash, length and
/// pointer).
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
#[inline(always)]
pub unsafe fn dentry_head(d: u64) -> Head {
    let (p, l, n) = (
        off!(dentry_parent),
        off!(dentry_name_len),
        off!(dentry_name_ptr),
    );
    if l == p.wrapping_add(12) && n == p.wrapping_add(16) {
        let v = read::<[u64; 3]>(d, p).unwrap_or([0; 3]);
        return Head {
            parent: v[0],
            len: v[1] >> 32,
            name: v[2],
        };
    }
    Head {
        parent: ptr(d, p),
        len: read::<u32>(d, l).unwrap_or(u32::MAX) as u64,
        name: ptr(d, n),
    }
}

/// What one walk carries from step to step (`bpf_loop`'s context, on the
/// caller's stack).
#[repr(C)]
struct Walk {
    /// The path area of this CPU's scratch buffer.
    area: u64,
    d: u64,
    mnt: u64,
    /// `mnt`'s root dentry: read once per mount, not once per component.
    mnt_root: u64,
    root_d: u64,
    root_mnt: u64,
    /// Where the write position within `area` is kept (names are prepended
    /// before it): map memory, so that the verifier sees an unknown value
    /// at each step and the steps' states converge.
    pos_cell: u64,
    /// Until the walk ends somewhere: cut (it ran out of steps or room).
    flags: u64,
    /// The name of a pseudo dentry (memfd, pipe, socket), added last.
    pseudo: Head,
}

/// Appends the path of `(dentry, vfsmnt)` seen from `root` as a parameter
/// of type `ty` (`KernelPath` or `BaseDir`).
///
/// The steps run in `bpf_loop`: the verifier checks one step once, not
/// once per iteration, so the walk's bound is set by the path's bytes and
/// not by the verifier's instruction budget.
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting. `rec` is the
/// record this CPU is building.
#[inline(never)]
pub unsafe fn push_path(
    rec: &mut Record,
    dentry: u64,
    vfsmnt: u64,
    root: &(u64, u64),
    ty: ParamType,
) {
    let Some(slot) = rec.slot() else { return };
    if dentry == 0 || vfsmnt == 0 {
        rec.commit(slot, 0, ty, PARAM_ABSENT);
        return;
    }
    let area = rec.buf + PATH_AREA;
    let pos_cell = (rec.buf + WALK_STATE) as *mut u64;
    core::ptr::write_volatile(pos_cell, END);
    let mut walk = Walk {
        area,
        d: dentry,
        mnt: vfsmnt,
        mnt_root: ptr(vfsmnt, off!(vfsmount_root)),
        root_d: root.0,
        root_mnt: root.1,
        pos_cell: pos_cell as u64,
        flags: (PARAM_PARTIAL_PATH | PARAM_TRUNCATED) as u64,
        pseudo: Head {
            parent: 0,
            len: 0,
            name: 0,
        },
    };
    bpf_loop(
        MAX_PATH_DEPTH,
        walk_step as *mut c_void,
        &mut walk as *mut Walk as *mut c_void,
        0,
    );
    if walk.pseudo.parent != 0 && !prepend_name(area, pos_cell, &walk.pseudo) {
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
    rec.commit(slot, len as u32, ty, walk.flags as u8);
}

/// One step of a walk: to the parent dentry (prepending this one's name),
/// or across to the parent mount at a mount's root. Returns 1 to stop.
///
/// # Safety
///
/// Only as `bpf_loop`'s callback from [`push_path`], whose `Walk` `ctx`
/// points to.
#[inline(never)]
unsafe extern "C" fn walk_step(_index: u64, ctx: *mut c_void) -> i64 {
    let w = &mut *(ctx as *mut Walk);
    if w.d == w.root_d && w.mnt == w.root_mnt {
        w.flags = 0;
        return 1;
    }
    if w.d == w.mnt_root {
        let mount = w.mnt.wrapping_sub(off!(mount_mnt) as u64);
        let parent = ptr(mount, off!(mount_parent));
        if parent == mount || parent == 0 {
            w.flags = PARAM_PARTIAL_PATH as u64;
            return 1; // top of the mount tree, outside the task's root
        }
        w.d = ptr(mount, off!(mount_mountpoint));
        w.mnt = parent + off!(mount_mnt) as u64;
        w.mnt_root = ptr(w.mnt, off!(vfsmount_root));
        return 0;
    }
    // Parent, name length and name pointer in one read.
    let head = dentry_head(w.d);
    if head.parent == w.d {
        // A pseudo dentry (memfd, pipe, socket) is its own parent: its
        // name ("memfd:x") is added after the walk.
        w.pseudo = head;
        w.flags = PARAM_PARTIAL_PATH as u64;
        return 1;
    }
    if head.parent == 0 {
        w.flags = PARAM_PARTIAL_PATH as u64;
        return 1;
    }
    if !prepend_name(w.area, w.pos_cell as *mut u64, &head) {
        return 1; // longer than MAX_STR, or unreadable: partial
    }
    w.d = head.parent;
    0
}

/// Writes `/<name>` of a dentry before the position stored in `pos_cell`;
/// false when it does not fit or cannot be read.
///
/// # Safety
///
/// Only from a BPF program; `area` is this CPU's path scratch area and
/// `pos_cell` its write position within it; the name is read from the
/// kernel with `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
unsafe fn prepend_name(area: u64, pos_cell: *mut u64, head: &Head) -> bool {
    let len = bound(head.len, NAME_MAX);
    let at = bound(core::ptr::read_volatile(pos_cell), POS_MASK);
    if at < FLOOR + len + 1 {
        return false;
    }
    let start = at - len - 1;
    if !Record::copy_kernel(area + bound(start + 1, POS_MASK), head.name, len as u32) {
        return false;
    }
    *((area + bound(start, POS_MASK)) as *mut u8) = b'/';
    core::ptr::write_volatile(pos_cell, start);
    true
}
