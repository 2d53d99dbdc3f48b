//! The default rules on real behaviour: each trigger is performed for real
//! by a child process, and exactly the expected rule must fire for that
//! process, with the fields an analyst needs.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::{collections::BTreeSet, fs, process::Command};

use mamori_e2e::{
    agent::{Agent, repo_rules},
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
        vec![("evt.arg.flags", "CLONE_NEWUTS".into())],
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
