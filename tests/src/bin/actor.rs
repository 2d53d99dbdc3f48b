//! Performs one exact action, so a test can assert what the kernel saw.
//! Usage: `mamori-actor <action> [args...]`. Exits 0 when the action ran.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test tool: failing loudly is right"
)]

use std::{
    ffi::{CString, OsStr},
    os::unix::ffi::OsStrExt,
};

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
            // unlink PATH
            "unlink" => assert_eq!(libc::unlink(cstr(&arg(1)).as_ptr()), 0),
            // mkdir PATH
            "mkdir" => assert_eq!(libc::mkdir(cstr(&arg(1)).as_ptr(), 0o700), 0),
            // connect PORT: TCP connect to 127.0.0.1:PORT
            "connect" => {
                let port: u16 = String::from_utf8(arg(1)).unwrap().parse().unwrap();
                let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                drop(s);
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
            // setuid UID
            "setuid" => {
                let uid: u32 = String::from_utf8(arg(1)).unwrap().parse().unwrap();
                assert_eq!(libc::setuid(uid), 0);
                // one more syscall after the change, to see the new uid in a header
                let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                libc::close(fd);
            }
            // regain-root: become nobody keeping root as the saved uid, then
            // take root back (what an exploited setuid program does)
            "regain-root" => {
                assert_eq!(libc::setresuid(65534, 65534, 0), 0);
                assert_eq!(libc::setresuid(0, 0, 0), 0);
            }
            // ptrace: fork a sleeper, attach to it, detach, kill it
            "ptrace" => {
                let child = libc::fork();
                if child == 0 {
                    libc::sleep(10);
                    libc::_exit(0);
                }
                assert_eq!(libc::ptrace(libc::PTRACE_ATTACH, child, 0, 0), 0);
                let mut status = 0;
                libc::waitpid(child, &mut status, 0);
                libc::ptrace(libc::PTRACE_DETACH, child, 0, 0);
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, &mut status, 0);
                println!("{child}");
            }
            // memfd-exec PROGRAM: copy PROGRAM into a memfd and execute it from there
            "memfd-exec" => {
                let bytes = std::fs::read(OsStr::from_bytes(&arg(1))).unwrap();
                let fd = libc::memfd_create(c"mamori-test".as_ptr(), 0);
                assert!(fd >= 0);
                assert_eq!(
                    libc::write(fd, bytes.as_ptr().cast(), bytes.len()),
                    bytes.len() as isize
                );
                let argv = [c"fileless".as_ptr(), std::ptr::null()];
                let envp: [*const libc::c_char; 1] = [std::ptr::null()];
                libc::syscall(
                    libc::SYS_execveat,
                    fd,
                    c"".as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
                panic!("execveat failed");
            }
            // exec PATH ARGS...: execve
            "exec" => {
                let path = cstr(&arg(1));
                let owned: Vec<CString> = args[2..].iter().map(|a| cstr(a)).collect();
                let mut argv: Vec<*const libc::c_char> = vec![path.as_ptr()];
                argv.extend(owned.iter().map(|a| a.as_ptr()));
                argv.push(std::ptr::null());
                let envp = [c"MAMORI_TEST=1".as_ptr(), std::ptr::null()];
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                if arg(1).starts_with(b"/nonexistent") {
                    return; // the failure is the point
                }
                panic!("execve failed");
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
