//! The default rules stay quiet on ordinary activity: the workload in
//! `tests/workloads/benign.sh` (a build, package queries, git, archives, a
//! loopback web server and client, log rotation, cron-like jobs) runs
//! under the agent and must raise no alert at all.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::{fs, path::PathBuf, process::Command, time::Duration};

use mamori_e2e::agent::{Agent, free_port, repo_rules};

#[test]
fn ordinary_activity_raises_no_alert() {
    let dir = std::env::temp_dir().join(format!("mamori-benign-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workloads/benign.sh");

    let agent = Agent::start(&["-r", repo_rules().to_str().unwrap()]);
    let events_before = agent.metric("mamori_events_received_total").unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .arg(free_port().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the workload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Let the agent catch up, then make sure it saw the workload.
    std::thread::sleep(Duration::from_secs(2));
    let seen = agent.metric("mamori_events_received_total").unwrap() - events_before;
    let alerts = agent.alerts();
    assert!(agent.stop().success());
    let _ = fs::remove_dir_all(&dir);

    assert!(seen > 1000.0, "the agent saw only {seen} events");
    let lines: Vec<String> = alerts
        .iter()
        .map(|a| format!("{}: {}", a["rule"], a["output"]))
        .collect();
    assert!(
        lines.is_empty(),
        "{} alert(s) on ordinary activity:\n{}",
        lines.len(),
        lines.join("\n")
    );
}
