//! Acts that make no classic syscall, and the other syscalls that do the
//! same harm: each raises the rule the plain act raises.

use mamori_e2e::agent::{Agent, repo_rules};
use mamori_e2e::run_actor;

use super::{count, finish, scratch, with_default_rules};

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
    // ... past the environment's capture bound (4,096 bytes), cut inside
    // its name, and after a harmless LD_PRELOAD (ld.so takes the last).
    // A long LD_LIBRARY_PATH beside it (cargo sets one) is not scanned, so
    // it raises nothing more: `check` fails on any other rule for the pid.
    let lib = "LD_PRELOAD=/tmp/mamori-e2e-none.so";
    for env in [
        vec!["A_PAD=@5000*x", "LD_LIBRARY_PATH=@300*:|/opt/lib", lib],
        vec!["A_PAD=@4090*x", lib],
        vec!["LD_PRELOAD=/usr/lib/mamori-none.so", lib],
    ] {
        let mut args = vec!["exec-env", "/bin/true"];
        args.extend(env);
        want.pid(
            act(&args),
            "Library preloaded from a writable directory",
            vec![],
        );
    }
    // Loader variables that cannot all be read: one padded past what is
    // kept of each, and one behind 40,000 environment strings.
    for env in [
        vec!["A_PAD=@5000*x", "LD_PRELOAD=@300*:|/tmp/mamori-e2e-none.so"],
        vec!["@40000", lib],
    ] {
        let mut args = vec!["exec-env", "/bin/true"];
        args.extend(env);
        want.pid(
            act(&args),
            "Loader variables hidden from inspection",
            vec![],
        );
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
