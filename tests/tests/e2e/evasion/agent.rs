//! The agent cannot be blinded cheaply: bounded tables, a runtime that
//! does not answer, command lines past the capture bound, tampering.

use mamori_e2e::agent::Agent;
use mamori_e2e::run_actor;

use super::{count, finish, read_shadow_in_cgroup, scratch, with_default_rules};

/// Many descriptors with long names cannot grow the agent past its limit:
/// the descriptor tables stop at `state.fd_table_mib`, count what they
/// refuse, and the agent says so in an alert.
#[test]
fn descriptor_tables_stay_within_their_budget() {
    let dir = std::env::temp_dir().join(format!("mamori-fdbudget-{}", std::process::id()));
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    // 3,000 descriptors with 240-byte names: over 1 MiB of table.
    for i in 0..3000 {
        std::fs::write(files.join(format!("{i:05}-{}", "n".repeat(234))), "").unwrap();
    }
    // A rule on close keeps every descriptor in the tables.
    let rules = dir.join("close.yaml");
    std::fs::write(
        &rules,
        "- rule: Close watched\n  desc: test\n  condition: evt.type = close and fd.name = /nonexistent\n  output: closed\n  priority: DEBUG\n",
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap(), "-o", "state.fd_table_mib=1"]);
    let holder = std::process::Command::new(mamori_e2e::sibling_binary("mamori-actor"))
        .args(["hold-open", files.to_str().unwrap(), "4"])
        .spawn()
        .unwrap();
    let alert = agent
        .wait_alert_where("mamori internal: state limit reached", |_| true)
        .expect("no alert for the full descriptor tables");
    let used = agent.metric("mamori_fd_table_bytes").unwrap();
    let limit = agent.metric("mamori_fd_table_limit_bytes").unwrap();
    let refused = agent.metric("mamori_fd_table_refused_total").unwrap();
    let _ = holder.wait_with_output();
    assert!(agent.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(limit, f64::from(1u32 << 20));
    assert!(used <= limit, "{used} > {limit}");
    assert!(refused > 0.0);
    assert!(
        alert["output_fields"]["n_fds_refused"].as_u64().unwrap() > 0,
        "{alert}"
    );
    assert_eq!(alert["priority"], "Error");
}

/// Acts that would blind the agent are reported by the agent: stopping it
/// with SIGSTOP (the alert comes once it runs again), a thread of it
/// stopped by tgkill, tracing it, opening its memory, one of its rules files for
/// writing (by name and through a hard link), removing it. Asking it to
/// reload (SIGHUP) and writing another file beside it are not reported.
#[test]
fn tampering_with_the_agent_is_reported() {
    use mamori_e2e::expect::Expectations;

    let dir = scratch("tamper");
    let extra = dir.join("extra.yaml");
    std::fs::write(&extra, "- list: mamori_e2e_tamper\n  items: [x]\n").unwrap();
    let agent = with_default_rules(&["-r", extra.to_str().unwrap()]);
    let me = agent.pid().to_string();
    let rule = "mamori agent tampered with";
    let mut want = Expectations::default();
    let act = |args: &[&str]| run_actor(args, Some(true)).pid;
    let stop = act(&["signal", &me, &libc::SIGSTOP.to_string()]);
    let cont = act(&["signal", &me, &libc::SIGCONT.to_string()]);
    want.pid(stop, rule, vec![("evt.type", "kill".into())]);
    let thread = act(&["signal", &me, &libc::SIGSTOP.to_string(), &me]);
    act(&["signal", &me, &libc::SIGCONT.to_string()]);
    want.pid(thread, rule, vec![("evt.type", "tgkill".into())]);
    let hup = act(&["signal", &me, &libc::SIGHUP.to_string()]);
    want.pid(
        act(&["trace", &me]),
        rule,
        vec![("evt.type", "ptrace".into())],
    );
    let mem = format!("/proc/{me}/mem");
    want.pid(
        act(&["open", &mem]),
        rule,
        vec![("evt.type", "openat".into())],
    );
    // Opened for writing, by its name and through a hard link.
    want.pid(
        act(&["create", extra.to_str().unwrap()]),
        rule,
        vec![("evt.type", "openat".into())],
    );
    let alias = dir.join("alias.yaml");
    std::fs::hard_link(&extra, &alias).unwrap();
    want.pid(
        act(&["create", alias.to_str().unwrap()]),
        rule,
        vec![("evt.type", "openat".into())],
    );
    let other_file = act(&["create", dir.join("other.yaml").to_str().unwrap()]);
    want.pid(
        act(&["unlink", extra.to_str().unwrap()]),
        rule,
        vec![("evt.type", "unlink".into())],
    );
    let failures = want.check(&agent);
    let quiet =
        count(&agent, rule, cont) + count(&agent, rule, hup) + count(&agent, rule, other_file);
    finish(agent, &dir, failures);
    assert_eq!(quiet, 0, "SIGCONT, SIGHUP or another file reported");
}

/// A command line longer than the capture bound is cut, and the cut is a
/// field: a shell whose command line a monitor cannot read whole is
/// reported. The bound is configurable (`capture.args_bytes`).
#[test]
fn a_command_line_past_the_capture_bound_is_flagged() {
    use mamori_e2e::expect::Expectations;

    let agent = with_default_rules(&["-o", "capture.args_bytes=256"]);
    let rule = "Shell command line too long to inspect";
    let sh = |script: String| {
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(child.wait_with_output().unwrap().status.success());
        pid
    };
    // Padding first, the act past the bound.
    let padded = sh(format!(": {} ; true", "x".repeat(400)));
    let short = sh(": short ; true".to_owned());
    let mut want = Expectations::default();
    want.pid(padded, rule, vec![]);
    let failures = want.check(&agent);
    let quiet = count(&agent, rule, short);
    assert!(agent.stop().success());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(quiet, 0, "a short command line was flagged");
}

/// A container runtime that accepts the agent's CRI connection and never
/// answers holds one event at most 500 ms, once: the hold runs out, the
/// runtime is reported, and events of the host and of other containers
/// flow on without waiting for it.
#[test]
fn a_silent_container_runtime_does_not_hold_the_stream() {
    let dir = scratch("silent-cri");
    let sock = dir.join("cri.sock");
    // Accepts (the kernel's backlog) and never answers.
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let id = format!("{:0>64x}", 0x5117_e27c_u64 + u64::from(std::process::id()));
    let cgroup =
        std::path::Path::new("/sys/fs/cgroup/pids").join(format!("cri-containerd-{id}.scope"));
    std::fs::create_dir_all(&cgroup).unwrap();
    let agent = with_default_rules(&["--cri-socket", sock.to_str().unwrap()]);
    let in_cgroup = read_shadow_in_cgroup(&cgroup);
    let host = run_actor(&["open", "/etc/shadow"], Some(true)).pid;
    let read = "Credential file read by unexpected process";
    let host_alert = agent.wait_alert(read, host);
    let cgroup_alert = agent.wait_alert(read, in_cgroup);
    let reported =
        agent.wait_alert_where("mamori internal: container runtime not answering", |_| true);
    let held = agent.metric("mamori_container_wait_expired_total");
    assert!(agent.stop().success());
    let _ = std::fs::remove_dir(&cgroup);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        host_alert.is_some(),
        "the host's event did not come through"
    );
    assert!(cgroup_alert.is_some(), "the held event was lost");
    let reported = reported.expect("the silent runtime is not reported");
    assert!(
        reported["output_fields"]["n_waits_expired"].as_u64() >= Some(1),
        "{reported}"
    );
    assert!(
        held >= Some(1.0),
        "mamori_container_wait_expired = {held:?}"
    );
}

/// The same blinding by other doors: a signal through a pidfd or through
/// an fd of the agent's `/proc/PID` directory, a descriptor taken out of
/// the agent (`pidfd_getfd`), one of its bpf maps taken by id and written
/// back (as `bpftool map update` would). The targets come from the
/// kernel's objects (the `struct pid` behind the fd, the map behind the
/// fd), not from the caller's numbers. Controls: the same signal to
/// another process, the same map calls on a map of the actor's own.
#[test]
fn tampering_through_pidfds_and_bpf_is_reported() {
    let agent = with_default_rules(&[]);
    let me = agent.pid().to_string();
    let rule = "mamori agent tampered with";
    let act = |args: &[&str]| run_actor(args, Some(true)).pid;
    let (stop, cont) = (libc::SIGSTOP.to_string(), libc::SIGCONT.to_string());
    let by_pidfd = act(&["pidfd-signal", &me, &stop]);
    act(&["pidfd-signal", &me, &cont]);
    let by_proc_dir = act(&["pidfd-signal", &me, &stop, "proc"]);
    act(&["pidfd-signal", &me, &cont, "proc"]);
    let took_fd = act(&["pidfd-getfd", &me, "0"]);
    let rewrote = act(&["bpf-rewrite-map", &me, "ENABLED"]);
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let other = act(&["pidfd-signal", &sleeper.id().to_string(), &stop]);
    let own_map = act(&["bpf-own-map"]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    let mut failures = Vec::new();
    for (pid, ty) in [
        (by_pidfd, "pidfd_send_signal"),
        (by_proc_dir, "pidfd_send_signal"),
        (took_fd, "pidfd_getfd"),
    ] {
        match agent.wait_alert(rule, pid) {
            Some(a) if a["output_fields"]["evt.type"] == ty => {}
            other => failures.push(format!("pid {pid} ({ty}): {other:?}")),
        }
    }
    let cmds = |pid: u32| -> Vec<String> {
        agent
            .alerts()
            .iter()
            .filter(|a| {
                a["rule"] == rule && a["output_fields"]["proc.pid"].as_u64() == Some(pid.into())
            })
            .filter_map(|a| a["output_fields"]["evt.args"].as_str().map(str::to_owned))
            .collect()
    };
    let _ = agent.wait_alert_where(rule, |f| {
        f["proc.pid"].as_u64() == Some(rewrote.into())
            && f["evt.args"]
                .as_str()
                .is_some_and(|s| s.contains("BPF_MAP_UPDATE_ELEM"))
    });
    let rewrites = cmds(rewrote);
    for cmd in ["BPF_MAP_GET_FD_BY_ID", "BPF_MAP_UPDATE_ELEM"] {
        if !rewrites.iter().any(|a| a.contains(cmd)) {
            failures.push(format!("no {cmd} among {rewrites:?}"));
        }
    }
    let quiet = count(&agent, rule, other) + count(&agent, rule, own_map);
    assert!(agent.stop().success());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        quiet, 0,
        "a signal to another process or the actor's own map was reported"
    );
}
