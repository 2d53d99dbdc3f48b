//! The default rules on real behaviour: each trigger is performed for real
//! by a child process, and exactly the expected rule must fire for that
//! process, with the fields an analyst needs. Container triggers are in
//! `container_rules.rs`.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use mamori_e2e::{
    agent::{Agent, repo_rules},
    expect::{Expectations, Who},
    podman::{self, busybox_rootfs},
    run_actor,
};

/// Runs the actor, which must succeed, and returns its pid.
fn act(args: &[&str]) -> u32 {
    run_actor(args, Some(true)).pid
}

/// Runs a program to completion and returns its pid (its exit status is
/// not the point: the exec is).
fn spawn(program: &str, args: &[&str]) -> u32 {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _ = child.wait_with_output();
    pid
}

/// Files and mounts the triggers leave on the host, removed on drop even
/// when the test fails.
#[derive(Default)]
struct Cleanup {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    mounts: Vec<PathBuf>,
}

impl Cleanup {
    /// `path` is removed at the end, unless it existed before.
    fn file(&mut self, path: &str) -> String {
        if !Path::new(path).exists() {
            self.files.push(path.into());
        }
        path.to_owned()
    }

    /// Creates `dir` if missing and removes it at the end if it did not exist.
    fn dir(&mut self, dir: &str) {
        if !Path::new(dir).exists() {
            fs::create_dir_all(dir).unwrap();
            self.dirs.push(dir.into());
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for m in &self.mounts {
            let _ = Command::new("umount").arg(m).status();
        }
        for f in &self.files {
            let _ = fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir_all(d);
        }
    }
}

/// Copies `from` to `dir/name` (a program under another name).
fn copy_as(from: &str, dir: &Path, name: &str) -> String {
    let to = dir.join(name);
    fs::copy(from, &to).unwrap();
    to.to_str().unwrap().to_owned()
}

fn f(name: &'static str, value: impl Into<String>) -> (&'static str, String) {
    (name, value.into())
}

#[test]
fn default_rules_fire_on_real_behaviour() {
    let dir = std::env::temp_dir().join(format!("mamori-alerts-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let mut clean = Cleanup::default();
    clean.dirs.push(dir.clone());
    for d in [".ssh", ".aws", "bin", "cg"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    fs::write(p(".ssh/id_rsa"), "not a key").unwrap();
    fs::write(p(".aws/credentials"), "[default]").unwrap();
    fs::write(p("plain"), "x").unwrap();
    fs::write(p("shredme"), "secret").unwrap();
    let shm = clean.file("/dev/shm/mamori-e2e-true");
    fs::copy("/bin/true", &shm).unwrap();
    let bin = clean.file("/usr/local/bin/mamori-e2e-probe");
    let bin_removed = clean.file("/usr/local/bin/mamori-e2e-removed");
    fs::write(&bin_removed, "x").unwrap();
    let cron = clean.file("/etc/cron.d/mamori-e2e-probe");
    let log = clean.file("/var/log/mamori-e2e-probe.log");
    let log_removed = clean.file("/var/log/mamori-e2e-removed.log");
    fs::write(&log_removed, "x").unwrap();
    let unit = clean.file("/etc/systemd/system/mamori-e2e-probe.service");
    let preload = clean.file("/etc/ld.so.preload");
    let pam = clean.file("/etc/pam.d/mamori-e2e-probe");
    let init = clean.file("/etc/init.d/mamori-e2e-probe");
    clean.dir("/etc/sudoers.d");
    let sudoers = clean.file("/etc/sudoers.d/mamori-e2e-probe");
    let hidden = clean.file("/var/tmp/.mamori-e2e-hidden");
    let bins = dir.join("bin");
    let nginx = copy_as("/bin/dash", &bins, "nginx");
    let nmap = copy_as("/bin/true", &bins, "nmap");
    let xmrig = copy_as("/bin/true", &bins, "xmrig");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // A named cgroup v1 hierarchy: its root has a real release_agent.
    let cg = p("cg");
    let mounted = Command::new("mount")
        .args(["-t", "cgroup", "-o", "none,name=mamori-e2e", "cgroup", &cg])
        .status()
        .unwrap()
        .success();
    assert!(mounted, "mounting a named cgroup v1 hierarchy failed");
    clean.mounts.push(cg.clone().into());

    // Module loading may be compiled out of this kernel: watch attempts anyway.
    let agent = Agent::start(&[
        "-r",
        repo_rules().to_str().unwrap(),
        "-o",
        "capture.watch_unimplemented=true",
    ]);
    let mut want = Expectations::default();

    // credential access
    let pid = act(&["open", "/etc/shadow"]);
    want.pid(
        pid,
        "Credential file read by unexpected process",
        vec![
            f("fd.name", "/etc/shadow"),
            f("proc.name", "mamori-actor"),
            f("user.name", "root"),
        ],
    );
    let pid = act(&["open", &p(".ssh/id_rsa")]);
    want.pid(
        pid,
        "SSH private key read",
        vec![f("fd.name", p(".ssh/id_rsa"))],
    );
    let pid = act(&["open", &p(".aws/credentials")]);
    want.pid(
        pid,
        "Cloud credentials read",
        vec![f("fd.name", p(".aws/credentials"))],
    );
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let mem = format!("/proc/{}/mem", sleeper.id());
    let pid = act(&["open", &mem]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    want.pid(
        pid,
        "Process memory read through /proc",
        vec![f("fd.name", mem)],
    );
    let pid = spawn("ln", &["-s", "/etc/shadow", &p("shadow-link")]);
    want.pid(
        pid,
        "Link to a credential file created",
        vec![
            f("fs.path.source", "/etc/shadow"),
            f("fs.path.target", p("shadow-link")),
        ],
    );

    // execution
    let pid = act(&["exec", &shm]);
    want.pid(
        pid,
        "Program executed from shared memory",
        vec![f("proc.exepath", shm.clone())],
    );
    let pid = act(&["memfd-exec", "/bin/true"]);
    want.pid(
        pid,
        "Fileless execution from memory",
        vec![f("proc.exepath", "/memfd:mamori-test")],
    );
    let cmd = "true /dev/tcp/127.0.0.1/9; true";
    let pid = spawn("bash", &["-c", cmd]);
    want.pid(
        pid,
        "Reverse shell tool started",
        vec![f("proc.cmdline", format!("bash -c {cmd}"))],
    );
    // The shell's pid is not ours to know: its parent's command line, unique
    // to this run, finds it.
    let server_script = format!("sh -c true; : mamori-e2e-{}", std::process::id());
    spawn(&nginx, &["-c", &server_script]);
    want.push(
        Who::Field("proc.pcmdline", format!("nginx -c {server_script}")),
        "Shell spawned by a network server",
        vec![f("proc.name", "sh")],
    );
    let pid = act(&["redirect", &port]);
    want.pid(
        pid,
        "Standard input or output redirected to a network socket",
        vec![f("proc.name", "mamori-actor")],
    );
    let mut bash = Command::new("bash")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = bash.id();
    writeln!(
        bash.stdin.take().unwrap(),
        "exec 3<>/dev/tcp/127.0.0.1/{port}"
    )
    .unwrap();
    let _ = bash.wait();
    want.pid(
        pid,
        "Shell made a network connection",
        vec![f("fd.rip", "127.0.0.1"), f("fd.rport", port.clone())],
    );
    let pid = spawn("sh", &["-c", "echo dHJ1ZQo= | base64 -d | sh; true"]);
    want.pid(pid, "Encoded payload piped to a shell", vec![]);
    let child = Command::new("/bin/true")
        .env("LD_PRELOAD", "/tmp/mamori-e2e-absent.so")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _ = child.wait_with_output();
    want.pid(pid, "Library preloaded from a writable directory", vec![]);

    // persistence
    let pid = act(&["create", &p(".ssh/authorized_keys")]);
    want.pid(
        pid,
        "SSH authorized keys modified",
        vec![f("fd.name", p(".ssh/authorized_keys"))],
    );
    let pid = act(&["create", &cron]);
    want.pid(
        pid,
        "Cron job file modified",
        vec![f("fd.name", cron.clone())],
    );
    let pid = act(&["create", &unit]);
    want.pid(
        pid,
        "Systemd unit file written",
        vec![f("fd.name", unit.clone())],
    );
    let pid = act(&["create", &p(".bashrc")]);
    want.pid(
        pid,
        "Shell startup file modified",
        vec![f("fd.name", p(".bashrc"))],
    );
    let pid = act(&["append", &preload]);
    want.pid(pid, "Dynamic linker preload file modified", vec![]);
    let pid = act(&["append", "/etc/passwd"]);
    want.pid(
        pid,
        "Account database modified",
        vec![f("fd.name", "/etc/passwd")],
    );
    let pid = act(&["create", &pam]);
    want.pid(
        pid,
        "PAM configuration modified",
        vec![f("fd.name", pam.clone())],
    );
    let pid = act(&["create", &init]);
    want.pid(
        pid,
        "Init script modified",
        vec![f("fd.name", init.clone())],
    );

    // privilege escalation
    let pid = act(&["chmod-setuid", &p("plain")]);
    want.pid(
        pid,
        "Setuid or setgid bit set",
        vec![f("evt.arg.filename", p("plain"))],
    );
    // Fails with ENOSYS on kernels without modules: the attempt is the point.
    let pid = run_actor(&["init-module"], None).pid;
    want.pid(pid, "Kernel module load attempted", vec![]);
    let pid = act(&["unshare"]);
    want.pid(
        pid,
        "Namespace change by unexpected process",
        vec![f("evt.args", "res=0 flags=CLONE_NEWUTS")],
    );
    let pid = act(&["ptrace"]);
    want.pid(
        pid,
        "Process attached with ptrace",
        vec![f("evt.arg.request", "PTRACE_ATTACH")],
    );
    let pid = act(&["create", &sudoers]);
    want.pid(
        pid,
        "Sudoers configuration modified",
        vec![f("fd.name", sudoers.clone())],
    );
    let pid = act(&["regain-root"]);
    want.pid(
        pid,
        "Non-root process became root",
        vec![f("user.uid", "65534"), f("evt.type", "setresuid")],
    );
    let pid = act(&["capset"]);
    want.pid(pid, "Capabilities changed by unexpected program", vec![]);
    let agent_file = format!("{cg}/release_agent");
    let pid = act(&["append", &agent_file]);
    want.pid(
        pid,
        "Cgroup release_agent written",
        vec![f("fd.name", agent_file)],
    );
    let pid = act(&["userfaultfd"]);
    want.pid(pid, "userfaultfd created by unexpected program", vec![]);

    // defense evasion
    let pid = act(&["create", &bin]);
    want.pid(
        pid,
        "Write below binary directory",
        vec![f("fd.name", bin.clone())],
    );
    let pid = act(&["unlink", &bin_removed]);
    want.pid(
        pid,
        "File removed from a binary directory",
        vec![f("fs.path.name", bin_removed.clone())],
    );
    let pid = act(&["truncate", &p(".bash_history")]);
    want.pid(
        pid,
        "Shell history deleted or truncated",
        vec![f("fd.name", p(".bash_history"))],
    );
    let pid = act(&["unlink", &p(".bash_history")]);
    want.pid(
        pid,
        "Shell history deleted or truncated",
        vec![f("fs.path.name", p(".bash_history"))],
    );
    let pid = act(&["truncate", &log]);
    want.pid(pid, "Log file truncated", vec![f("fd.name", log.clone())]);
    let pid = act(&["unlink", &log_removed]);
    want.pid(
        pid,
        "Log file deleted",
        vec![f("fs.path.name", log_removed.clone())],
    );
    let pid = act(&["create", &hidden]);
    want.pid(
        pid,
        "Hidden file created in a temporary directory",
        vec![f("fd.name", hidden.clone())],
    );
    let pid = spawn("touch", &["-d", "2001-01-01", &p("plain")]);
    want.pid(pid, "File timestamps changed with touch", vec![]);
    let pid = act(&["bpf-load"]);
    want.pid(pid, "BPF program loaded by unexpected process", vec![]);

    // discovery
    let pid = act(&["packet-socket"]);
    want.pid(pid, "Packet socket created", vec![]);
    let pid = spawn(&nmap, &["-sS", "127.0.0.1"]);
    want.pid(pid, "Network scanner started", vec![f("proc.name", "nmap")]);

    // impact
    let pid = spawn(&xmrig, &["-o", "stratum+tcp://127.0.0.1:3333"]);
    want.pid(pid, "Crypto miner started", vec![f("proc.name", "xmrig")]);
    let pid = spawn("shred", &["-u", &p("shredme")]);
    want.pid(pid, "Data destruction tool run", vec![]);

    let failures = want.check(&agent);
    drop(listener);
    assert!(agent.stop().success());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_shell_in_a_podman_container_is_reported_with_its_container_id() {
    let dir = std::env::temp_dir().join(format!("mamori-podman-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let rootfs = dir.join("rootfs");
    busybox_rootfs(&rootfs);
    let cidfile = dir.join("cid");
    let agent = Agent::start(&["-r", repo_rules().to_str().unwrap()]);

    podman::run(&[
        "--cidfile",
        cidfile.to_str().unwrap(),
        "--rootfs",
        rootfs.to_str().unwrap(),
        "/bin/sh",
        "-c",
        "cat /etc/passwd > /dev/null; true",
    ]);
    let full_id = fs::read_to_string(&cidfile).unwrap().trim().to_owned();

    let short_id = &full_id[..12];
    let alert = agent
        .wait_alert_where("Shell started in a container", |f| {
            f["container.id"] == short_id
        })
        .unwrap_or_else(|| panic!("no container shell alert: {:?}", agent.alerts()));
    let f = &alert["output_fields"];
    assert_eq!(f["proc.name"], "sh");
    assert_eq!(f["user.name"], "root", "from the container's own passwd");
    assert!(
        f["proc.cmdline"]
            .as_str()
            .unwrap()
            .contains("cat /etc/passwd")
    );
    // The runtime's own namespace work for this container is not an alert:
    // in the container, or on the host by a helper naming this container
    // (its id or rootfs on the command line). Other hosts' processes are
    // not this test's business.
    let ours = |f: &serde_json::Value| {
        let cmdline = f["proc.cmdline"].as_str().unwrap_or_default();
        f["container.id"] == short_id
            || (f["container.id"] == "host"
                && (cmdline.contains(&full_id) || cmdline.contains(dir.to_str().unwrap())))
    };
    let noisy: Vec<String> = agent
        .alerts()
        .iter()
        .filter(|a| a["rule"] == "Namespace change by unexpected process")
        .filter(|a| ours(&a["output_fields"]))
        .map(|a| a["output"].to_string())
        .collect();
    assert!(noisy.is_empty(), "{noisy:?}");
    assert!(agent.stop().success());
    let _ = fs::remove_dir_all(&dir);
}

/// On a kernel that does not implement a syscall a rule watches (module
/// loading compiled out), the rule is named at start as one that cannot
/// fire; asked to, the agent watches the attempts.
#[test]
fn a_rule_on_unimplemented_syscalls_is_reported_at_start() {
    let unimplemented =
        !Path::new("/sys/kernel/tracing/events/syscalls/sys_exit_init_module").exists();
    let agent = Agent::start_logged(&["-r", repo_rules().to_str().unwrap()]);
    let pid = run_actor(&["init-module"], None).pid;
    let fired = agent
        .wait_alert("Kernel module load attempted", pid)
        .is_some();
    let log = agent.log();
    assert!(agent.stop().success());
    let named = log.lines().any(|l| {
        l.contains("this rule can never fire here") && l.contains("Kernel module load attempted")
    });
    if unimplemented {
        assert!(named, "the rule is not named at start:\n{log}");
        assert!(!fired, "watched although not asked to");
    } else {
        assert!(
            !named && fired,
            "a kernel with modules: the rule works\n{log}"
        );
    }
}
