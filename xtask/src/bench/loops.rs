//! The micro loops of `bench capture`, run in a child process pinned to
//! one CPU (`cargo xtask bench-workload KIND N`): each prints the mean
//! nanoseconds per operation. Every loop makes real syscalls; none
//! allocates inside the timed part.

use std::{ffi::CString, net::TcpListener, os::fd::AsRawFd, time::Instant};

use anyhow::{Context, bail};

/// Where the loops' files live.
pub const DIR: &str = "/tmp/mamori-bench";
/// A file some rule names but none alerts on: the kernel sends its opens
/// (its name and directory pass the prefilter of both the default rules
/// and Falco's stable rules), the rule engine evaluates them.
pub const WATCHED: &str = "/tmp/mamori-bench/security/shadow";
/// A file no rule names.
pub const UNWATCHED: &str = "/dev/null";

/// The loops, in the order the suite runs them, with their sizes.
pub const LOOPS: &[(&str, &str, u64)] = &[
    (
        "open-unwatched",
        "open+close of a file no rule names",
        400_000,
    ),
    (
        "open-watched",
        "open+close of a file a rule names (no alert)",
        200_000,
    ),
    ("open-failed", "open of a missing file (ENOENT)", 400_000),
    (
        "unlink-failed",
        "unlinkat(dirfd, missing name): copied at entry, directory walked",
        400_000,
    ),
    ("getppid", "getppid (no rule needs it)", 4_000_000),
    ("fork-exec", "fork + exec /bin/true + wait", 1_000),
    ("connect", "loopback TCP connect + accept + close", 20_000),
    ("io_uring-read", "4 KiB read through io_uring", 200_000),
];

/// Creates the files the loops open.
pub fn prepare() -> anyhow::Result<()> {
    std::fs::create_dir_all(format!("{DIR}/security"))?;
    std::fs::write(WATCHED, "not a password database\n")?;
    std::fs::write(format!("{DIR}/data"), vec![7u8; 4096])?;
    Ok(())
}

/// Runs loop `kind` `n` times on the calling thread; returns ns per op.
pub fn run(kind: &str, n: u64) -> anyhow::Result<f64> {
    let path = |p: &str| CString::new(p).unwrap_or_default();
    let start;
    match kind {
        "open-unwatched" | "open-watched" => {
            let p = path(if kind == "open-watched" {
                WATCHED
            } else {
                UNWATCHED
            });
            start = Instant::now();
            for _ in 0..n {
                // SAFETY: a valid C string; the fd is closed at once.
                unsafe {
                    let fd = libc::open(p.as_ptr(), libc::O_RDONLY);
                    libc::close(fd);
                }
            }
        }
        "open-failed" => {
            let p = path(&format!("{DIR}/absent"));
            start = Instant::now();
            for _ in 0..n {
                // SAFETY: a valid C string; the open fails.
                unsafe { libc::open(p.as_ptr(), libc::O_RDONLY) };
            }
        }
        "unlink-failed" => {
            let (dir, name) = (path(DIR), path("absent"));
            // SAFETY: a valid C string; closed below.
            let dfd = unsafe { libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
            if dfd < 0 {
                bail!("cannot open {DIR}");
            }
            start = Instant::now();
            for _ in 0..n {
                // SAFETY: a valid dirfd and C string; the unlink fails.
                unsafe { libc::unlinkat(dfd, name.as_ptr(), 0) };
            }
            // SAFETY: our own descriptor.
            unsafe { libc::close(dfd) };
        }
        "getppid" => {
            start = Instant::now();
            for _ in 0..n {
                // SAFETY: no arguments.
                unsafe { libc::getppid() };
            }
        }
        "fork-exec" => {
            let prog = path("/bin/true");
            let argv = [prog.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            start = Instant::now();
            for _ in 0..n {
                // SAFETY: the child only calls execve and _exit.
                unsafe {
                    let pid = libc::fork();
                    if pid == 0 {
                        libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr());
                        libc::_exit(127);
                    }
                    let mut status = 0;
                    libc::waitpid(pid, &mut status, 0);
                }
            }
        }
        "connect" => {
            // Connect and accept on this thread, in lockstep: the loopback
            // handshake completes inside connect, so accept never waits and
            // no backlog fills.
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let lfd = listener.as_raw_fd();
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: addr.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
                },
                sin_zero: [0; 8],
            };
            // Closed with a reset: no TIME_WAIT piles up across rounds.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            start = Instant::now();
            for _ in 0..n {
                // SAFETY: a stack sockaddr and linger of the sizes given;
                // every fd is closed.
                unsafe {
                    let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                    libc::connect(
                        fd,
                        (&sin as *const libc::sockaddr_in).cast(),
                        size_of::<libc::sockaddr_in>() as u32,
                    );
                    let peer = libc::accept(lfd, std::ptr::null_mut(), std::ptr::null_mut());
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        (&linger as *const libc::linger).cast(),
                        size_of::<libc::linger>() as u32,
                    );
                    libc::close(fd);
                    libc::close(peer);
                }
            }
        }
        "io_uring-read" => {
            let file = std::fs::File::open(format!("{DIR}/data"))?;
            let mut ring = io_uring::IoUring::new(8).context("io_uring_setup")?;
            let mut buf = vec![0u8; 4096];
            let read = io_uring::opcode::Read::new(
                io_uring::types::Fd(file.as_raw_fd()),
                buf.as_mut_ptr(),
                buf.len() as u32,
            )
            .offset(0)
            .build();
            start = Instant::now();
            for _ in 0..n {
                // SAFETY: the buffer outlives the request, which completes
                // before the next submission.
                unsafe { ring.submission().push(&read).context("submission queue")? };
                ring.submit_and_wait(1)?;
                ring.completion().for_each(drop);
            }
        }
        other => bail!("unknown workload {other}"),
    }
    Ok(start.elapsed().as_nanos() as f64 / n as f64)
}
