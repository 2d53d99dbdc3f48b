//! The default rules on real behaviour: each trigger is performed for real
//! by a child process, and exactly the expected rule must fire for that
//! process, with the fields an analyst needs.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::{collections::BTreeSet, fs, process::Command};

use mamori_e2e::{
    agent::{Agent, repo_rules},
    podman::{self, busybox_rootfs},
    run_actor,
};

/// (pid, rule, output fields that must hold).
type Expected<'a> = (u32, &'a str, Vec<(&'a str, String)>);

/// Runs the actor, which must succeed, and returns its pid.
fn act(args: &[&str]) -> u32 {
    run_actor(args, Some(true)).pid
}

#[test]
fn default_rules_fire_on_real_behaviour() {
    let dir = std::env::temp_dir().join(format!("mamori-alerts-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join(".ssh")).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    fs::write(p(".ssh/id_rsa"), "not a key").unwrap();
    fs::write(p("plain"), "x").unwrap();
    let shm = "/dev/shm/mamori-e2e-true";
    fs::copy("/bin/true", shm).unwrap();
    let bin = "/usr/local/bin/mamori-e2e-probe";
    let cron = "/etc/cron.d/mamori-e2e-probe";
    let log = "/var/log/mamori-e2e-probe.log";

    let agent = Agent::start(&["-r", repo_rules().to_str().unwrap()]);

    let mut expected: Vec<Expected> = Vec::new();
    let pid = act(&["open", "/etc/shadow"]);
    expected.push((
        pid,
        "Credential file read by unexpected process",
        vec![
            ("fd.name", "/etc/shadow".into()),
            ("proc.name", "mamori-actor".into()),
            ("user.name", "root".into()),
        ],
    ));
    let pid = act(&["exec", shm]);
    expected.push((
        pid,
        "Program executed from shared memory",
        vec![("proc.exepath", shm.into())],
    ));
    let pid = act(&["create", bin]);
    expected.push((
        pid,
        "Write below binary directory",
        vec![("fd.name", bin.into())],
    ));
    let pid = act(&["memfd-exec", "/bin/true"]);
    expected.push((
        pid,
        "Fileless execution from memory",
        vec![("proc.exepath", "/memfd:mamori-test".into())],
    ));
    let pid = act(&["ptrace"]);
    expected.push((
        pid,
        "Process attached with ptrace",
        vec![("evt.arg.request", "PTRACE_ATTACH".into())],
    ));
    let pid = act(&["chmod-setuid", &p("plain")]);
    expected.push((
        pid,
        "Setuid or setgid bit set",
        vec![("evt.arg.filename", p("plain"))],
    ));
    // Fails with ENOSYS on kernels without modules: the attempt is the point.
    let pid = run_actor(&["init-module"], None).pid;
    expected.push((pid, "Kernel module load attempted", vec![]));
    let pid = act(&["packet-socket"]);
    expected.push((pid, "Packet socket created", vec![]));
    let pid = act(&["unshare"]);
    expected.push((
        pid,
        "Namespace change by unexpected process",
        vec![("evt.args", "res=0 flags=CLONE_NEWUTS".into())],
    ));
    let pid = act(&["create", &p(".ssh/authorized_keys")]);
    expected.push((
        pid,
        "SSH authorized keys modified",
        vec![("fd.name", p(".ssh/authorized_keys"))],
    ));
    let pid = act(&["open", &p(".ssh/id_rsa")]);
    expected.push((
        pid,
        "SSH private key read",
        vec![("fd.name", p(".ssh/id_rsa"))],
    ));
    let pid = act(&["truncate", log]);
    expected.push((pid, "Log file truncated", vec![("fd.name", log.into())]));
    let pid = act(&["truncate", &p(".bash_history")]);
    expected.push((
        pid,
        "Shell history deleted or truncated",
        vec![("fd.name", p(".bash_history"))],
    ));
    let pid = act(&["unlink", &p(".bash_history")]);
    expected.push((
        pid,
        "Shell history deleted or truncated",
        vec![("fs.path.name", p(".bash_history"))],
    ));
    let pid = act(&["create", cron]);
    expected.push((
        pid,
        "Cron job file modified",
        vec![("fd.name", cron.into())],
    ));
    let shell = Command::new("bash")
        .args(["-c", "true /dev/tcp/127.0.0.1/9; true"])
        .spawn()
        .unwrap();
    let pid = shell.id();
    let _ = shell.wait_with_output();
    expected.push((
        pid,
        "Reverse shell tool started",
        vec![(
            "proc.cmdline",
            "bash -c true /dev/tcp/127.0.0.1/9; true".into(),
        )],
    ));

    let mut failures = Vec::new();
    for (pid, rule, fields) in &expected {
        let Some(a) = agent.wait_alert(rule, *pid) else {
            failures.push(format!("no `{rule}` alert for pid {pid}"));
            continue;
        };
        for (f, want) in fields {
            if a["output_fields"][f].as_str() != Some(want.as_str()) {
                failures.push(format!(
                    "`{rule}`: {f} = {} (want {want})",
                    a["output_fields"][f]
                ));
            }
        }
        assert_eq!(a["source"], "syscall");
        assert!(
            a["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_str().unwrap().starts_with('T')),
            "{a}"
        );
    }
    // Exactly these rules fired for these processes.
    let pids: BTreeSet<u64> = expected.iter().map(|(p, ..)| u64::from(*p)).collect();
    for a in agent.alerts() {
        let Some(pid) = a["output_fields"]["proc.pid"].as_u64() else {
            continue;
        };
        if pids.contains(&pid)
            && !expected
                .iter()
                .any(|(p, r, _)| u64::from(*p) == pid && a["rule"] == *r)
        {
            failures.push(format!(
                "unexpected `{}` for pid {pid}: {}",
                a["rule"], a["output"]
            ));
        }
    }

    for f in [shm, bin, cron, log] {
        let _ = fs::remove_file(f);
    }
    let _ = fs::remove_dir_all(&dir);
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

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let alert = loop {
        let found = agent
            .alerts()
            .into_iter()
            .find(|a| a["rule"] == "Shell started in a container");
        if let Some(a) = found {
            break a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no container shell alert: {:?}",
            agent.alerts()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let f = &alert["output_fields"];
    assert_eq!(f["container.id"], full_id[..12], "{alert}");
    assert_eq!(f["proc.name"], "sh");
    assert_eq!(f["user.name"], "root", "from the container's own passwd");
    assert!(
        f["proc.cmdline"]
            .as_str()
            .unwrap()
            .contains("cat /etc/passwd")
    );
    // The runtime's own namespace work is not an alert.
    let noisy: Vec<String> = agent
        .alerts()
        .iter()
        .filter(|a| a["rule"] == "Namespace change by unexpected process")
        .map(|a| a["output"].to_string())
        .collect();
    assert!(noisy.is_empty(), "{noisy:?}");
    assert!(agent.stop().success());
    let _ = fs::remove_dir_all(&dir);
}
