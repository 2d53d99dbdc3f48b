//! io_uring requests (the `uring` action): each does what a syscall does
//! without making it.

use super::cstr;

/// One io_uring request: `open PATH`, `open-direct PATH` (into the ring's
/// own table), `open-quiet PATH` (IOSQE_CQE_SKIP_SUCCESS: no completion),
/// `unlink PATH`, `rename OLD NEW`, `mkdir PATH`, `symlink TARGET LINK`,
/// `link OLD NEW`, `connect IPV4 PORT` (socket made by a ring request too).
/// Panics when the request fails.
pub fn uring_op(args: &[Vec<u8>]) {
    use io_uring::{IoUring, opcode, squeue, types};
    let op = String::from_utf8(args[0].clone()).unwrap();
    let a = |i: usize| cstr(&args[i]);
    let cwd = types::Fd(libc::AT_FDCWD);
    let mut ring = IoUring::new(8).expect("io_uring_setup");
    let run = |ring: &mut IoUring, e: squeue::Entry| -> i32 {
        // SAFETY: every buffer the entry points to outlives the wait below.
        unsafe { ring.submission().push(&e).expect("queue full") };
        ring.submit_and_wait(1).expect("io_uring_enter");
        let res = ring.completion().next().expect("a completion").result();
        assert!(
            res >= 0,
            "io_uring {op}: {}",
            std::io::Error::from_raw_os_error(-res)
        );
        res
    };
    match op.as_str() {
        "open" => {
            let p = a(1);
            let fd = run(&mut ring, opcode::OpenAt::new(cwd, p.as_ptr()).build());
            unsafe { libc::close(fd) };
        }
        "open-direct" => {
            ring.submitter()
                .register_files_sparse(4)
                .expect("register files");
            let p = a(1);
            let e = opcode::OpenAt::new(cwd, p.as_ptr())
                .file_index(Some(
                    types::DestinationSlot::try_from_slot_target(0).unwrap(),
                ))
                .build();
            run(&mut ring, e);
        }
        "open-quiet" => {
            let p = a(1);
            let e = opcode::OpenAt::new(cwd, p.as_ptr())
                .build()
                .flags(squeue::Flags::SKIP_SUCCESS);
            unsafe { ring.submission().push(&e).expect("queue full") };
            ring.submit().expect("io_uring_enter");
            // Nothing to wait for on success: give the request time to run.
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert!(ring.completion().next().is_none(), "open-quiet failed");
        }
        "unlink" => {
            let p = a(1);
            run(&mut ring, opcode::UnlinkAt::new(cwd, p.as_ptr()).build());
        }
        "mkdir" => {
            let p = a(1);
            run(
                &mut ring,
                opcode::MkDirAt::new(cwd, p.as_ptr()).mode(0o755).build(),
            );
        }
        "rename" | "link" | "symlink" => {
            let (x, y) = (a(1), a(2));
            let e = match op.as_str() {
                "rename" => opcode::RenameAt::new(cwd, x.as_ptr(), cwd, y.as_ptr()).build(),
                "link" => opcode::LinkAt::new(cwd, x.as_ptr(), cwd, y.as_ptr()).build(),
                _ => opcode::SymlinkAt::new(cwd, x.as_ptr(), y.as_ptr()).build(),
            };
            run(&mut ring, e);
        }
        "connect" => {
            let ip: std::net::Ipv4Addr =
                String::from_utf8(args[1].clone()).unwrap().parse().unwrap();
            let port: u16 = String::from_utf8(args[2].clone()).unwrap().parse().unwrap();
            let fd = run(
                &mut ring,
                opcode::Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0).build(),
            );
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(ip).to_be(),
                },
                sin_zero: [0; 8],
            };
            let e = opcode::Connect::new(
                types::Fd(fd),
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            )
            .build();
            run(&mut ring, e);
            unsafe { libc::close(fd) };
        }
        other => panic!("uring: unknown operation {other}"),
    }
}
