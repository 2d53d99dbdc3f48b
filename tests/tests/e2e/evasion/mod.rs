//! Attacks that go around a rule by another door: each test performs the
//! evasive act for real, with the plain act beside it as the control, and
//! asserts what the agent reports for each process. By class: `doors`
//! (other syscalls, io_uring, 32-bit calls), `identity` (processes,
//! containers, names), `paths` (files by identity, walks, directory fds,
//! races), `agent` (blinding and tampering).

mod agent;
mod doors;
mod identity;
mod paths;

use mamori_e2e::agent::{Agent, repo_rules};

/// Alerts of `rule` raised for `pid`.
pub(super) fn count(agent: &Agent, rule: &str, pid: u32) -> usize {
    agent
        .alerts()
        .iter()
        .filter(|a| {
            a["rule"] == rule && a["output_fields"]["proc.pid"].as_u64() == Some(pid.into())
        })
        .count()
}

/// The agent with the default rules and `more` arguments after them.
pub(super) fn with_default_rules(more: &[&str]) -> Agent {
    let rules = repo_rules();
    let mut args = vec!["-r", rules.to_str().unwrap()];
    args.extend_from_slice(more);
    Agent::start(&args)
}

/// A fresh directory of this test process's own, named after the test.
pub(super) fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mamori-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Stops the agent, removes `dir`, and fails with every expectation
/// `check` found unmet.
pub(super) fn finish(agent: Agent, dir: &std::path::Path, failures: Vec<String>) {
    let _ = std::fs::remove_dir_all(dir);
    assert!(agent.stop().success());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs a shell that moves itself into `cgroup` and then reads
/// /etc/shadow as `cat`; returns its pid.
pub(super) fn read_shadow_in_cgroup(cgroup: &std::path::Path) -> u32 {
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
    pid
}
