//! Round trips: records built the way the kernel side builds them
//! (`agent-ebpf/src/record.rs`) decode to the events they describe.

use super::*;

/// Builds records byte by byte, as the kernel does.
struct Wire {
    bytes: Vec<u8>,
    nparams: u16,
}

fn as_bytes<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: T is a padding-free #[repr(C)] wire struct.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

impl Wire {
    fn new<B: Copy>(header: EventHeader, body: &B) -> Self {
        let mut bytes = as_bytes(&header);
        bytes.extend(as_bytes(body));
        Self { bytes, nparams: 0 }
    }

    fn param(mut self, ty: ParamType, flags: u8, data: &[u8]) -> Self {
        let pad = self.bytes.len().next_multiple_of(PARAM_ALIGN) - self.bytes.len();
        self.bytes.extend(std::iter::repeat_n(0xAA, pad)); // padding is garbage in the kernel
        let ph = ParamHeader {
            len: data.len() as u16,
            ty: ty as u8,
            flags,
            _pad: 0,
        };
        self.bytes.extend(as_bytes(&ph));
        self.bytes.extend_from_slice(data);
        self.nparams += 1;
        self
    }

    fn finish(mut self) -> Vec<u8> {
        let size = self.bytes.len() as u32;
        self.bytes[4..8].copy_from_slice(&size.to_le_bytes());
        self.bytes[2..4].copy_from_slice(&self.nparams.to_le_bytes());
        self.bytes
    }
}

fn header(kind: EventKind, nr: u32, ret: i64) -> EventHeader {
    let mut comm = [0u8; 16];
    comm[..4].copy_from_slice(b"bash");
    EventHeader {
        kind: kind as u16,
        nparams: 0,
        size: 0,
        boot_ns: 1_000,
        tgid: 100,
        tid: 101,
        ppid: 1,
        ns_tgid: 7,
        ns_tid: 8,
        uid: 1000,
        gid: 1001,
        euid: 0,
        egid: 0,
        loginuid: u32::MAX,
        sessionid: 3,
        pidns: 4026531836,
        mntns: 4026531841,
        syscall_nr: nr,
        cgroup_id: 42,
        cap_effective: 0x1ff,
        cap_permitted: 0x3ff,
        ret,
        comm,
    }
}

fn clock() -> Clock {
    Clock::with_offset(1_700_000_000_000_000_000)
}

#[test]
fn syscall_record_round_trips_with_every_param_type() {
    let file = FileInfo {
        ino: 12,
        dev: 0x800001,
        mode: 0o100644,
        flags: 0o2,
        fs_magic: 0xef53,
    };
    let sock = SockTuple {
        family: 2,
        sock_type: 1,
        protocol: 6,
        state: 1,
        lport: 40000,
        rport: 8080,
        _pad: 0,
        laddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        raddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    };
    let body = SyscallBody {
        args: [1, 2, 3, 4, 5, 6],
    };
    let bytes = Wire::new(header(EventKind::Syscall, syscalls::OPENAT, 3), &body)
        .param(ParamType::UserStr, 0, b"../etc/passwd")
        .param(ParamType::KernelPath, 0, b"/etc/passwd")
        .param(ParamType::FileInfo, 0, &as_bytes(&file))
        .param(ParamType::SockTuple, 0, &as_bytes(&sock))
        .param(ParamType::UserBytes, 0, &[2, 0, 0x1f, 0x90])
        .param(ParamType::KernelStr, PARAM_TRUNCATED, b"abc")
        .param(ParamType::StrList, 0, b"a\0b c\0")
        .param(ParamType::UserStr, PARAM_ABSENT, b"")
        .param(ParamType::UserStr, PARAM_FAULT, b"")
        .param(ParamType::KernelPath, PARAM_PARTIAL_PATH, b"/memfd:x")
        .finish();
    let ev = decode(&bytes, &clock()).unwrap();
    assert_eq!(ev.ty.name(), "openat");
    assert_eq!(ev.time_ns, 1_700_000_000_000_001_000);
    assert_eq!(ev.ret, 3);
    assert_eq!(ev.task.comm, Text::from("bash"));
    assert_eq!(ev.task.tgid, 100);
    assert_eq!(ev.task.ns_tid, 8);
    assert_eq!(ev.task.loginuid, u32::MAX);
    assert_eq!(ev.task.cgroup_id, 42);
    assert_eq!(ev.args(), Some(&[1, 2, 3, 4, 5, 6]));
    let p = ev.params();
    assert_eq!(p[0], Param::Str(Text::from("../etc/passwd")));
    assert_eq!(
        p[1],
        Param::Path {
            path: Text::from("/etc/passwd"),
            partial: false
        }
    );
    assert_eq!(p[2], Param::File(file));
    assert_eq!(p[3], Param::Sock(sock));
    assert_eq!(p[4], Param::Bytes(vec![2, 0, 0x1f, 0x90]));
    assert_eq!(
        p[5],
        Param::KernelStr(Text {
            bytes: b"abc".to_vec(),
            truncated: true
        })
    );
    assert_eq!(
        p[6],
        Param::List(vec![Text::from("a"), Text::from("b c")], false)
    );
    assert_eq!(p[7], Param::Absent);
    assert_eq!(p[8], Param::Fault);
    assert!(matches!(p[9], Param::Path { partial: true, .. }));
}

/// The path extras keep their kind when they have no value: the agent
/// pairs them with the strings by position.
#[test]
fn path_extras_decode_with_their_kind_even_when_empty() {
    let body = SyscallBody { args: [0; 6] };
    let bytes = Wire::new(header(EventKind::Syscall, syscalls::RENAMEAT2, 0), &body)
        .param(ParamType::UserStr, 0, b"a")
        .param(ParamType::UserStr, 0, b"/b")
        .param(ParamType::UserStrAtExit, 0, b"a")
        .param(ParamType::UserStrAtExit, PARAM_FAULT, b"")
        .param(ParamType::BaseDir, 0, b"/srv")
        .param(ParamType::BaseDir, PARAM_ABSENT, b"")
        .finish();
    let ev = decode(&bytes, &clock()).unwrap();
    let p = ev.params();
    assert_eq!(p[2], Param::AtExit(Some(Text::from("a"))));
    assert_eq!(p[3], Param::AtExit(None));
    assert_eq!(
        p[4],
        Param::BaseDir {
            path: Some(Text::from("/srv")),
            partial: false
        }
    );
    assert_eq!(
        p[5],
        Param::BaseDir {
            path: None,
            partial: false
        }
    );
    assert_eq!(ev.changed_path_arg(), Some(None), "unreadable at exit");
}

/// A cut environment gets the code-loading variables the kernel scanned
/// past the cut in place of the captured ones (one cut in its name
/// included), in their order; other loader variables stay as captured.
#[test]
fn loader_variables_past_the_cut_replace_the_captured_ones() {
    let body = ExecBody::default();
    let wire = |env: &[u8], loader: Option<(u8, &[u8])>| {
        let mut w = Wire::new(header(EventKind::Exec, syscalls::EXECVE, 0), &body)
            .param(ParamType::KernelPath, 0, b"/usr/bin/true")
            .param(ParamType::FileInfo, 0, &as_bytes(&FileInfo::default()))
            .param(ParamType::KernelStr, 0, b"/usr/bin/true")
            .param(ParamType::KernelStr, 0, b"/usr/bin/true")
            .param(ParamType::StrList, 0, b"true\0")
            .param(ParamType::StrList, PARAM_TRUNCATED, env)
            .param(ParamType::KernelPath, 0, b"/")
            .param(ParamType::KernelStr, 0, b"a")
            .param(ParamType::KernelStr, 0, b"b");
        if let Some((flags, data)) = loader {
            w = w.param(ParamType::StrList, flags, data);
        }
        let ev = decode(&w.finish(), &clock()).unwrap();
        let Detail::Exec(x) = ev.detail else {
            panic!("not an exec")
        };
        let env: Vec<String> = x
            .env
            .iter()
            .map(|t| t.bytes.escape_ascii().to_string())
            .collect();
        (env, x.loader_env_truncated)
    };
    let (env, cut) = wire(
        b"LD_PRELOAD=/usr/lib/a.so\0LD_LIBRARY_PATH=/opt\0A=1\0LD_PRE",
        Some((0, b"LD_PRELOAD=/usr/lib/a.so\0LD_PRELOAD=/tmp/b.so\0")),
    );
    assert_eq!(
        env,
        [
            "LD_LIBRARY_PATH=/opt",
            "A=1",
            "LD_PRELOAD=/usr/lib/a.so",
            "LD_PRELOAD=/tmp/b.so"
        ],
        "only the code-loading variables are scanned, so only they are replaced"
    );
    assert!(!cut);
    let (env, cut) = wire(b"A=1\0B", Some((PARAM_TRUNCATED, b"LD_PRELOAD=::\0")));
    assert_eq!(env, ["A=1", "B", "LD_PRELOAD=::"]);
    assert!(cut, "the kernel could not read them all");
    let (_, cut) = wire(b"A=1", None);
    assert!(cut, "a record too full to carry them");
}

#[test]
fn exec_record_round_trips() {
    let body = ExecBody {
        sid: 10,
        pgid: 11,
        tty: 136 << 20 | 2,
        exe_nlink: 1,
        start_boot_ns: 999,
        exe_flags: EXE_READ | EXE_UPPER,
        exe_uid: 1000,
        exe_gid: 100,
        _pad: 0,
        exe_ctime_ns: 7,
        exe_mtime_ns: 6,
    };
    let file = FileInfo {
        ino: 5,
        mode: 0o100755,
        fs_magic: OVERLAYFS_MAGIC,
        ..Default::default()
    };
    let bytes = Wire::new(header(EventKind::Exec, syscalls::EXECVEAT, 0), &body)
        .param(ParamType::KernelPath, 0, b"/usr/bin/python3.11")
        .param(ParamType::FileInfo, 0, &as_bytes(&file))
        .param(ParamType::KernelStr, 0, b"./x.py")
        .param(ParamType::KernelStr, 0, b"/usr/bin/python3")
        .param(ParamType::StrList, 0, b"python3\0./x.py\0\xff\n\0")
        .param(ParamType::StrList, PARAM_TRUNCATED, b"A=1\0B=2")
        .param(ParamType::KernelPath, 0, b"/home/u")
        .param(ParamType::KernelStr, 0, b"libpod-abc.scope")
        .param(ParamType::KernelStr, 0, b"machine.slice")
        .finish();
    let ev = decode(&bytes, &clock()).unwrap();
    assert_eq!(ev.ty.name(), "execveat");
    let Detail::Exec(x) = &ev.detail else {
        panic!("not an exec: {ev:?}")
    };
    assert_eq!(x.exe_path, Some(Text::from("/usr/bin/python3.11")));
    assert_eq!(x.exe_file, Some(file));
    assert_eq!(x.filename, Some(Text::from("./x.py")));
    assert_eq!(x.interp, Some(Text::from("/usr/bin/python3")));
    assert_eq!(x.args.len(), 3);
    assert_eq!(
        x.args[2].bytes, b"\xff\n",
        "hostile bytes survive unchanged"
    );
    assert!(!x.args_truncated);
    assert!(x.env_truncated);
    let env: Vec<&[u8]> = x.env.iter().map(|t| t.bytes.as_slice()).collect();
    assert_eq!(env, [b"A=1".as_slice(), b"B=2"]);
    assert!(x.env[1].truncated, "the cut item says so");
    assert!(
        x.loader_env_truncated,
        "a cut environment without its loader variables sent"
    );
    assert_eq!(x.cwd, Some(Text::from("/home/u")));
    assert_eq!(x.cgroup_leaf, Some(Text::from("libpod-abc.scope")));
    assert_eq!(x.cgroup_parent, Some(Text::from("machine.slice")));
    assert_eq!(
        (x.sid, x.pgid, x.tty, x.exe_nlink, x.start_boot_ns),
        (10, 11, 136 << 20 | 2, 1, 999)
    );
    assert_eq!(
        x.exe_facts,
        Some(ExeFacts {
            overlay: true,
            upper: true,
            uid: 1000,
            gid: 100,
            mode: 0o100755,
            ctime_ns: 7,
            mtime_ns: 6,
        })
    );
}

#[test]
fn exec_record_with_missing_params_decodes_as_absent() {
    let bytes = Wire::new(
        header(EventKind::Exec, syscalls::EXECVE, 0),
        &ExecBody::default(),
    )
    .param(ParamType::KernelPath, 0, b"/bin/true")
    .finish();
    let ev = decode(&bytes, &clock()).unwrap();
    let Detail::Exec(x) = &ev.detail else {
        panic!()
    };
    assert_eq!(x.exe_path, Some(Text::from("/bin/true")));
    assert_eq!(x.cwd, None);
    assert!(x.args.is_empty());
}

#[test]
fn fork_and_exit_records_round_trip() {
    let body = ForkBody {
        child_tgid: 200,
        child_tid: 200,
        child_ns_tgid: 1,
        child_ns_tid: 1,
        clone_flags: 0x11,
    };
    let ev = decode(
        &Wire::new(header(EventKind::Fork, syscalls::CLONE3, 200), &body).finish(),
        &clock(),
    )
    .unwrap();
    assert_eq!(ev.ty.name(), "clone3");
    assert_eq!(
        ev.detail,
        Detail::Fork {
            child_tgid: 200,
            child_tid: 200,
            child_ns_tgid: 1,
            child_ns_tid: 1,
            clone_flags: 0x11
        }
    );
    let body = ExitBody {
        exit_code: 9,
        group_dead: 1,
        reaper_tgid: 0,
        _pad: 0,
    };
    let ev = decode(
        &Wire::new(header(EventKind::Exit, u32::MAX, 0), &body).finish(),
        &clock(),
    )
    .unwrap();
    assert_eq!(ev.ty.name(), "procexit");
    assert_eq!(
        ev.detail,
        Detail::Exit {
            code: 9,
            group_dead: true
        }
    );
}

#[test]
fn malformed_records_are_errors_not_panics() {
    let good = Wire::new(
        header(EventKind::Syscall, syscalls::OPEN, 0),
        &SyscallBody::default(),
    )
    .param(ParamType::UserStr, 0, b"/tmp/x")
    .finish();
    assert!(matches!(
        decode(&good[..10], &clock()),
        Err(Error::Short(10))
    ));
    assert!(matches!(
        decode(&good[..good.len() - 1], &clock()),
        Err(Error::SizeMismatch { .. })
    ));
    let mut lying = good.clone();
    lying[2] = 5; // five params announced, one present
    assert!(matches!(
        decode(&lying, &clock()),
        Err(Error::ParamOverrun { index: 1 })
    ));
    let mut kind = good.clone();
    kind[0] = 99;
    assert!(matches!(
        decode(&kind, &clock()),
        Err(Error::UnknownKind(99))
    ));
    let mut nr = good.clone();
    let off = std::mem::offset_of!(EventHeader, syscall_nr);
    nr[off..off + 4].copy_from_slice(&9999u32.to_le_bytes());
    assert!(matches!(
        decode(&nr, &clock()),
        Err(Error::UnknownSyscall(9999))
    ));
    // Every prefix and every single-byte corruption decodes or errors.
    for n in 0..good.len() {
        let _ = decode(&good[..n], &clock());
    }
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0xff;
        let _ = decode(&b, &clock());
    }
}

/// A kernel id is four bytes; fewer are a broken record, not a zero.
#[test]
fn kernel_ids_decode_and_a_short_one_is_an_error() {
    let body = SyscallBody { args: [0; 6] };
    let bytes = Wire::new(header(EventKind::Syscall, syscalls::PIDFD_GETFD, 4), &body)
        .param(ParamType::KernelId, 0, &4242u32.to_le_bytes())
        .finish();
    let ev = decode(&bytes, &clock()).unwrap();
    assert_eq!(ev.params(), &[Param::Id(4242)]);
    assert_eq!(ev.kernel_id(), Some(4242));
    let short = Wire::new(header(EventKind::Syscall, syscalls::PIDFD_GETFD, 4), &body)
        .param(ParamType::KernelId, 0, &[1, 2])
        .finish();
    assert!(decode(&short, &clock()).is_err());
}

#[test]
fn a_failed_connect_has_the_peer_it_asked_for() {
    // AF_INET 198.51.100.1:443; the kernel cleared the port on failure.
    let addr = vec![2, 0, 1, 187, 198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    let tuple = |rport: u16, raddr: [u8; 4]| {
        let mut t = SockTuple {
            family: 2,
            rport,
            ..SockTuple::default()
        };
        t.raddr[..4].copy_from_slice(&raddr);
        t
    };
    let mut params = vec![Param::Bytes(addr.clone()), Param::Sock(tuple(0, [0; 4]))];
    complete_connect(&mut params);
    assert!(matches!(&params[1], Param::Sock(t) if *t == tuple(443, [198, 51, 100, 1])));
    // A connected socket's own tuple stands.
    let mut params = vec![Param::Bytes(addr), Param::Sock(tuple(80, [10, 0, 0, 1]))];
    complete_connect(&mut params);
    assert!(matches!(&params[1], Param::Sock(t) if *t == tuple(80, [10, 0, 0, 1])));
}
