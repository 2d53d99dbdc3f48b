//! The wire records as the kernel object was compiled (its BTF) and as
//! Rust lays them out here must agree on every size and member offset.

use std::mem::{offset_of, size_of};

use mamori_common::{
    EventHeader, ExecBody, ExitBody, FileInfo, ForkBody, ParamHeader, SockTuple, SyscallBody,
};
use object::{Object, ObjectSection};

use super::{btf::Btf, loader::OBJECT};

fn object_btf() -> Btf {
    let file = object::File::parse(OBJECT).unwrap();
    let section = file.section_by_name(".BTF").expect("the object has BTF");
    Btf::parse(section.data().unwrap()).unwrap()
}

macro_rules! check {
    ($btf:expr, $ty:ident { $($field:ident),* $(,)? }) => {{
        let name = stringify!($ty);
        assert_eq!($btf.struct_size(name).unwrap() as usize, size_of::<$ty>(), "size of {name}");
        $(
            assert_eq!(
                $btf.member_offset(name, stringify!($field)).unwrap() as usize,
                offset_of!($ty, $field),
                "{name}.{}", stringify!($field)
            );
        )*
    }};
}

#[test]
fn rust_and_kernel_agree_on_every_wire_record() {
    let btf = object_btf();
    check!(
        btf,
        EventHeader {
            kind,
            nparams,
            size,
            boot_ns,
            tgid,
            tid,
            ppid,
            ns_tgid,
            ns_tid,
            uid,
            gid,
            euid,
            egid,
            loginuid,
            sessionid,
            pidns,
            mntns,
            syscall_nr,
            cgroup_id,
            cap_effective,
            cap_permitted,
            ret,
            comm,
        }
    );
    check!(btf, SyscallBody { args });
    check!(
        btf,
        ExecBody {
            sid,
            pgid,
            tty,
            exe_nlink,
            start_boot_ns,
            exe_flags,
            exe_uid,
            exe_gid,
            exe_ctime_ns,
            exe_mtime_ns
        }
    );
    check!(
        btf,
        ForkBody {
            child_tgid,
            child_tid,
            child_ns_tgid,
            child_ns_tid,
            clone_flags
        }
    );
    check!(
        btf,
        ExitBody {
            exit_code,
            group_dead,
            reaper_tgid,
            _pad
        }
    );
    check!(
        btf,
        ParamHeader {
            len,
            ty,
            flags,
            _pad
        }
    );
    check!(
        btf,
        SockTuple {
            family,
            sock_type,
            protocol,
            state,
            lport,
            rport,
            _pad,
            laddr,
            raddr
        }
    );
    check!(
        btf,
        FileInfo {
            ino,
            dev,
            mode,
            flags,
            fs_magic
        }
    );
}

#[test]
fn rodata_globals_match_too() {
    let btf = object_btf();
    assert_eq!(
        btf.struct_size("Settings").unwrap() as usize,
        size_of::<mamori_common::Settings>()
    );
    assert_eq!(
        btf.struct_size("KernelOffsets").unwrap() as usize,
        size_of::<mamori_common::KernelOffsets>()
    );
}
