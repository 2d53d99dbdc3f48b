//! Reading kernel memory through the load-time offsets, and the fields of
//! the current task that every record carries.

use aya_ebpf::{
    cty::c_void,
    helpers::generated::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_task, bpf_get_current_task_btf, bpf_get_current_uid_gid,
        bpf_ktime_get_boot_ns, bpf_probe_read_kernel, bpf_probe_read_user, bpf_task_pt_regs,
    },
};
use mamori_common::{COMM_LEN, EventHeader, offsets::MISSING};

use crate::maps::{off, setting};

/// Reads a `T` at `base + offset` of kernel memory; `None` when the member is
/// missing on this kernel, the base is null or the read faults.
#[inline(always)]
pub unsafe fn read<T: Copy>(base: u64, offset: u32) -> Option<T> {
    if base == 0 || offset == MISSING {
        return None;
    }
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    let rc = bpf_probe_read_kernel(
        v.as_mut_ptr() as *mut c_void,
        size_of::<T>() as u32,
        (base + offset as u64) as *const c_void,
    );
    if rc == 0 { Some(v.assume_init()) } else { None }
}

/// Reads a pointer member; 0 when unavailable.
#[inline(always)]
pub unsafe fn ptr(base: u64, offset: u32) -> u64 {
    read::<u64>(base, offset).unwrap_or(0)
}

/// Reads a `T` from user memory of the current task.
#[inline(always)]
pub unsafe fn read_user<T: Copy>(addr: u64) -> Option<T> {
    if addr == 0 {
        return None;
    }
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    let rc = bpf_probe_read_user(
        v.as_mut_ptr() as *mut c_void,
        size_of::<T>() as u32,
        addr as *const c_void,
    );
    if rc == 0 { Some(v.assume_init()) } else { None }
}

/// The current task (`struct task_struct *`).
#[inline(always)]
pub fn current_task() -> u64 {
    unsafe { bpf_get_current_task() }
}

/// Syscall number and the six argument registers saved at syscall entry.
/// x86_64 `struct pt_regs` is ABI: r10 at 56 ... orig_ax at 120.
pub struct Regs {
    pub nr: u32,
    pub args: [u64; 6],
}

#[inline(always)]
pub unsafe fn current_regs() -> Regs {
    let mut regs = Regs {
        nr: u32::MAX,
        args: [0; 6],
    };
    let task = bpf_get_current_task_btf();
    let pt = bpf_task_pt_regs(task) as u64;
    if pt == 0 {
        return regs;
    }
    // r10, r9, r8, ax, cx, dx, si, di, orig_ax
    let mut raw = [0u64; 9];
    if bpf_probe_read_kernel(
        raw.as_mut_ptr() as *mut c_void,
        72,
        (pt + 56) as *const c_void,
    ) != 0
    {
        return regs;
    }
    regs.nr = raw[8] as u32;
    regs.args = [raw[7], raw[6], raw[5], raw[0], raw[2], raw[1]];
    regs
}

/// The agent's own events are never sent.
#[inline(always)]
pub fn is_self() -> bool {
    let tgid = (unsafe { bpf_get_current_pid_tgid() } >> 32) as u32;
    tgid == setting!(agent_tgid)
}

/// `(tgid, tid)` of a task as seen in its own pid namespace, and that
/// namespace's inode number.
#[inline(always)]
unsafe fn ns_ids(task: u64) -> (u32, u32, u32) {
    let leader = ptr(task, off!(task_group_leader));
    let (tid, ns) = pid_in_own_ns(ptr(task, off!(task_thread_pid)));
    let (tgid, _) = pid_in_own_ns(ptr(leader, off!(task_thread_pid)));
    (tgid, tid, ns)
}

/// A `struct pid`'s number at its deepest level, and that level's namespace
/// inode. `struct upid` is `{ int nr; struct pid_namespace *ns; }`: 16 bytes.
#[inline(always)]
unsafe fn pid_in_own_ns(pid: u64) -> (u32, u32) {
    let level = read::<u32>(pid, off!(pid_level)).unwrap_or(0) & 31;
    let numbers = off!(pid_numbers);
    if numbers == MISSING {
        return (0, 0);
    }
    let upid = numbers + level * 16;
    let nr = read::<u32>(pid, upid).unwrap_or(0);
    let ns = ptr(pid, upid + off!(upid_ns));
    let inum = read::<u32>(ns, off!(pid_ns_ns).wrapping_add(off!(ns_common_inum))).unwrap_or(0);
    (nr, inum)
}

/// Fills `h` for the current task. `kind`, `nparams` and `size` are set by
/// the record builder.
#[inline(always)]
pub unsafe fn fill_header(h: *mut EventHeader, nr: u32, ret: i64) {
    let task = current_task();
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let (ns_tgid, ns_tid, pidns) = ns_ids(task);
    let cred = ptr(task, off!(task_cred));
    let parent = ptr(task, off!(task_real_parent));
    let nsproxy = ptr(task, off!(task_nsproxy));
    let mnt_ns = ptr(nsproxy, off!(nsproxy_mnt_ns));

    (*h).boot_ns = bpf_ktime_get_boot_ns();
    (*h).tgid = (pid_tgid >> 32) as u32;
    (*h).tid = pid_tgid as u32;
    (*h).ppid = read::<u32>(parent, off!(task_tgid)).unwrap_or(0);
    (*h).ns_tgid = ns_tgid;
    (*h).ns_tid = ns_tid;
    (*h).uid = uid_gid as u32;
    (*h).gid = (uid_gid >> 32) as u32;
    (*h).euid = read::<u32>(cred, off!(cred_euid)).unwrap_or(u32::MAX);
    (*h).egid = read::<u32>(cred, off!(cred_egid)).unwrap_or(u32::MAX);
    (*h).loginuid = read::<u32>(task, off!(task_loginuid)).unwrap_or(u32::MAX);
    (*h).sessionid = read::<u32>(task, off!(task_sessionid)).unwrap_or(u32::MAX);
    (*h).pidns = pidns;
    (*h).mntns =
        read::<u32>(mnt_ns, off!(mnt_ns_ns).wrapping_add(off!(ns_common_inum))).unwrap_or(0);
    (*h).syscall_nr = nr;
    (*h).cgroup_id = cgroup_id(task);
    (*h).cap_effective = read::<u64>(cred, off!(cred_cap_effective)).unwrap_or(0);
    (*h).cap_permitted = read::<u64>(cred, off!(cred_cap_permitted)).unwrap_or(0);
    (*h).ret = ret;
    let comm = &mut (*h).comm;
    if bpf_get_current_comm(comm.as_mut_ptr() as *mut c_void, COMM_LEN as u32) != 0 {
        *comm = [0; COMM_LEN];
    }
}

/// The `struct kernfs_node *` of the task's cgroup in the container
/// hierarchy: the v2 default hierarchy or one v1 subsystem (hybrid hosts,
/// where v2 holds nothing).
#[inline(always)]
pub unsafe fn cgroup_kn(task: u64) -> u64 {
    let css_set = ptr(task, off!(task_cgroups));
    let subsys = setting!(cgroup_subsys);
    let cgroup = if subsys == u32::MAX {
        ptr(css_set, off!(css_set_dfl_cgrp))
    } else {
        let css = ptr(
            css_set,
            off!(css_set_subsys).wrapping_add((subsys & 15) * 8),
        );
        ptr(css, off!(css_cgroup))
    };
    ptr(cgroup, off!(cgroup_kn))
}

#[inline(always)]
unsafe fn cgroup_id(task: u64) -> u64 {
    if setting!(cgroup_subsys) == u32::MAX {
        return bpf_get_current_cgroup_id();
    }
    read::<u64>(cgroup_kn(task), off!(kernfs_id)).unwrap_or(0)
}
