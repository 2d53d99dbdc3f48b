//! Reading kernel memory through the load-time offsets, and the fields of
//! the current task that every record carries.

use aya_ebpf::{
    cty::c_void,
    helpers::generated::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_task_btf, bpf_get_current_uid_gid, bpf_ktime_get_boot_ns,
        bpf_probe_read_kernel, bpf_probe_read_user, bpf_task_pt_regs,
    },
};
use mamori_common::{COMM_LEN, EventHeader, offsets::MISSING};

use crate::maps::{GENERATION, TASK_CACHE, off, setting};

/// Reads a `T` at `base + offset` of kernel memory; `None` when the member is
/// missing on this kernel, the base is null or the read faults.
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
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
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
#[inline(always)]
pub unsafe fn ptr(base: u64, offset: u32) -> u64 {
    read::<u64>(base, offset).unwrap_or(0)
}

/// Reads a `T` from user memory of the current task.
///
/// # Safety
///
/// Only from a BPF program running on behalf of the task whose user memory
/// `addr` points into; `bpf_probe_read_user` fails on a bad address (the value
/// is marked absent) instead of faulting.
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

/// The current task (`struct task_struct *`), BTF-typed: members the
/// verifier can check against the kernel's BTF are loaded directly
/// ([`load`]); [`read`] works on it too.
#[inline(always)]
pub fn current_task() -> u64 {
    unsafe { bpf_get_current_task_btf() as u64 }
}

/// Loads the member at `base + offset` of a BTF-typed kernel pointer (the
/// current task, or a struct pointer loaded from one with `load`): one
/// instruction, checked by the verifier against the kernel's BTF, where
/// [`read`] costs a helper call. `offset` must be a load-time constant of
/// a member every supported kernel has; a fault reads as 0.
///
/// # Safety
///
/// Only from a BPF program. `base` must be a BTF-typed kernel pointer the
/// verifier tracks (the current task, or a struct pointer loaded from one with
/// `load`) and `offset` a load-time constant (frozen `.rodata`) of a member of
/// that type: the verifier rejects the program otherwise, so a wrong call
/// fails the load, never the kernel.
#[inline(always)]
pub unsafe fn load<T: Copy>(base: u64, offset: u32) -> T {
    core::ptr::read_volatile((base as *const u8).add(offset as usize) as *const T)
}

/// Syscall number and the six argument registers saved at syscall entry.
/// x86_64 `struct pt_regs` is ABI: r10 at 56 ... orig_ax at 120.
pub struct Regs {
    pub nr: u32,
    pub args: [u64; 6],
}

/// # Safety
///
/// Only from a BPF program attached where the current task has saved user
/// registers (a syscall exit tracepoint).
#[inline(always)]
pub unsafe fn current_regs() -> Regs {
    let task = bpf_get_current_task_btf();
    // A BTF-typed `struct pt_regs *`: the verifier lets its members be
    // loaded directly (each a single faulting-safe load), far cheaper
    // than a `bpf_probe_read_kernel` call.
    let pt = bpf_task_pt_regs(task) as *const u64;
    let reg = |slot: usize| core::ptr::read_volatile(pt.add(slot));
    // di, si, dx, r10, r8, r9 and orig_ax, by their slots in the frame.
    Regs {
        nr: reg(15) as u32,
        args: [reg(14), reg(13), reg(12), reg(7), reg(9), reg(8)],
    }
}

/// The agent's own events are never sent.
#[inline(always)]
pub fn is_self() -> bool {
    let tgid = (unsafe { bpf_get_current_pid_tgid() } >> 32) as u32;
    tgid == setting!(agent_tgid)
}

/// `(tgid, tid)` of a task as seen in its own pid namespace, and that
/// namespace's inode number.
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
unsafe fn ns_ids(task: u64) -> (u32, u32, u32) {
    let leader = ptr(task, off!(task_group_leader));
    let (tid, ns) = pid_in_own_ns(ptr(task, off!(task_thread_pid)));
    let (tgid, _) = pid_in_own_ns(ptr(leader, off!(task_thread_pid)));
    (tgid, tid, ns)
}

/// A `struct pid`'s number at its deepest level, and that level's namespace
/// inode. `struct upid` is `{ int nr; struct pid_namespace *ns; }`: 16 bytes.
///
/// # Safety
///
/// Only from a BPF program. The `u64` addresses are kernel addresses or 0:
/// every read of them goes through `bpf_probe_read_kernel`, which fails on a
/// bad address (the value reads as absent) instead of faulting.
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

/// Header fields that rarely change for a thread, cached per tid so an
/// event costs one map lookup instead of a dozen kernel reads.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TaskInfo {
    pub cgroup_id: u64,
    pub ppid: u32,
    pub ns_tgid: u32,
    pub ns_tid: u32,
    pub pidns: u32,
    pub mntns: u32,
    pub loginuid: u32,
    pub sessionid: u32,
    pub generation: u32,
}

/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
unsafe fn task_info(task: u64, generation: u32) -> TaskInfo {
    let (ns_tgid, ns_tid, pidns) = ns_ids(task);
    let parent = ptr(task, off!(task_real_parent));
    let nsproxy = ptr(task, off!(task_nsproxy));
    let mnt_ns = ptr(nsproxy, off!(nsproxy_mnt_ns));
    // loginuid and sessionid sit side by side in task_struct.
    let (lo, so) = (off!(task_loginuid), off!(task_sessionid));
    let (loginuid, sessionid) = if so == lo.wrapping_add(4) {
        let v = read::<[u32; 2]>(task, lo).unwrap_or([u32::MAX; 2]);
        (v[0], v[1])
    } else {
        (
            read::<u32>(task, lo).unwrap_or(u32::MAX),
            read::<u32>(task, so).unwrap_or(u32::MAX),
        )
    };
    TaskInfo {
        cgroup_id: cgroup_id(task),
        ppid: read::<u32>(parent, off!(task_tgid)).unwrap_or(0),
        ns_tgid,
        ns_tid,
        pidns,
        mntns: read::<u32>(mnt_ns, off!(mnt_ns_ns).wrapping_add(off!(ns_common_inum))).unwrap_or(0),
        loginuid,
        sessionid,
        generation,
    }
}

/// Fills `h` for the current task. `kind`, `nparams` and `size` are set by
/// the record builder. `refresh` recomputes the cached fields (exec,
/// namespace changes).
///
/// # Safety
///
/// Only from a BPF program; `h` points to the header of the record this CPU is
/// building in its per-CPU scratch area.
#[inline(always)]
pub unsafe fn fill_header(h: *mut EventHeader, nr: u32, ret: i64, refresh: bool) {
    let task = current_task();
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let tid = pid_tgid as u32;
    let generation = match GENERATION.get(0) {
        Some(g) => *g,
        None => 0,
    };
    let cached = if refresh {
        None
    } else {
        match TASK_CACHE.get_ptr(&tid) {
            Some(c) if (*c).generation == generation => Some(*c),
            _ => None,
        }
    };
    let info = match cached {
        Some(c) => c,
        None => {
            let c = task_info(task, generation);
            let _ = TASK_CACHE.insert(&tid, &c, 0);
            c
        }
    };
    // The task and its cred are BTF-typed: direct loads.
    let cred = load::<u64>(task, off!(task_cred));
    let (euid, egid, cap_permitted, cap_effective) = if cred == 0 {
        (u32::MAX, u32::MAX, 0, 0)
    } else {
        (
            load::<u32>(cred, off!(cred_euid)),
            load::<u32>(cred, off!(cred_egid)),
            load::<u64>(cred, off!(cred_cap_permitted)),
            load::<u64>(cred, off!(cred_cap_effective)),
        )
    };

    (*h).boot_ns = bpf_ktime_get_boot_ns();
    (*h).tgid = (pid_tgid >> 32) as u32;
    (*h).tid = tid;
    (*h).ppid = info.ppid;
    (*h).ns_tgid = info.ns_tgid;
    (*h).ns_tid = info.ns_tid;
    (*h).uid = uid_gid as u32;
    (*h).gid = (uid_gid >> 32) as u32;
    (*h).euid = euid;
    (*h).egid = egid;
    (*h).loginuid = info.loginuid;
    (*h).sessionid = info.sessionid;
    (*h).pidns = info.pidns;
    (*h).mntns = info.mntns;
    (*h).syscall_nr = nr;
    (*h).cgroup_id = info.cgroup_id;
    (*h).cap_effective = cap_effective;
    (*h).cap_permitted = cap_permitted;
    (*h).ret = ret;
    let comm = &mut (*h).comm;
    if bpf_get_current_comm(comm.as_mut_ptr() as *mut c_void, COMM_LEN as u32) != 0 {
        *comm = [0; COMM_LEN];
    }
}

/// Forgets a thread's cached fields (it exited).
///
/// # Safety
///
/// Only from a BPF program, for the current thread (it exits).
#[inline(always)]
pub unsafe fn forget_task() {
    let tid = bpf_get_current_pid_tgid() as u32;
    let _ = TASK_CACHE.remove(&tid);
}

/// `thread_info.status` bit of a running 32-bit syscall (x86).
const TS_COMPAT: u32 = 2;

/// Whether the current syscall is a 32-bit (ia32) one: one direct load
/// from the BTF-typed task.
///
/// # Safety
///
/// Only from a BPF program running in a syscall's context.
#[inline(always)]
pub unsafe fn in_compat_syscall() -> bool {
    let status: u32 = load(current_task(), off!(task_ti_status));
    status & TS_COMPAT != 0
}

/// Forgets that the current process used 32-bit syscalls (it execs a new
/// image or exits), so its next use, or a new process with its tgid, is
/// reported.
///
/// # Safety
///
/// Only from a BPF program, for the current process.
#[inline(always)]
pub unsafe fn forget_compat() {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let _ = crate::maps::COMPAT_SEEN.remove(&tgid);
}

/// The `struct kernfs_node *` of the task's cgroup in the container
/// hierarchy: the v2 default hierarchy or one v1 subsystem (hybrid hosts,
/// where v2 holds nothing).
///
/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
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

/// # Safety
///
/// Only from a BPF program. `task` is the current `task_struct` (BTF-typed,
/// from `bpf_get_current_task_btf`): its members are loaded directly, which
/// the verifier checks against the kernel's BTF; the other addresses are read
/// through `bpf_probe_read_kernel`, which fails instead of faulting.
#[inline(always)]
unsafe fn cgroup_id(task: u64) -> u64 {
    if setting!(cgroup_subsys) == u32::MAX {
        return bpf_get_current_cgroup_id();
    }
    read::<u64>(cgroup_kn(task), off!(kernfs_id)).unwrap_or(0)
}
