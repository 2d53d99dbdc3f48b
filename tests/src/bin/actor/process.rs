//! Identity, tracing and exec actions: what a process does to itself or
//! to its children.

use std::{
    ffi::{CString, OsStr},
    os::unix::ffi::OsStrExt,
};

use super::cstr;

/// The environment entries one `exec-env` argument stands for.
fn env_entries(a: &[u8]) -> Vec<CString> {
    let text = String::from_utf8_lossy(a).into_owned();
    if let Some(n) = text.strip_prefix('@') {
        let n: usize = n.parse().expect("@N");
        return (0..n).map(|i| cstr(format!("E{i}=").as_bytes())).collect();
    }
    match text.split_once("=@") {
        Some((var, spec)) => {
            let (n, c) = spec.split_once('*').expect("VAR=@N*C");
            let (c, suffix) = c.split_once('|').unwrap_or((c, ""));
            let value = c.repeat(n.parse().expect("N")) + suffix;
            vec![cstr(format!("{var}={value}").as_bytes())]
        }
        None => vec![cstr(a)],
    }
}

/// Performs `action` when it is one of these; false otherwise.
pub fn process_op(action: &str, args: &[Vec<u8>]) -> bool {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        match action {
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
            // as-user UID PROGRAM ARGS...: drop to UID (its own group, no
            // supplementary groups), then execv PROGRAM
            "as-user" => {
                let id: u32 = String::from_utf8(arg(1)).unwrap().parse().unwrap();
                assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
                assert_eq!(libc::setgid(id), 0);
                assert_eq!(libc::setuid(id), 0);
                let owned: Vec<CString> = args[2..].iter().map(|a| cstr(a)).collect();
                let mut argv: Vec<*const libc::c_char> = owned.iter().map(|a| a.as_ptr()).collect();
                argv.push(std::ptr::null());
                libc::execv(argv[0], argv.as_ptr());
                panic!("execv failed");
            }
            // udp-connect PORT ADDR: connect a UDP socket to ADDR:PORT
            "udp-connect" => {
                let port: u16 = String::from_utf8(arg(1)).unwrap().parse().unwrap();
                let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
                s.connect((String::from_utf8(arg(2)).unwrap().as_str(), port))
                    .unwrap();
            }
            // traceme: ask to be traced by the parent (an anti-debugging trick)
            "traceme" => {
                libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
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
                // The actor's own environment (tests tell their processes
                // apart by it).
                let env: Vec<CString> = std::env::vars_os()
                    .map(|(k, v)| cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
                    .collect();
                let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
                envp.push(std::ptr::null());
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
                    return true; // the failure is the point
                }
                panic!("execve failed");
            }
            // exec-env PATH VAR=VALUE...: execve PATH with exactly this
            // environment, in this order (duplicates kept); `VAR=@N*C|S`
            // is VAR= followed by N copies of C, then S (`|S` optional);
            // `@N` alone is N entries `E<i>=`
            "exec-env" => {
                let path = cstr(&arg(1));
                let mut owned: Vec<CString> = Vec::new();
                for a in &args[2..] {
                    owned.extend(env_entries(a));
                }
                let mut envp: Vec<*const libc::c_char> = owned.iter().map(|a| a.as_ptr()).collect();
                envp.push(std::ptr::null());
                let argv = [path.as_ptr(), std::ptr::null()];
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                panic!("execve failed");
            }
            _ => return false,
        }
    }
    true
}
