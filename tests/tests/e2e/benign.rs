//! The default rules stay quiet on ordinary activity: the workload in
//! `tests/workloads/benign.sh` (a build, package queries, git, archives, a
//! loopback web server and client, log rotation, cron-like jobs) runs
//! under the agent and must raise no alert at all. The workload runs in a
//! session of its own and every default rule's output is extended with
//! `proc.sid`, so the alerts of other processes on a busy host are told
//! apart and left alone; the agent's own (internal) alerts count too.

use std::{
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use mamori_e2e::agent::{Agent, free_port, repo_rules};

#[test]
fn ordinary_activity_raises_no_alert() {
    let dir = std::env::temp_dir().join(format!("mamori-benign-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workloads/benign.sh");

    let session = session_output(&dir);
    let agent = Agent::start(&[
        "-r",
        repo_rules().to_str().unwrap(),
        "-r",
        session.to_str().unwrap(),
    ]);
    let events_before = agent.metric("mamori_events_received_total").unwrap();
    let mut workload = Command::new("bash");
    workload.arg(&script).arg(&dir).arg(free_port().to_string());
    // SAFETY: setsid is async-signal-safe; the child then leads a new
    // session whose id is its pid.
    unsafe {
        workload.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let child = workload
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sid = u64::from(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the workload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Let the agent catch up, then make sure it saw the workload.
    std::thread::sleep(Duration::from_secs(2));
    let seen = agent.metric("mamori_events_received_total").unwrap() - events_before;
    let (status, alerts) = agent.stop_with_alerts();
    assert!(status.success());
    let _ = fs::remove_dir_all(&dir);

    assert!(seen > 1000.0, "the agent saw only {seen} events");
    let lines: Vec<String> = alerts
        .iter()
        .filter(|a| {
            a["source"] == "internal" || a["output_fields"]["proc.sid"].as_u64() == Some(sid)
        })
        .map(|a| format!("{}: {}", a["rule"], a["output"]))
        .collect();
    assert!(
        lines.is_empty(),
        "{} alert(s) on ordinary activity:\n{}",
        lines.len(),
        lines.join("\n")
    );
}

/// A rules file that appends ` session=%proc.sid` to the output of every
/// default rule (Falco's `override: {output: append}`), so each alert says
/// which session raised it.
fn session_output(dir: &Path) -> PathBuf {
    let mut overlay = String::new();
    for entry in fs::read_dir(repo_rules()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for name in fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("- rule: "))
        {
            overlay.push_str(&format!(
                "- rule: {}\n  output: \"session=%proc.sid\"\n  override:\n    output: append\n",
                serde_json::to_string(name.trim()).unwrap()
            ));
        }
    }
    assert!(overlay.len() > 100, "no default rules found");
    let path = dir.join("session-output.yaml");
    fs::write(&path, overlay).unwrap();
    path
}
