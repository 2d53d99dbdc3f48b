//! Performs one exact action, so a test can assert what the kernel saw.
//! Usage: `mamori-actor <action> [args...]`. Exits 0 when the action ran.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test tool: failing loudly is right"
)]

mod bpf;
mod process;
mod race;
mod uring;

use std::{
    ffi::{CString, OsStr},
    os::unix::ffi::OsStrExt,
};

use process::process_op;
use race::race_unlink;
use uring::uring_op;

fn cstr(s: &[u8]) -> CString {
    CString::new(s).unwrap()
}

fn main() {
    let args: Vec<Vec<u8>> = std::env::args_os()
        .skip(1)
        .map(|a| a.as_bytes().to_vec())
        .collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let action = String::from_utf8(arg(0)).unwrap();
    if process_op(&action, &args) {
        return;
    }
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        match action.as_str() {
            // open PATH: openat(AT_FDCWD, PATH, O_RDONLY), close
            "open" => {
                let fd = libc::openat(libc::AT_FDCWD, cstr(&arg(1)).as_ptr(), libc::O_RDONLY);
                assert!(fd >= 0, "open failed");
                libc::close(fd);
            }
            // open-via SYSCALL PATH: read-only open through open(2),
            // openat2(2) or creat(2) (which writes), then close
            "open-via" => {
                let path = cstr(&arg(2));
                let fd = match String::from_utf8(arg(1)).unwrap().as_str() {
                    "open" => libc::syscall(libc::SYS_open, path.as_ptr(), libc::O_RDONLY),
                    "creat" => libc::syscall(libc::SYS_creat, path.as_ptr(), 0o600),
                    "openat2" => {
                        // struct open_how { u64 flags; u64 mode; u64 resolve; }
                        let how = [libc::O_RDONLY as u64, 0u64, 0u64];
                        libc::syscall(
                            libc::SYS_openat2,
                            libc::AT_FDCWD,
                            path.as_ptr(),
                            how.as_ptr(),
                            24usize,
                        )
                    }
                    other => panic!("open-via: unknown syscall {other}"),
                };
                assert!(fd >= 0, "open-via failed");
                libc::close(fd as i32);
            }
            // uring OP ARGS...: one request through an io_uring ring, no
            // syscall of its own (see `uring_op`); exits 0 when it ran.
            "uring" => uring_op(&args[1..]),
            // open-n PATH N: open and close PATH N times
            "open-n" => {
                let n: u32 = String::from_utf8(arg(2)).unwrap().parse().unwrap();
                let path = cstr(&arg(1));
                for _ in 0..n {
                    let fd = libc::openat(libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY);
                    assert!(fd >= 0, "open failed");
                    libc::close(fd);
                }
            }
            // create PATH: openat(O_CREAT|O_WRONLY), close
            "create" => {
                let fd = libc::openat(
                    libc::AT_FDCWD,
                    cstr(&arg(1)).as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY,
                    0o600,
                );
                assert!(fd >= 0, "create failed");
                libc::close(fd);
            }
            // open-at DIR NAME: open DIR, then openat(dirfd, NAME), close
            "open-at" => {
                let dir = libc::open(cstr(&arg(1)).as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                let fd = libc::openat(dir, cstr(&arg(2)).as_ptr(), libc::O_RDONLY);
                assert!(fd >= 0, "openat failed");
                libc::close(fd);
            }
            // rename OLD NEW
            "rename" => assert_eq!(
                libc::rename(cstr(&arg(1)).as_ptr(), cstr(&arg(2)).as_ptr()),
                0
            ),
            // signal PID SIG: kill(PID, SIG) (a signal number); tgkill
            // when a third argument names the thread
            "signal" => {
                let n = |i: usize| String::from_utf8(arg(i)).unwrap().parse::<i32>().unwrap();
                let rc = if args.len() > 3 {
                    libc::syscall(libc::SYS_tgkill, n(1), n(3), n(2)) as i32
                } else {
                    libc::kill(n(1), n(2))
                };
                assert_eq!(rc, 0, "signal failed");
            }
            // pidfd-signal PID SIG [proc]: pidfd_send_signal through a
            // pidfd (pidfd_open), or through an fd of the /proc/PID
            // directory with `proc`
            "pidfd-signal" => {
                let n = |i: usize| String::from_utf8(arg(i)).unwrap().parse::<i32>().unwrap();
                let fd = if args.len() > 3 {
                    let dir = cstr(format!("/proc/{}", n(1)).as_bytes());
                    libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) as i64
                } else {
                    libc::syscall(libc::SYS_pidfd_open, n(1), 0)
                };
                assert!(
                    fd >= 0,
                    "no fd for pid: {}",
                    std::io::Error::last_os_error()
                );
                let rc = libc::syscall(libc::SYS_pidfd_send_signal, fd, n(2), 0usize, 0);
                assert_eq!(
                    rc,
                    0,
                    "pidfd_send_signal: {}",
                    std::io::Error::last_os_error()
                );
            }
            // pidfd-getfd PID FD: a copy of PID's descriptor FD (pidfd_getfd)
            "pidfd-getfd" => {
                let n = |i: usize| String::from_utf8(arg(i)).unwrap().parse::<i32>().unwrap();
                let pidfd = libc::syscall(libc::SYS_pidfd_open, n(1), 0);
                assert!(
                    pidfd >= 0,
                    "pidfd_open: {}",
                    std::io::Error::last_os_error()
                );
                let rc = libc::syscall(libc::SYS_pidfd_getfd, pidfd, n(2), 0);
                assert!(rc >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
            }
            // bpf-rewrite-map PID NAME: finds PID's bpf map named NAME (each
            // of its maps taken by id, as bpftool does) and writes its key 0
            // back with the value it holds
            "bpf-rewrite-map" => {
                let pid = String::from_utf8(arg(1)).unwrap();
                let ids = bpf::map_ids_of(&pid);
                let name = arg(2);
                let fd = ids
                    .iter()
                    .map(|&id| bpf::map_fd_by_id(id))
                    .find(|&fd| bpf::map_info(fd).name == name)
                    .expect("no such map");
                bpf::rewrite_key0(fd);
            }
            // bpf-own-map: creates an array map, takes it again by id and
            // writes its key 0 (a process's own map: the control)
            "bpf-own-map" => {
                let fd = bpf::create_array();
                let id = bpf::map_info(fd).id;
                bpf::rewrite_key0(bpf::map_fd_by_id(id));
            }
            // trace PID: attach to PID with ptrace, wait for it to stop, detach
            "trace" => {
                let pid = String::from_utf8(arg(1)).unwrap().parse::<i32>().unwrap();
                // Seen refused once on a busy CI run (errno unknown then):
                // tried again for up to a second, each refusal printed.
                let mut tries = 0;
                while libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) != 0 {
                    let e = std::io::Error::last_os_error();
                    eprintln!("ptrace attach to {pid} refused: {e}");
                    tries += 1;
                    assert!(tries < 20, "attach: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                let mut status = 0;
                libc::waitpid(pid, &mut status, libc::__WALL);
                libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
            }
            // symlink TARGET LINK
            "symlink" => assert_eq!(
                libc::symlink(cstr(&arg(1)).as_ptr(), cstr(&arg(2)).as_ptr()),
                0
            ),
            // unlink PATH
            "unlink" => assert_eq!(libc::unlink(cstr(&arg(1)).as_ptr()), 0),
            // unlink-missing PATH N: N unlink(2) calls that fail (ENOENT)
            "unlink-missing" => {
                let n: u32 = String::from_utf8(arg(2)).unwrap().parse().unwrap();
                let path = cstr(&arg(1));
                for _ in 0..n {
                    assert_eq!(libc::unlink(path.as_ptr()), -1, "unlink succeeded");
                }
            }
            // mkdir-fails PATH: mkdir(2) of an existing PATH (EEXIST)
            "mkdir-fails" => assert_eq!(libc::mkdir(cstr(&arg(1)).as_ptr(), 0o700), -1),
            // unlink-at DIR NAME [MOVE_TO]: open DIR, rename it to MOVE_TO
            // when given, then unlinkat(dirfd, NAME)
            "unlink-at" => {
                let dir = libc::open(cstr(&arg(1)).as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                assert!(dir >= 0, "open dir failed");
                if args.len() > 3 {
                    let to = cstr(&arg(3));
                    assert_eq!(libc::rename(cstr(&arg(1)).as_ptr(), to.as_ptr()), 0);
                }
                let rc = libc::unlinkat(dir, cstr(&arg(2)).as_ptr(), 0);
                assert_eq!(rc, 0, "unlinkat: {}", std::io::Error::last_os_error());
            }
            // unlink-in DIR NAME: chdir(DIR), then unlink(NAME)
            "unlink-in" => {
                assert_eq!(libc::chdir(cstr(&arg(1)).as_ptr()), 0);
                assert_eq!(libc::unlink(cstr(&arg(2)).as_ptr()), 0);
            }
            // race-unlink SHOWN HIDDEN N [still]: N unlink(2) calls on one
            // buffer that another thread keeps rewriting between SHOWN and
            // HIDDEN (unless `still`: the control, SHOWN throughout)
            "race-unlink" => race_unlink(&arg(1), &arg(2), &arg(3), args.len() > 4),
            // mkdir PATH
            "mkdir" => assert_eq!(libc::mkdir(cstr(&arg(1)).as_ptr(), 0o700), 0),
            // connect PORT [ADDR]: TCP connect to ADDR (an address, default
            // 127.0.0.1):PORT
            "connect" => {
                let port: u16 = String::from_utf8(arg(1)).unwrap().parse().unwrap();
                let to = if args.len() > 2 {
                    String::from_utf8(arg(2)).unwrap()
                } else {
                    "127.0.0.1".into()
                };
                let s = std::net::TcpStream::connect((to.as_str(), port)).unwrap();
                drop(s);
            }
            // recv-from PORT / recv-msg PORT: TCP connect to
            // 127.0.0.1:PORT, one recvfrom(2) / recvmsg(2) of what it sends
            "recv-from" | "recv-msg" => {
                use std::os::fd::AsRawFd;
                let port: u16 = String::from_utf8(arg(1)).unwrap().parse().unwrap();
                let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut buf = [0_u8; 256];
                let n = if action == "recv-from" {
                    let (p, len) = (buf.as_mut_ptr().cast(), buf.len());
                    let null = std::ptr::null_mut();
                    libc::recvfrom(s.as_raw_fd(), p, len, 0, null, null.cast())
                } else {
                    let mut iov = libc::iovec {
                        iov_base: buf.as_mut_ptr().cast(),
                        iov_len: buf.len(),
                    };
                    let mut msg: libc::msghdr = std::mem::zeroed();
                    msg.msg_iov = &mut iov;
                    msg.msg_iovlen = 1;
                    libc::recvmsg(s.as_raw_fd(), &mut msg, 0)
                };
                assert!(n > 0, "nothing received");
            }
            // redirect PORT: TCP connect to 127.0.0.1:PORT, then dup2 the
            // socket onto stdin and stdout (a reverse shell's set-up)
            "redirect" => {
                use std::os::fd::AsRawFd;
                let port: u16 = String::from_utf8(arg(1)).unwrap().parse().unwrap();
                let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                assert_eq!(libc::dup2(s.as_raw_fd(), 0), 0);
                assert_eq!(libc::dup2(s.as_raw_fd(), 1), 1);
            }
            // redirect-fcntl PORT: as redirect, with fcntl(F_DUPFD) onto
            // the closed stdin and stdout instead of dup2
            "redirect-fcntl" => {
                use std::os::fd::AsRawFd;
                let port: u16 = String::from_utf8(arg(1)).unwrap().parse().unwrap();
                let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                libc::close(0);
                assert_eq!(libc::fcntl(s.as_raw_fd(), libc::F_DUPFD, 0), 0);
                libc::close(1);
                assert_eq!(libc::fcntl(s.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 1), 1);
            }
            // regain-root-setreuid: as regain-root, taking root back with
            // setreuid(-1, 0) (the saved uid allows the effective one)
            "regain-root-setreuid" => {
                assert_eq!(libc::setresuid(65534, 65534, 0), 0);
                assert_eq!(libc::setreuid(u32::MAX, 0), 0);
            }
            // chmod-setuid-fchmodat2 PATH: chmod 04755 through fchmodat2
            "chmod-setuid-fchmodat2" => {
                let rc = libc::syscall(452, libc::AT_FDCWD, cstr(&arg(1)).as_ptr(), 0o4755, 0);
                assert_eq!(rc, 0, "fchmodat2: {}", std::io::Error::last_os_error());
            }
            // clone-ns: a child in a new UTS namespace through clone(2) flags
            "clone-ns" => {
                let pid = libc::syscall(
                    libc::SYS_clone,
                    libc::CLONE_NEWUTS | libc::SIGCHLD,
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                );
                assert!(pid >= 0, "clone: {}", std::io::Error::last_os_error());
                if pid == 0 {
                    libc::_exit(0);
                }
                libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
            }
            // truncate-call PATH: truncate(2) to 0; ftruncate-call PATH: open
            // O_WRONLY, ftruncate(2) to 0
            "truncate-call" => assert_eq!(libc::truncate(cstr(&arg(1)).as_ptr(), 0), 0),
            "ftruncate-call" => {
                let fd = libc::open(cstr(&arg(1)).as_ptr(), libc::O_WRONLY);
                assert!(fd >= 0, "open failed");
                assert_eq!(libc::ftruncate(fd, 0), 0);
                libc::close(fd);
            }
            // vm-write: fork a child and write into its memory with
            // process_vm_writev (the variable's address is the same in both)
            "vm-write" => {
                static mut TARGET: [u8; 8] = [0; 8];
                let child = libc::fork();
                if child == 0 {
                    libc::sleep(5);
                    libc::_exit(0);
                }
                let data = *b"injected";
                let local = libc::iovec {
                    iov_base: data.as_ptr() as *mut _,
                    iov_len: 8,
                };
                let remote = libc::iovec {
                    iov_base: std::ptr::addr_of_mut!(TARGET) as *mut _,
                    iov_len: 8,
                };
                let n = libc::process_vm_writev(child, &local, 1, &remote, 1, 0);
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, std::ptr::null_mut(), 0);
                assert_eq!(
                    n,
                    8,
                    "process_vm_writev: {}",
                    std::io::Error::last_os_error()
                );
            }
            // open-by-handle PATH: name_to_handle_at, then open_by_handle_at
            "open-by-handle" => {
                // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[128]; }
                let mut buf = [0u8; 8 + 128];
                buf[..4].copy_from_slice(&128u32.to_ne_bytes());
                let mut mount_id = 0i32;
                let rc = libc::syscall(
                    libc::SYS_name_to_handle_at,
                    libc::AT_FDCWD,
                    cstr(&arg(1)).as_ptr(),
                    buf.as_mut_ptr(),
                    &mut mount_id,
                    0,
                );
                assert_eq!(
                    rc,
                    0,
                    "name_to_handle_at: {}",
                    std::io::Error::last_os_error()
                );
                // Any descriptor on the file's own filesystem names the mount.
                let mount_fd = libc::open(cstr(&arg(1)).as_ptr(), libc::O_RDONLY);
                let fd = libc::syscall(
                    libc::SYS_open_by_handle_at,
                    mount_fd,
                    buf.as_mut_ptr(),
                    libc::O_RDONLY,
                );
                assert!(
                    fd >= 0,
                    "open_by_handle_at: {}",
                    std::io::Error::last_os_error()
                );
                libc::close(fd as i32);
            }
            // new-mount DIR: mount a tmpfs on DIR through the new mount API
            // (fsopen, fsconfig, fsmount, move_mount), then unmount it
            "new-mount" => {
                let err = || std::io::Error::last_os_error();
                let fs = libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 0);
                assert!(fs >= 0, "fsopen: {}", err());
                let rc = libc::syscall(
                    libc::SYS_fsconfig,
                    fs,
                    1,
                    c"size".as_ptr(),
                    c"1m".as_ptr(),
                    0,
                );
                assert_eq!(rc, 0, "fsconfig set: {}", err());
                let rc = libc::syscall(libc::SYS_fsconfig, fs, 6, 0usize, 0usize, 0); // FSCONFIG_CMD_CREATE
                assert_eq!(rc, 0, "fsconfig create: {}", err());
                let mnt = libc::syscall(libc::SYS_fsmount, fs, 0, 0);
                assert!(mnt >= 0, "fsmount: {}", err());
                let target = cstr(&arg(1));
                // MOVE_MOUNT_F_EMPTY_PATH: the detached mount itself.
                let rc = libc::syscall(
                    libc::SYS_move_mount,
                    mnt,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    4,
                );
                assert_eq!(rc, 0, "move_mount: {}", err());
                // The descriptors hold the mount busy: close them, then detach.
                libc::close(mnt as i32);
                libc::close(fs as i32);
                assert_eq!(
                    libc::umount2(target.as_ptr(), libc::MNT_DETACH),
                    0,
                    "umount: {}",
                    err()
                );
            }
            // hold-open DIR SECS: open every file in DIR, keep them open SECS seconds
            "hold-open" => {
                let mut fds = Vec::new();
                for e in std::fs::read_dir(OsStr::from_bytes(&arg(1))).unwrap() {
                    let path = e.unwrap().path();
                    let fd = libc::open(cstr(path.as_os_str().as_bytes()).as_ptr(), libc::O_RDONLY);
                    assert!(fd >= 0, "open {path:?} failed");
                    fds.push(fd);
                }
                let secs: u32 = String::from_utf8(arg(2)).unwrap().parse().unwrap();
                libc::sleep(secs);
                for fd in fds {
                    libc::close(fd);
                }
            }
            // chmod-setuid PATH: chmod 04755
            "chmod-setuid" => assert_eq!(libc::chmod(cstr(&arg(1)).as_ptr(), 0o4755), 0),
            // init-module: try to load an (empty) kernel module; the attempt is the point
            "init-module" => {
                let params = c"";
                libc::syscall(
                    libc::SYS_init_module,
                    std::ptr::null::<u8>(),
                    0usize,
                    params.as_ptr(),
                );
            }
            // set-name NAME PATH: prctl(PR_SET_NAME, NAME), then open PATH
            "set-name" => {
                let name = cstr(&arg(1));
                let rc = libc::syscall(libc::SYS_prctl, libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0);
                assert_eq!(rc, 0, "prctl: {}", std::io::Error::last_os_error());
                let fd = libc::open(cstr(&arg(2)).as_ptr(), libc::O_RDONLY);
                assert!(fd >= 0, "open failed");
                libc::close(fd);
            }
            // set-name-proc NAME PATH: write NAME to /proc/self/comm, then open PATH
            "set-name-proc" => {
                std::fs::write("/proc/self/comm", arg(1)).unwrap();
                let fd = libc::open(cstr(&arg(2)).as_ptr(), libc::O_RDONLY);
                assert!(fd >= 0, "open failed");
                libc::close(fd);
            }
            // int80 NR...: each 32-bit (ia32) syscall NR through `int 0x80`
            // from this 64-bit process, with zero arguments (175,
            // rt_sigprocmask(0, NULL, NULL, 8) is harmless; 128 is ia32
            // init_module)
            "int80" => {
                for nr in args[1..].iter() {
                    let nr: u64 = String::from_utf8(nr.clone()).unwrap().parse().unwrap();
                    let ret: u64;
                    // rbx is LLVM's: saved around the call, zeroed for it.
                    core::arch::asm!(
                        "mov {save}, rbx",
                        "xor ebx, ebx",
                        "int 0x80",
                        "mov rbx, {save}",
                        save = out(reg) _,
                        inlateout("rax") nr => ret,
                        in("rcx") 0u64,
                        in("rdx") 0u64,
                        in("rsi") 8u64,
                        in("rdi") 0u64,
                    );
                    println!("int80 {nr} -> {}", ret as u32 as i32);
                }
            }
            // packet-socket: open an AF_PACKET socket
            "packet-socket" => {
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
                assert!(fd >= 0, "AF_PACKET socket failed");
                libc::close(fd);
            }
            // unshare: a new UTS namespace
            "unshare" => assert_eq!(libc::unshare(libc::CLONE_NEWUTS), 0),
            // truncate PATH: open with O_WRONLY|O_CREAT|O_TRUNC
            "truncate" => {
                let fd = libc::open(
                    cstr(&arg(1)).as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                    0o600,
                );
                assert!(fd >= 0, "truncate open failed");
                libc::close(fd);
            }
            // append PATH: open O_WRONLY|O_APPEND|O_CREAT and close, writing nothing
            "append" => {
                let fd = libc::open(
                    cstr(&arg(1)).as_ptr(),
                    libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
                    0o644,
                );
                assert!(fd >= 0, "append open failed");
                libc::close(fd);
            }
            // capset: set the capability sets to what they already are
            "capset" => {
                let mut hdr = [0x2008_0522_u32, 0]; // _LINUX_CAPABILITY_VERSION_3, this process
                let mut data = [0_u32; 6];
                assert_eq!(
                    libc::syscall(libc::SYS_capget, hdr.as_mut_ptr(), data.as_mut_ptr()),
                    0
                );
                assert_eq!(
                    libc::syscall(libc::SYS_capset, hdr.as_mut_ptr(), data.as_ptr()),
                    0
                );
            }
            // bpf-load: load a two-instruction socket filter (r0 = 0; exit)
            "bpf-load" => {
                let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
                let license = c"GPL";
                let mut attr = [0_u8; 128];
                attr[0..4].copy_from_slice(&1_u32.to_ne_bytes()); // BPF_PROG_TYPE_SOCKET_FILTER
                attr[4..8].copy_from_slice(&2_u32.to_ne_bytes());
                attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
                attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
                let fd = libc::syscall(libc::SYS_bpf, 5, attr.as_ptr(), attr.len()); // BPF_PROG_LOAD
                assert!(fd >= 0, "BPF_PROG_LOAD failed");
                libc::close(fd as i32);
            }
            // userfaultfd: create one and close it
            "userfaultfd" => {
                let fd = libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC);
                assert!(fd >= 0, "userfaultfd failed");
                libc::close(fd as i32);
            }
            // exit CODE
            "exit" => libc::_exit(String::from_utf8(arg(1)).unwrap().parse().unwrap()),
            // flood N: N opens of /dev/null
            "flood" => {
                let n: u64 = String::from_utf8(arg(1)).unwrap().parse().unwrap();
                for _ in 0..n {
                    let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                    libc::close(fd);
                }
            }
            other => panic!("unknown action {other}"),
        }
    }
}
