//! The real programs in the running kernel, real syscalls from a child
//! process, and the decoded events they must produce.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::{
    fs,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::PathBuf,
};

use mamori::event::{Detail, Event, Param};
use mamori_e2e::harness;

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mamori-e2e-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn is(ev: &Event, pid: u32, ty: &str) -> bool {
    ev.task.tgid == pid && ev.ty.name() == ty
}

fn str_param(ev: &Event, i: usize) -> Vec<u8> {
    ev.params()[i]
        .text()
        .unwrap_or_else(|| panic!("param {i} of {ev:?}"))
        .bytes
        .clone()
}

#[test]
fn open_reports_the_raw_path_and_the_file_the_kernel_opened() {
    let h = harness();
    let dir = scratch_dir("open");
    let target = dir.join("target.txt");
    fs::write(&target, "x").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let acted = h.act(&["open", link.to_str().unwrap()]);
    let ev = h.wait_for("openat of the symlink", |e| {
        is(e, acted.pid, "openat")
            && e.params()
                .first()
                .and_then(Param::text)
                .is_some_and(|t| t.bytes == link.as_os_str().as_bytes())
    });
    assert!(ev.ret >= 0, "{ev:?}");
    assert_eq!(
        str_param(&ev, 1),
        target.as_os_str().as_bytes(),
        "kernel view follows the symlink"
    );
    let Param::File(info) = &ev.params()[2] else {
        panic!("{ev:?}")
    };
    let meta = fs::metadata(&target).unwrap();
    assert_eq!(info.ino, meta.ino());
    assert_eq!(info.mode & 0o170000, 0o100000, "regular file");
    assert_eq!(ev.task.comm.bytes, b"mamori-actor");
    assert_eq!(ev.task.ppid, std::process::id());
    assert_eq!(ev.task.uid, 0);
}

#[test]
fn relative_openat_is_resolved_against_its_directory_fd() {
    let h = harness();
    let dir = scratch_dir("openat");
    fs::write(dir.join("inner"), "x").unwrap();
    let acted = h.act(&["open-at", dir.to_str().unwrap(), "inner"]);
    let ev = h.wait_for("relative openat", |e| {
        is(e, acted.pid, "openat")
            && e.params()
                .first()
                .and_then(Param::text)
                .is_some_and(|t| t.bytes == b"inner")
    });
    assert_eq!(str_param(&ev, 1), dir.join("inner").as_os_str().as_bytes());
}

#[test]
fn hostile_file_names_arrive_byte_for_byte() {
    // Newline, invalid UTF-8, an escape sequence and a quote: the actor takes
    // raw OS arguments, so the name goes to the kernel as bytes.
    let h = harness();
    let dir = scratch_dir("bytes");
    let mut name = dir.as_os_str().as_bytes().to_vec();
    name.extend_from_slice(b"/evil\nname\xff\x1b[31m\"");
    let path = std::ffi::OsStr::from_bytes(&name).to_owned();
    let child = std::process::Command::new(mamori_e2e::sibling_binary("mamori-actor"))
        .arg("create")
        .arg(&path)
        .status()
        .unwrap();
    assert!(child.success());
    let ev = h.wait_for("create of a hostile name", |e| {
        e.ty.name() == "openat"
            && e.params()
                .first()
                .and_then(Param::text)
                .is_some_and(|t| t.bytes == name)
    });
    assert_eq!(str_param(&ev, 1), name, "resolved path keeps every byte");
}

#[test]
fn exec_is_reported_with_the_kernels_view_of_the_binary() {
    let h = harness();
    let acted = h.act(&["exec", "/bin/true", "alpha", "beta gamma"]);
    let ev = h.wait_for("exec of /bin/true", |e| {
        is(e, acted.pid, "execve") && matches!(&e.detail, Detail::Exec(x) if x.filename.as_ref().is_some_and(|f| f.bytes == b"/bin/true"))
    });
    let Detail::Exec(x) = &ev.detail else {
        panic!("{ev:?}")
    };
    let real = fs::canonicalize("/bin/true").unwrap();
    assert_eq!(
        x.exe_path.as_ref().unwrap().bytes,
        real.as_os_str().as_bytes()
    );
    assert_eq!(x.filename.as_ref().unwrap().bytes, b"/bin/true");
    let args: Vec<&[u8]> = x.args.iter().map(|a| a.bytes.as_slice()).collect();
    assert_eq!(args, [&b"/bin/true"[..], b"alpha", b"beta gamma"]);
    assert!(
        x.env.iter().any(|e| e.bytes == b"MAMORI_TEST=1"),
        "{:?}",
        x.env
    );
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(x.cwd.as_ref().unwrap().bytes, cwd.as_os_str().as_bytes());
    assert_eq!(ev.task.comm.bytes, b"true");
    assert_eq!(ev.task.ppid, std::process::id());
    assert!(x.exe_nlink >= 1);
    assert!(x.start_boot_ns > 0);
    // The fork that made the actor came first, from this test process's
    // perspective reported for the parent (us) and so filtered: the exit is not.
    h.wait_for("exit of the exec'ed true", |e| is(e, acted.pid, "procexit"));
}

#[test]
fn failed_exec_is_reported_with_the_errno() {
    let h = harness();
    let acted = h.act(&["exec", "/nonexistent/mamori-binary"]);
    let ev = h.wait_for("failed execve", |e| is(e, acted.pid, "execve") && e.ret < 0);
    assert_eq!(ev.ret, -(libc::ENOENT as i64));
    assert_eq!(str_param(&ev, 0), b"/nonexistent/mamori-binary");
}

#[test]
fn fileless_exec_from_memfd_is_visible() {
    let h = harness();
    let acted = h.act(&["memfd-exec", "/bin/true"]);
    let created = h.wait_for("memfd_create", |e| is(e, acted.pid, "memfd_create"));
    assert_eq!(str_param(&created, 0), b"mamori-test");
    assert!(created.ret >= 0);
    let ev = h.wait_for("exec from memfd", |e| is(e, acted.pid, "execveat"));
    let Detail::Exec(x) = &ev.detail else {
        panic!("{ev:?}")
    };
    let exe = x.exe_path.as_ref().unwrap().to_str_lossy().into_owned();
    assert!(exe.contains("memfd:mamori-test"), "{exe}");
    assert_eq!(x.exe_nlink, 0, "a memfd has no links");
    assert_eq!(x.args[0].bytes, b"fileless");
}

#[test]
fn fork_ptrace_and_kill_are_reported() {
    let h = harness();
    let acted = h.act(&["ptrace"]);
    let child: u32 = acted.stdout.trim().parse().unwrap();
    let fork = h.wait_for("fork of the tracee", |e| {
        is(e, acted.pid, "clone") || is(e, acted.pid, "fork")
    });
    let Detail::Fork {
        child_tgid,
        child_tid,
        ..
    } = fork.detail
    else {
        panic!()
    };
    assert_eq!((child_tgid, child_tid), (child, child));
    assert_eq!(fork.ret, child as i64);
    let pt = h.wait_for("ptrace attach", |e| {
        is(e, acted.pid, "ptrace") && e.args().unwrap()[0] == libc::PTRACE_ATTACH as u64
    });
    assert_eq!(pt.args().unwrap()[1], child as u64);
    assert_eq!(pt.ret, 0);
    let kill = h.wait_for("kill", |e| is(e, acted.pid, "kill"));
    assert_eq!(kill.args().unwrap()[0], child as u64);
    assert_eq!(kill.args().unwrap()[1], libc::SIGKILL as u64);
    let exit = h.wait_for("tracee exit", |e| {
        e.task.tgid == child && e.ty.name() == "procexit"
    });
    let Detail::Exit { code, group_dead } = exit.detail else {
        panic!()
    };
    assert_eq!(code & 0x7f, libc::SIGKILL as u32);
    assert!(group_dead);
}

#[test]
fn connect_carries_the_kernels_socket_addresses() {
    let h = harness();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let acted = h.act(&["connect", &port.to_string()]);
    let ev = h.wait_for("connect", |e| is(e, acted.pid, "connect"));
    assert_eq!(ev.ret, 0);
    let Param::Bytes(sockaddr) = &ev.params()[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(&sockaddr[..4], &[2, 0, (port >> 8) as u8, port as u8]);
    let Param::Sock(t) = &ev.params()[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(t.family, libc::AF_INET as u16);
    assert_eq!(t.protocol, libc::IPPROTO_TCP as u16);
    assert_eq!(t.rport, port);
    assert_eq!(&t.raddr[..4], &[127, 0, 0, 1]);
    assert_eq!(&t.laddr[..4], &[127, 0, 0, 1]);
    assert_ne!(t.lport, 0, "the kernel's chosen local port");
    h.wait_for("socket", |e| is(e, acted.pid, "socket") && e.ret >= 0);
}

#[test]
fn setuid_changes_the_credentials_of_later_events() {
    let h = harness();
    let acted = h.act(&["setuid", "65534"]);
    let ev = h.wait_for("setuid", |e| is(e, acted.pid, "setuid"));
    assert_eq!(ev.args().unwrap()[0], 65534);
    assert_eq!(ev.ret, 0);
    assert_eq!(
        ev.task.uid, 65534,
        "the header is filled at exit, after the change"
    );
    let after = h.wait_for("open after setuid", |e| {
        is(e, acted.pid, "openat")
            && e.params()
                .first()
                .and_then(Param::text)
                .is_some_and(|t| t.bytes == b"/dev/null")
    });
    assert_eq!((after.task.uid, after.task.euid), (65534, 65534));
    assert_eq!(
        after.task.cap_effective, 0,
        "root's capabilities are dropped"
    );
}

#[test]
fn file_changes_carry_their_paths() {
    let h = harness();
    let dir = scratch_dir("files");
    let a = dir.join("a");
    fs::write(&a, "x").unwrap();
    let b = dir.join("b");
    let sub = dir.join("sub");
    let pa = h
        .act(&["rename", a.to_str().unwrap(), b.to_str().unwrap()])
        .pid;
    let pu = h.act(&["unlink", b.to_str().unwrap()]).pid;
    let pm = h.act(&["mkdir", sub.to_str().unwrap()]).pid;
    let ren = h.wait_for("rename", |e| is(e, pa, "rename"));
    assert_eq!(str_param(&ren, 0), a.as_os_str().as_bytes());
    assert_eq!(str_param(&ren, 1), b.as_os_str().as_bytes());
    let un = h.wait_for("unlink", |e| is(e, pu, "unlink"));
    assert_eq!(str_param(&un, 0), b.as_os_str().as_bytes());
    let mk = h.wait_for("mkdir", |e| is(e, pm, "mkdir"));
    assert_eq!(str_param(&mk, 0), sub.as_os_str().as_bytes());
    assert_eq!(mk.ret, 0);
}

#[test]
fn exit_codes_and_namespaces_are_reported() {
    let h = harness();
    let acted = h.act_expecting(&["exit", "7"], false);
    let ev = h.wait_for("exit 7", |e| is(e, acted.pid, "procexit"));
    let Detail::Exit { code, group_dead } = ev.detail else {
        panic!()
    };
    assert_eq!(code, 7 << 8);
    assert!(group_dead);
    let ns = |kind: &str| fs::metadata(format!("/proc/self/ns/{kind}")).unwrap().ino() as u32;
    assert_eq!(ev.task.pidns, ns("pid"));
    assert_eq!(ev.task.mntns, ns("mnt"));
    assert_eq!(ev.task.ns_tgid, acted.pid, "host processes see host pids");
}

#[test]
fn the_agents_own_syscalls_are_never_reported() {
    let h = harness();
    let me = std::process::id();
    let path = scratch_dir("self").join("mine");
    fs::write(&path, "x").unwrap();
    let marker = h.act(&["open", "/dev/null"]).pid;
    h.wait_for("a later event", |e| e.task.tgid == marker);
    assert!(
        h.events_of(me).is_empty(),
        "events from the agent's own pid"
    );
    assert!(h.counters.read().skipped_self > 0);
}

#[test]
fn attach_report_covers_the_syscalls() {
    let r = &harness().report;
    for name in [
        "openat",
        "execve",
        "connect",
        "setuid",
        "ptrace",
        "memfd_create",
        "umount2",
    ] {
        assert!(r.tracepoints.contains(name), "{name} not attached: {r:?}");
    }
    // A syscall without an exit tracepoint is one this kernel does not
    // implement (init_module without module support): reported, and not
    // watched unless asked (that would cost every syscall of the host).
    let missing: std::collections::BTreeSet<&str> = mamori_common::syscalls::ALL
        .iter()
        .filter(|s| {
            !matches!(
                s.program,
                mamori_common::syscalls::Program::Sched | mamori_common::syscalls::Program::Raw
            )
        })
        .filter(|s| {
            !std::path::Path::new(&format!(
                "/sys/kernel/tracing/events/syscalls/sys_exit_{}",
                s.tracepoint()
            ))
            .exists()
        })
        .map(|s| s.name)
        .collect();
    assert_eq!(r.unavailable, missing, "{r:?}");
    // Only 32-bit syscalls are watched through raw_sys_exit, and only
    // when the kernel accepts them.
    let raw: Vec<&str> = r.raw.iter().copied().collect();
    let want: Vec<&str> = if r.ia32.enabled() {
        vec!["compat_syscall"]
    } else {
        vec![]
    };
    assert_eq!(raw, want, "raw_sys_exit attached unasked: {r:?}");
}
