//! Attacks that go around a rule by another door: each test performs the
//! evasive act for real, with the plain act beside it as the control, and
//! asserts what the agent reports for each process.

use mamori_e2e::{
    agent::{Agent, repo_rules},
    run_actor,
};

/// Alerts of `rule` raised for `pid`.
fn count(agent: &Agent, rule: &str, pid: u32) -> usize {
    agent
        .alerts()
        .iter()
        .filter(|a| {
            a["rule"] == rule && a["output_fields"]["proc.pid"].as_u64() == Some(pid.into())
        })
        .count()
}

/// The agent with the default rules and `more` arguments after them.
fn with_default_rules(more: &[&str]) -> Agent {
    let rules = repo_rules();
    let mut args = vec!["-r", rules.to_str().unwrap()];
    args.extend_from_slice(more);
    Agent::start(&args)
}

/// A fresh directory of this test process's own, named after the test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mamori-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Stops the agent, removes `dir`, and fails with every expectation
/// `check` found unmet.
fn finish(agent: Agent, dir: &std::path::Path, failures: Vec<String>) {
    let _ = std::fs::remove_dir_all(dir);
    assert!(agent.stop().success());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A 32-bit syscall (`int 0x80` from a 64-bit program) passes no syscall
/// tracepoint. It is never read as the 64-bit call with the same number
/// (ia32 175 is `rt_sigprocmask`, x86_64 175 `init_module`), and each
/// process using the 32-bit ABI is reported once, naming its first call.
#[test]
fn compat_syscalls_are_reported_once_never_misread() {
    // The raw exit hook is on for unimplemented syscalls too: the door
    // through which the misreading happened.
    let agent = Agent::start_logged(&[
        "-r",
        repo_rules().to_str().unwrap(),
        "-o",
        "capture.watch_unimplemented=true",
    ]);
    let rule = "32-bit syscall ABI used";
    // Control: the 64-bit call is seen as itself.
    let control = run_actor(&["init-module"], None).pid;
    // Attack: harmless 32-bit calls, then ia32 init_module (128).
    let attack = run_actor(&["int80", "175", "175", "128"], Some(true)).pid;
    // Another process whose first 32-bit call is init_module.
    let second = run_actor(&["int80", "128"], Some(true)).pid;

    assert!(
        agent
            .wait_alert("Kernel module load attempted", control)
            .is_some(),
        "control: the 64-bit init_module was not seen"
    );
    let first = agent
        .wait_alert(rule, attack)
        .expect("no alert for int 0x80");
    assert_eq!(first["output_fields"]["evt.arg.syscall"], "rt_sigprocmask");
    assert_eq!(first["output_fields"]["evt.arg.nr"], "175");
    let other = agent
        .wait_alert(rule, second)
        .expect("no alert for the second process");
    assert_eq!(other["output_fields"]["evt.arg.syscall"], "init_module");
    // Everything of `attack` has been processed by now (`second` came later).
    assert_eq!(count(&agent, rule, attack), 1, "reported more than once");
    assert_eq!(
        count(&agent, "Kernel module load attempted", attack),
        0,
        "a 32-bit rt_sigprocmask was read as init_module"
    );
    let seen = agent
        .metric("mamori_kernel_compat_syscalls_total")
        .unwrap_or(0.0);
    assert!(seen >= 4.0, "mamori_kernel_compat_syscalls = {seen}");
    let log = agent.log();
    assert!(agent.stop().success());
    assert!(
        log.contains("32-bit (ia32) syscalls are enabled on this kernel: watched"),
        "the ia32 state is not reported at start:\n{log}"
    );
}

/// A process that renames itself after a trusted program (prctl or
/// /proc/self/comm) is still judged by the name the kernel gave it at
/// exec, and the rename is reported. `sshd` may read /etc/shadow under
/// the default rules; the renamed actor may not.
#[test]
fn a_renamed_process_keeps_its_exec_name() {
    let agent = with_default_rules(&[]);
    let read = "Credential file read by unexpected process";
    let control = run_actor(&["open", "/etc/shadow"], Some(true)).pid;
    let by_prctl = run_actor(&["set-name", "sshd", "/etc/shadow"], Some(true)).pid;
    let by_proc = run_actor(&["set-name-proc", "sshd", "/etc/shadow"], Some(true)).pid;
    for pid in [control, by_prctl, by_proc] {
        let a = agent
            .wait_alert(read, pid)
            .unwrap_or_else(|| panic!("no `{read}` for pid {pid}"));
        assert_eq!(a["output_fields"]["proc.name"], "mamori-actor");
    }
    let renamed = agent
        .wait_alert("Process renamed to another program's name", by_prctl)
        .expect("the prctl rename is not reported");
    assert_eq!(renamed["output_fields"]["proc.comm"], "sshd");
    let proc_file = agent
        .wait_alert("Process name set through /proc", by_proc)
        .expect("the /proc/self/comm rename is not reported");
    assert_eq!(
        proc_file["output_fields"]["fd.name"],
        format!("/proc/{by_proc}/comm")
    );
    assert_eq!(
        count(&agent, "Process renamed to another program's name", control),
        0
    );
    assert!(agent.stop().success());
}

/// Names that are not valid UTF-8 print so that two different names never
/// print the same: each stray byte is escaped, a real U+FFFD and a real
/// backslash stay distinct.
#[test]
fn names_with_stray_bytes_stay_distinguishable() {
    use std::os::unix::ffi::OsStrExt;

    let dir = scratch("bytes");
    let rules = dir.join("bytes.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: Odd name opened\n  desc: test\n  condition: evt.type = openat and fd.name startswith {}/x\n  output: opened %fd.name by %proc.pid\n  priority: NOTICE\n",
            dir.display()
        ),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let names: [&[u8]; 4] = [b"x\xff", b"x\xfe", "x\u{fffd}".as_bytes(), b"x\\xff"];
    let mut shown = Vec::new();
    for name in names {
        let path = dir.join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(&path, "").unwrap();
        let child = std::process::Command::new(mamori_e2e::sibling_binary("mamori-actor"))
            .arg("open")
            .arg(&path)
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(child.wait_with_output().unwrap().status.success());
        let a = agent
            .wait_alert("Odd name opened", pid)
            .unwrap_or_else(|| panic!("no alert for {path:?}"));
        shown.push(a["output_fields"]["fd.name"].as_str().unwrap().to_owned());
        let line = a["output"].as_str().unwrap();
        assert!(line.contains(shown.last().unwrap().as_str()), "{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(agent.stop().success());
    let base = dir.display().to_string();
    assert_eq!(shown[0], format!("{base}/x\\xff"));
    assert_eq!(shown[1], format!("{base}/x\\xfe"));
    assert_eq!(shown[2], format!("{base}/x\u{fffd}"));
    assert_eq!(shown[3], format!("{base}/x\\\\xff"));
}

/// The same act through another door: each pair is the plain act (the
/// control) and the same harm by another syscall, and both must raise the
/// same default rule for the process that did it.
#[test]
fn other_doors_to_the_same_act_raise_the_same_rule() {
    use mamori_e2e::expect::Expectations;

    let tag = std::process::id();
    let dir = scratch("doors");
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let log = format!("/var/log/mamori-e2e-{tag}.log");
    let installed = format!("/usr/local/bin/mamori-e2e-{tag}");
    let installed_too = format!("/usr/local/bin/mamori-e2e-{tag}-created");
    for f in [&log, &p("plain"), &p("other"), &p("handle"), &p("payload")] {
        std::fs::write(f, "x").unwrap();
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let agent = with_default_rules(&[]);
    let mut want = Expectations::default();
    let act = |args: &[&str]| run_actor(args, Some(true)).pid;
    let mut both = |rule: &'static str, plain: &[&str], other: &[&str]| {
        want.pid(act(plain), rule, vec![]);
        want.pid(act(other), rule, vec![]);
    };

    both(
        "Standard input or output redirected to a network socket",
        &["redirect", &port],
        &["redirect-fcntl", &port],
    );
    both(
        "Non-root process became root",
        &["regain-root"],
        &["regain-root-setreuid"],
    );
    both(
        "Setuid or setgid bit set",
        &["chmod-setuid", &p("plain")],
        &["chmod-setuid-fchmodat2", &p("other")],
    );
    both(
        "Namespace change by unexpected process",
        &["unshare"],
        &["clone-ns"],
    );
    both(
        "Log file truncated",
        &["truncate", &log],
        &["truncate-call", &log],
    );
    both(
        "Log file truncated",
        &["truncate", &log],
        &["ftruncate-call", &log],
    );
    both(
        "Write below binary directory",
        &["create", &installed_too],
        &["rename", &p("payload"), &installed],
    );
    // /proc/PID/mem written (control) and process_vm_writev.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let mem = format!("/proc/{}/mem", sleeper.id());
    both(
        "Process memory written by another process",
        &["append", &mem],
        &["vm-write"],
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    want.pid(
        act(&["open-by-handle", &p("handle")]),
        "File opened by handle",
        vec![],
    );
    // LD_PRELOAD into /tmp, plainly and behind a separator.
    for value in ["/tmp/mamori-e2e-none.so", ":/tmp/mamori-e2e-none.so"] {
        let child = std::process::Command::new("/bin/true")
            .env("LD_PRELOAD", value)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let _ = child.wait_with_output();
        want.pid(pid, "Library preloaded from a writable directory", vec![]);
    }

    let failures = want.check(&agent);
    drop(listener);
    for f in [&log, &installed, &installed_too] {
        let _ = std::fs::remove_file(f);
    }
    finish(agent, &dir, failures);
}

/// A mount made through the new mount API (fsopen, fsconfig, fsmount,
/// move_mount) is seen step by step, with its file system, options and
/// target, as mount(2) is.
#[test]
fn the_new_mount_api_is_seen_with_its_arguments() {
    let dir = scratch("newmount");
    let rules = dir.join("mount.yaml");
    std::fs::write(
        &rules,
        "- rule: New mount API\n  desc: test\n  condition: evt.type in (fsopen, fsconfig, fsmount, move_mount)\n  output: \"%evt.type %evt.args pid=%proc.pid\"\n  priority: NOTICE\n",
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let target = dir.join("mnt");
    std::fs::create_dir_all(&target).unwrap();
    let pid = run_actor(&["new-mount", target.to_str().unwrap()], Some(true)).pid;
    let seen = |ty: &str, want: &str| {
        let a = agent
            .wait_alert_where("New mount API", |f| {
                f["proc.pid"] == pid
                    && f["evt.type"] == ty
                    && f["evt.args"].as_str().is_some_and(|s| s.contains(want))
            })
            .unwrap_or_else(|| panic!("no {ty} with {want}: {:#?}", agent.alerts()));
        a["output_fields"]["evt.args"].as_str().unwrap().to_owned()
    };
    seen("fsopen", "fs_name=tmpfs");
    seen("fsconfig", "key=size value=1m");
    seen("fsmount", "fd=");
    seen("move_mount", &format!("to_path={}", target.display()));
    assert!(agent.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

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

/// A cgroup named like a container decides nothing: a host process moved
/// into one is still the host's (`container.id` = host), and the mismatch
/// is reported. Real containers keep their ids (the containers tests).
#[test]
fn a_cgroup_named_like_a_container_does_not_make_one() {
    let id = format!("{:0>64x}", 0xdead_beef_u64 + u64::from(std::process::id()));
    let cgroup = std::path::Path::new("/sys/fs/cgroup/pids").join(&id);
    std::fs::create_dir_all(&cgroup).unwrap();
    let agent = with_default_rules(&[]);
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec cat /etc/shadow > /dev/null",
        cgroup.display()
    );
    let child = std::process::Command::new("sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait_with_output().unwrap().status.success());
    let mismatch = agent.wait_alert("Process in a cgroup named like an unknown container", pid);
    let read = agent.wait_alert("Credential file read by unexpected process", pid);
    assert!(agent.stop().success());
    let _ = std::fs::remove_dir(&cgroup);
    let mismatch = mismatch.expect("the fake container cgroup is not reported");
    assert_eq!(
        mismatch["output_fields"]["container.unconfirmed_id"],
        &id[..12]
    );
    assert_eq!(mismatch["output_fields"]["container.id"], "host");
    let read = read.expect("the shadow read is not reported");
    assert_eq!(read["output_fields"]["container.id"], "host", "{read}");
}

/// io_uring requests make no syscall of their own: each is reported as
/// the syscall it stands for, with the same fields, and raises the same
/// rule as the plain syscall beside it. Opens into the ring's own table
/// ("direct" descriptors) and requests that ask for no completion
/// (IOSQE_CQE_SKIP_SUCCESS) included.
#[test]
fn io_uring_requests_raise_the_rules_their_syscalls_do() {
    use mamori_e2e::expect::Expectations;

    let tag = std::process::id();
    let dir = scratch("uring");
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let logs = [1, 2].map(|i| format!("/var/log/mamori-e2e-uring-{tag}-{i}.log"));
    let installed = [1, 2].map(|i| format!("/usr/local/bin/mamori-e2e-uring-{tag}-{i}"));
    for f in logs.iter().chain([&p("payload1"), &p("payload2")]) {
        std::fs::write(f, "x").unwrap();
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // A rule of the test's own for acts no default rule watches, showing
    // the fields that say how the act was done.
    let rules = dir.join("uring-rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: e2e io_uring act\n  desc: an act of the io_uring end-to-end test\n  \
             condition: (evt.type in (mkdir, mkdirat) and fs.path.name startswith {d}/) or \
             (evt.type = connect and fd.rport = {port}) or (evt.type in (open, openat) \
             and fd.name = {marker} and container.id != host)\n  output: >\n    act \
             %evt.type io_uring=%evt.is_io_uring op=%evt.io_uring.op res=%evt.res \
             path=%fs.path.name rip=%fd.rip rport=%fd.rport pid=%proc.pid \
             container=%container.id\n  priority: NOTICE\n  tags: [T1106]\n",
            d = dir.display(),
            marker = mamori_e2e::podman::MARKER,
        ),
    )
    .unwrap();
    let agent = with_default_rules(&["-r", rules.to_str().unwrap()]);
    let mut want = Expectations::default();
    let act = |args: &[&str]| run_actor(args, Some(true)).pid;
    let read = "Credential file read by unexpected process";
    for how in [
        &["open", "/etc/shadow"][..],
        &["uring", "open", "/etc/shadow"],
        &["uring", "open-direct", "/etc/shadow"],
        &["uring", "open-quiet", "/etc/shadow"],
    ] {
        want.pid(act(how), read, vec![("fd.name", "/etc/shadow".into())]);
    }
    let deleted = "Log file deleted";
    want.pid(act(&["unlink", &logs[0]]), deleted, vec![]);
    want.pid(
        act(&["uring", "unlink", &logs[1]]),
        deleted,
        vec![("fs.path.name", logs[1].clone())],
    );
    let written = "Write below binary directory";
    want.pid(
        act(&["rename", &p("payload1"), &installed[0]]),
        written,
        vec![],
    );
    want.pid(
        act(&["uring", "rename", &p("payload2"), &installed[1]]),
        written,
        vec![("fs.path.target", installed[1].clone())],
    );
    let linked = "Link to a credential file created";
    want.pid(act(&["symlink", "/etc/shadow", &p("l1")]), linked, vec![]);
    want.pid(
        act(&["uring", "symlink", "/etc/shadow", &p("l2")]),
        linked,
        vec![("fs.path.source", "/etc/shadow".into())],
    );
    let own = "e2e io_uring act";
    let plain_mkdir = act(&["mkdir", &p("d1")]);
    let ring_mkdir = act(&["uring", "mkdir", &p("d2")]);
    let plain_connect = act(&["connect", &port]);
    let ring_connect = act(&["uring", "connect", "127.0.0.1", &port]);
    want.pid(plain_mkdir, own, vec![("evt.is_io_uring", "false".into())]);
    want.pid(
        ring_mkdir,
        own,
        vec![
            ("evt.type", "mkdirat".into()),
            ("evt.is_io_uring", "true".into()),
            ("evt.io_uring.op", "IORING_OP_MKDIRAT".into()),
            ("evt.res", "SUCCESS".into()),
            ("fs.path.name", p("d2")),
        ],
    );
    want.pid(
        plain_connect,
        own,
        vec![("evt.is_io_uring", "false".into())],
    );
    want.pid(
        ring_connect,
        own,
        vec![
            ("evt.type", "connect".into()),
            ("evt.is_io_uring", "true".into()),
            ("evt.io_uring.op", "IORING_OP_CONNECT".into()),
            ("fd.rip", "127.0.0.1".into()),
            ("fd.rport", port.clone()),
        ],
    );
    // In a container (seccomp unconfined, as a Kubernetes pod runs by
    // default: podman's default profile refuses io_uring_setup).
    let actor = mamori_e2e::sibling_binary("mamori-actor");
    let mount = format!("{}:/actor:ro", actor.display());
    let image = mamori_e2e::podman::image();
    for (i, how) in [&["open"][..], &["uring", "open"]].into_iter().enumerate() {
        let cidfile = dir.join(format!("cid{i}"));
        let mut args = vec![
            "--cidfile",
            cidfile.to_str().unwrap(),
            "--security-opt",
            "seccomp=unconfined",
            "-v",
            &mount,
            "-v",
            "/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro",
            "-v",
            "/lib64:/lib64:ro",
            image,
            "/actor",
        ];
        args.extend_from_slice(how);
        args.push(mamori_e2e::podman::MARKER);
        mamori_e2e::podman::run(&args);
        let id = std::fs::read_to_string(&cidfile).unwrap().trim()[..12].to_owned();
        want.push(
            mamori_e2e::expect::Who::Field("container.id", id),
            own,
            vec![("evt.is_io_uring", (i == 1).to_string())],
        );
    }
    let failures = want.check(&agent);
    let unpaired = agent.metric("mamori_uring_unpaired_total{half=\"submission\"}");
    drop(listener);
    for f in logs.iter().chain(&installed) {
        let _ = std::fs::remove_file(f);
    }
    finish(agent, &dir, failures);
    assert!(unpaired.is_some(), "no mamori_uring_unpaired metric");
}

/// Another name for a file a rule names — a hard link to it, the file
/// reached through a bind mount — is the file: the rule fires as for its
/// own name, `fd.name` is the file's own path and `fd.alias` the name it
/// was reached by. The kernel's prefilter lets such opens through by the
/// file's identity although their names match no rule.
#[test]
fn another_name_for_a_watched_file_is_the_file() {
    use mamori_e2e::expect::Expectations;

    // On the root file system, beside /etc (a hard link cannot cross).
    let dir = std::path::PathBuf::from(format!("/var/tmp/mamori-alias-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    let link = dir.join("hl");
    std::fs::hard_link("/etc/shadow", &link).unwrap();
    let bind = dir.join("etc");
    let agent = with_default_rules(&[]);
    // The kernel's copy of the identities follows the first events.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let read = "Credential file read by unexpected process";
    let mut want = Expectations::default();
    let own = |alias: Option<String>| {
        let mut f = vec![("fd.name", "/etc/shadow".to_owned())];
        f.extend(alias.map(|a| ("fd.alias", a)));
        f
    };
    want.pid(
        run_actor(&["open", "/etc/shadow"], Some(true)).pid,
        read,
        own(None),
    );
    let link_s = link.to_str().unwrap().to_owned();
    want.pid(
        run_actor(&["open", &link_s], Some(true)).pid,
        read,
        own(Some(link_s.clone())),
    );
    // A bind mount of /etc, in a mount namespace of the actor's own.
    let actor = mamori_e2e::sibling_binary("mamori-actor");
    let through = format!("{}/shadow", bind.display());
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind /etc {} && exec {} open {through}",
            bind.display(),
            actor.display()
        ))
        .spawn()
        .unwrap();
    let pid = out.id();
    assert!(out.wait_with_output().unwrap().status.success());
    want.pid(pid, read, own(Some(through)));
    let failures = want.check(&agent);
    let _ = std::fs::remove_file(&link);
    finish(agent, &dir, failures);
}

/// Acts that would blind the agent are reported by the agent: stopping it
/// with SIGSTOP (the alert comes once it runs again), a thread of it
/// stopped by tgkill, tracing it, removing one of its rules files. Asking
/// it to reload (SIGHUP) is not reported.
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
    want.pid(
        act(&["unlink", extra.to_str().unwrap()]),
        rule,
        vec![("evt.type", "unlink".into())],
    );
    let failures = want.check(&agent);
    let quiet = count(&agent, rule, cont) + count(&agent, rule, hup);
    finish(agent, &dir, failures);
    assert_eq!(quiet, 0, "SIGCONT or SIGHUP reported");
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
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec cat /etc/shadow > /dev/null",
        cgroup.display()
    );
    let child = std::process::Command::new("sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let in_cgroup = child.id();
    assert!(child.wait_with_output().unwrap().status.success());
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

/// A path deeper than the kernel's walk is never compared as if it were
/// whole: `fd.name` is unknown, the end of the path is `fd.partial_name`,
/// and an internal alert says paths could not be resolved. A shallow
/// path is whole.
#[test]
fn a_path_too_deep_to_walk_is_unknown_not_shorter() {
    let tag = std::process::id();
    let top = std::env::temp_dir().join(format!("mamori-deep-{tag}"));
    let mut deep = top.clone();
    for _ in 0..(mamori_common::MAX_PATH_DEPTH + 5) {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let name = format!("mamori-deep-file-{tag}");
    let (far, near) = (deep.join(&name), top.join(&name));
    std::fs::write(&far, "x").unwrap();
    std::fs::write(&near, "x").unwrap();
    let rules = top.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: e2e deep file\n  desc: test\n  condition: evt.type in (open, openat) and \
             fd.filename = {name}\n  output: \"name=%fd.name partial=%fd.partial_name \
             pid=%proc.pid\"\n  priority: NOTICE\n  tags: [T1083]\n"
        ),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let deep_pid = run_actor(&["open", far.to_str().unwrap()], Some(true)).pid;
    let near_pid = run_actor(&["open", near.to_str().unwrap()], Some(true)).pid;
    let deep_alert = agent.wait_alert("e2e deep file", deep_pid);
    let near_alert = agent.wait_alert("e2e deep file", near_pid);
    let internal = agent.wait_alert_where("mamori internal: path not resolved", |_| true);
    assert!(agent.stop().success());
    let _ = std::fs::remove_dir_all(&top);
    let f = deep_alert.expect("no alert for the deep file")["output_fields"].clone();
    assert!(
        f["fd.name"].is_null(),
        "a partial path was given as fd.name: {f}"
    );
    let partial = f["fd.partial_name"].as_str().unwrap_or_default().to_owned();
    assert!(partial.ends_with(&format!("/d/d/{name}")), "{f}");
    let f = near_alert.expect("no alert for the shallow file")["output_fields"].clone();
    assert_eq!(f["fd.name"], near.to_str().unwrap());
    assert!(f["fd.partial_name"].is_null());
    assert!(
        internal.is_some(),
        "no internal alert for the unresolved path"
    );
}
