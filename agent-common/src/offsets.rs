//! Kernel struct member offsets, resolved by userspace from the running
//! kernel's BTF (`/sys/kernel/btf/vmlinux`) and written into the eBPF
//! object's `.rodata` before load.
//!
//! Why not CO-RE relocations: Rust has no `preserve_access_index`, so the
//! object cannot carry field relocations. Resolving offsets at load time by
//! name gives the same portability: one object runs on any kernel with BTF.
//!
//! Invariant: a member that does not exist on this kernel has offset
//! [`MISSING`]; kernel code checks before using optional members, and the
//! loader refuses to start when a required one is missing.

/// Offset of a member the running kernel does not have.
pub const MISSING: u32 = u32::MAX;

macro_rules! kernel_offsets {
    ($( $(#[$doc:meta])* $field:ident = $ty:literal . $path:literal, $required:literal; )*) => {
        /// Byte offsets of the kernel struct members mamori reads.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct KernelOffsets {
            $( $(#[$doc])* pub $field: u32, )*
        }

        impl KernelOffsets {
            /// `(struct, member path, required)` for every field, in
            /// declaration order. A member path may name nested members
            /// (`d_name.name`); anonymous unions/structs are searched.
            pub const MEMBERS: &'static [(&'static str, &'static str, bool)] = &[
                $( ($ty, $path, $required), )*
            ];

            /// All members [`MISSING`].
            pub const fn missing() -> Self {
                Self { $( $field: MISSING, )* }
            }

            /// Sets the offset of the `index`-th member of [`Self::MEMBERS`].
            pub fn set(&mut self, index: usize, offset: u32) {
                let fields = [$( &mut self.$field, )*];
                if let Some(slot) = fields.into_iter().nth(index) {
                    *slot = offset;
                }
            }

            /// Offsets in [`Self::MEMBERS`] order.
            pub fn values(&self) -> [u32; Self::MEMBERS.len()] {
                [$( self.$field, )*]
            }
        }
    };
}

kernel_offsets! {
    task_real_parent = "task_struct"."real_parent", true;
    task_group_leader = "task_struct"."group_leader", true;
    task_tgid = "task_struct"."tgid", true;
    task_pid = "task_struct"."pid", true;
    task_cred = "task_struct"."cred", true;
    /// Needs `CONFIG_AUDIT`.
    task_loginuid = "task_struct"."loginuid", false;
    task_sessionid = "task_struct"."sessionid", false;
    task_thread_pid = "task_struct"."thread_pid", true;
    task_cgroups = "task_struct"."cgroups", false;
    task_mm = "task_struct"."mm", true;
    task_fs = "task_struct"."fs", true;
    task_files = "task_struct"."files", true;
    task_exit_code = "task_struct"."exit_code", true;
    task_signal = "task_struct"."signal", true;
    task_start_boottime = "task_struct"."start_boottime", true;
    /// x86 `thread_info.status`: `TS_COMPAT` (2) while a 32-bit syscall
    /// (ia32 emulation, `int 0x80`) runs.
    task_ti_status = "task_struct"."thread_info.status", true;
    /// `atomic_t`: live threads; 0 once the last one exits.
    signal_live = "signal_struct"."live", true;
    signal_tty = "signal_struct"."tty", true;
    /// `struct pid *pids[PIDTYPE_MAX]`.
    signal_pids = "signal_struct"."pids", true;
    tty_driver = "tty_struct"."driver", true;
    tty_index = "tty_struct"."index", true;
    tty_driver_major = "tty_driver"."major", true;
    tty_driver_minor_start = "tty_driver"."minor_start", true;
    cred_uid = "cred"."uid", true;
    cred_gid = "cred"."gid", true;
    cred_euid = "cred"."euid", true;
    cred_egid = "cred"."egid", true;
    cred_cap_permitted = "cred"."cap_permitted", true;
    cred_cap_effective = "cred"."cap_effective", true;
    pid_level = "pid"."level", true;
    pid_numbers = "pid"."numbers", true;
    upid_ns = "upid"."ns", true;
    pid_ns_ns = "pid_namespace"."ns", true;
    mnt_ns_ns = "mnt_namespace"."ns", true;
    ns_common_inum = "ns_common"."inum", true;
    task_nsproxy = "task_struct"."nsproxy", true;
    nsproxy_mnt_ns = "nsproxy"."mnt_ns", true;
    mm_arg_start = "mm_struct"."arg_start", true;
    mm_arg_end = "mm_struct"."arg_end", true;
    mm_env_start = "mm_struct"."env_start", true;
    mm_env_end = "mm_struct"."env_end", true;
    fs_root = "fs_struct"."root", true;
    fs_pwd = "fs_struct"."pwd", true;
    path_mnt = "path"."mnt", true;
    path_dentry = "path"."dentry", true;
    dentry_parent = "dentry"."d_parent", true;
    dentry_name_len = "dentry"."d_name.len", true;
    dentry_name_ptr = "dentry"."d_name.name", true;
    dentry_inode = "dentry"."d_inode", true;
    vfsmount_root = "vfsmount"."mnt_root", true;
    vfsmount_sb = "vfsmount"."mnt_sb", true;
    mount_mnt = "mount"."mnt", true;
    mount_parent = "mount"."mnt_parent", true;
    mount_mountpoint = "mount"."mnt_mountpoint", true;
    sb_dev = "super_block"."s_dev", true;
    sb_magic = "super_block"."s_magic", true;
    inode_mode = "inode"."i_mode", true;
    inode_ino = "inode"."i_ino", true;
    inode_nlink = "inode"."__i_nlink", false;
    inode_sb = "inode"."i_sb", true;
    inode_uid = "inode"."i_uid", false;
    inode_gid = "inode"."i_gid", false;
    /// Split into seconds and nanoseconds members in 6.11; a
    /// `timespec64` (`__i_ctime` in 6.6-6.10) before.
    inode_ctime_sec = "inode"."i_ctime_sec|__i_ctime.tv_sec|i_ctime.tv_sec", false;
    inode_ctime_nsec = "inode"."i_ctime_nsec|__i_ctime.tv_nsec|i_ctime.tv_nsec", false;
    inode_mtime_sec = "inode"."i_mtime_sec|__i_mtime.tv_sec|i_mtime.tv_sec", false;
    inode_mtime_nsec = "inode"."i_mtime_nsec|__i_mtime.tv_nsec|i_mtime.tv_nsec", false;
    /// overlayfs (optional: `CONFIG_OVERLAY_FS` built in, or its module's
    /// BTF): an overlay inode is the `vfs_inode` of a `struct ovl_inode`,
    /// whose `__upperdentry` is set once the file has an upper-layer copy.
    ovl_inode_vfs = "ovl_inode"."vfs_inode", false;
    ovl_inode_upper = "ovl_inode"."__upperdentry", false;
    file_path = "file"."f_path", true;
    file_inode = "file"."f_inode", true;
    file_flags = "file"."f_flags", true;
    file_private = "file"."private_data", true;
    /// What a pidfd or a `/proc/PID` directory fd names, and the ids of
    /// bpf objects behind fds (tamper reports: `evt.targets_agent`).
    proc_inode_pid = "proc_inode"."pid", false;
    /// pidfs keeps a pidfd's `struct pid` here (6.10+; 6.9 used the
    /// file's `private_data`).
    inode_private = "inode"."i_private", false;
    proc_inode_vfs = "proc_inode"."vfs_inode", false;
    bpf_map_id = "bpf_map"."id", false;
    bpf_link_id = "bpf_link"."id", false;
    bpf_prog_aux = "bpf_prog"."aux", false;
    bpf_prog_aux_id = "bpf_prog_aux"."id", false;
    files_fdt = "files_struct"."fdt", true;
    fdtable_max_fds = "fdtable"."max_fds", true;
    fdtable_fd = "fdtable"."fd", true;
    socket_sk = "socket"."sk", true;
    socket_type = "socket"."type", true;
    sock_common = "sock"."__sk_common", true;
    sock_protocol = "sock"."sk_protocol", false;
    skc_daddr = "sock_common"."skc_daddr", true;
    skc_rcv_saddr = "sock_common"."skc_rcv_saddr", true;
    skc_dport = "sock_common"."skc_dport", true;
    skc_num = "sock_common"."skc_num", true;
    skc_family = "sock_common"."skc_family", true;
    skc_state = "sock_common"."skc_state", true;
    skc_v6_daddr = "sock_common"."skc_v6_daddr", false;
    skc_v6_rcv_saddr = "sock_common"."skc_v6_rcv_saddr", false;
    css_set_subsys = "css_set"."subsys", false;
    css_set_dfl_cgrp = "css_set"."dfl_cgrp", false;
    css_cgroup = "cgroup_subsys_state"."cgroup", false;
    cgroup_kn = "cgroup"."kn", false;
    /// Renamed `__parent` in 6.15.
    kernfs_parent = "kernfs_node"."__parent|parent", false;
    kernfs_name = "kernfs_node"."name", false;
    kernfs_id = "kernfs_node"."id", false;
    bprm_file = "linux_binprm"."file", true;
    bprm_filename = "linux_binprm"."filename", true;
    bprm_interp = "linux_binprm"."interp", true;
    /// io_uring (optional: `CONFIG_IO_URING`). The request and the
    /// per-operation command each op's `prep` fills inside it.
    uring_req_opcode = "io_kiocb"."opcode", false;
    /// Where the per-operation command (`io_open`, `io_unlink`...) lives.
    uring_req_cmd = "io_kiocb"."cmd", false;
    uring_req_file = "io_kiocb"."file", false;
    uring_req_flags = "io_kiocb"."flags", false;
    /// The descriptor named in the SQE (the file is looked up at issue).
    uring_req_fd = "io_kiocb"."cqe.fd", false;
    uring_open_dfd = "io_open"."dfd", false;
    uring_open_slot = "io_open"."file_slot", false;
    uring_open_name = "io_open"."filename", false;
    uring_open_how = "io_open"."how", false;
    uring_unlink_dfd = "io_unlink"."dfd", false;
    uring_unlink_flags = "io_unlink"."flags", false;
    uring_unlink_name = "io_unlink"."filename", false;
    uring_rename_old_dfd = "io_rename"."old_dfd", false;
    uring_rename_new_dfd = "io_rename"."new_dfd", false;
    uring_rename_old = "io_rename"."oldpath", false;
    uring_rename_new = "io_rename"."newpath", false;
    uring_rename_flags = "io_rename"."flags", false;
    uring_mkdir_dfd = "io_mkdir"."dfd", false;
    uring_mkdir_mode = "io_mkdir"."mode", false;
    uring_mkdir_name = "io_mkdir"."filename", false;
    /// `io_link` serves linkat and symlinkat.
    uring_link_old_dfd = "io_link"."old_dfd", false;
    uring_link_new_dfd = "io_link"."new_dfd", false;
    uring_link_old = "io_link"."oldpath", false;
    uring_link_new = "io_link"."newpath", false;
    uring_link_flags = "io_link"."flags", false;
    uring_connect_addr = "io_connect"."addr", false;
    uring_connect_len = "io_connect"."addr_len", false;
    uring_socket_domain = "io_socket"."domain", false;
    uring_socket_type = "io_socket"."type", false;
    uring_socket_protocol = "io_socket"."protocol", false;
    uring_socket_slot = "io_socket"."file_slot", false;
    uring_accept_flags = "io_accept"."flags", false;
    uring_accept_slot = "io_accept"."file_slot", false;
    uring_close_fd = "io_close"."fd", false;
    /// The kernel's copy of a path (`struct filename`).
    filename_name = "filename"."name", false;
}

impl Default for KernelOffsets {
    fn default() -> Self {
        Self::missing()
    }
}
