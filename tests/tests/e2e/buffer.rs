//! `evt.buffer`: the first bytes of the data of a socket receive or send,
//! captured when a rule reads it. A Java class file's magic bytes received
//! by a process named java (the log4shell download Falco's sandbox rule
//! looks for) alert, through recvfrom(2) and through recvmsg(2); other
//! bytes, and the same bytes received by another program, do not.

use std::{fs, io::Write, net::TcpListener};

use mamori_e2e::{agent::Agent, sibling_binary};

/// A loopback server that sends `bytes` on each connection and closes it.
pub fn serve(bytes: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let _ = c.write_all(bytes);
        }
    });
    port
}

/// The start of a class file: magic, minor and major version (Java 8).
pub const CLASS: &[u8] = b"\xca\xfe\xba\xbe\x00\x00\x00\x34\x00\x1dlog4shell";

/// Runs the actor copied to `exe` with `args`; returns its pid.
pub fn run_as(exe: &std::path::Path, args: &[&str]) -> u32 {
    let child = std::process::Command::new(exe).args(args).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{exe:?} {args:?}: {:?}", out.status);
    pid
}

#[test]
fn the_first_bytes_a_process_receives_are_evt_buffer() {
    let dir = std::env::temp_dir().join(format!("mamori-buffer-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let (java, other) = (dir.join("java"), dir.join("other"));
    fs::copy(sibling_binary("mamori-actor"), &java).unwrap();
    fs::copy(sibling_binary("mamori-actor"), &other).unwrap();
    let rules = dir.join("rules.yaml");
    fs::write(
        &rules,
        format!(
            "- rule: Class file received\n  desc: evt.buffer test\n  \
             condition: evt.type in (recvfrom, recvmsg) and proc.exepath = {} and evt.buffer bcontains cafebabe\n  \
             output: \"class file received (proc.pid=%proc.pid evt.type=%evt.type evt.buffer=%evt.buffer)\"\n  priority: CRITICAL\n",
            java.display()
        ),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let (class, plain) = (serve(CLASS), serve(b"HTTP/1.1 200 OK\r\n\r\nhello"));
    let (class, plain) = (class.to_string(), plain.to_string());
    let rule = "Class file received";
    let mut failures = Vec::new();
    for how in ["recv-from", "recv-msg"] {
        let pid = run_as(&java, &[how, &class]);
        match agent.wait_alert(rule, pid) {
            None => failures.push(format!("{how}: no alert")),
            Some(a) => {
                let f = &a["output_fields"];
                let ty = if how == "recv-from" {
                    "recvfrom"
                } else {
                    "recvmsg"
                };
                if f["evt.type"] != ty
                    || !f["evt.buffer"]
                        .as_str()
                        .is_some_and(|b| b.contains("log4shell"))
                {
                    failures.push(format!("{how}: {f}"));
                }
            }
        }
    }
    let quiet = [
        run_as(&java, &["recv-from", &plain]),
        run_as(&other, &["recv-from", &class]),
    ];
    let (_, alerts) = agent.stop_with_alerts();
    let _ = fs::remove_dir_all(&dir);
    for pid in quiet {
        if alerts
            .iter()
            .any(|a| a["rule"] == rule && a["output_fields"]["proc.pid"] == u64::from(pid))
        {
            failures.push(format!(
                "pid {pid} alerted: its bytes or its program are not the rule's"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
