//! Record and replay: `mamori run --record` writes the live event stream,
//! `mamori replay` runs it through the rules offline and must raise the
//! same alerts the live agent raised; a rule written afterwards finds past
//! activity.

use std::{collections::BTreeSet, fs, process::Command};

use mamori_e2e::{
    agent::{Agent, repo_rules},
    run_actor, sibling_binary,
};

/// `mamori replay FILE ARGS... --json`: the alerts, and the summary.
fn replay(file: &str, args: &[&str]) -> (Vec<serde_json::Value>, String) {
    let out = Command::new(sibling_binary("mamori"))
        .args(["replay", file, "--json"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "replay failed: {stderr}");
    let alerts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (alerts, stderr)
}

/// (rule, pid) of each alert.
fn keys(alerts: &[serde_json::Value]) -> BTreeSet<(String, u64)> {
    alerts
        .iter()
        .filter_map(|a| {
            Some((
                a["rule"].as_str()?.to_owned(),
                a["output_fields"]["proc.pid"].as_u64()?,
            ))
        })
        .collect()
}

#[test]
fn a_recording_replays_to_the_same_alerts() {
    let dir = std::env::temp_dir().join(format!("mamori-replay-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join(".ssh")).unwrap();
    let key = dir.join(".ssh/id_rsa");
    fs::write(&key, "not a key").unwrap();
    // A name that no output format may break.
    let odd = dir.join("new\nline \u{1b}[31mred");
    fs::write(&odd, "x").unwrap();
    let file = dir.join("events.jsonl.gz");
    let rec = file.to_str().unwrap();

    let agent = Agent::start(&["-r", repo_rules().to_str().unwrap(), "--record", rec]);
    let shadow = run_actor(&["open", "/etc/shadow"], Some(true)).pid;
    let ssh = run_actor(&["open", key.to_str().unwrap()], Some(true)).pid;
    let odd_pid = run_actor(&["open", odd.to_str().unwrap()], Some(true)).pid;
    assert!(agent.wait_alert("SSH private key read", ssh).is_some());
    assert!(
        agent
            .wait_alert("Credential file read by unexpected process", shadow)
            .is_some()
    );
    let live = agent.alerts();
    assert!(agent.stop().success());

    let (replayed, summary) = replay(rec, &["-r", repo_rules().to_str().unwrap()]);
    assert!(summary.contains("replayed "), "{summary}");
    // Same rules for the same processes, with the same fields.
    let ours: BTreeSet<u64> = [shadow, ssh, odd_pid].map(u64::from).into();
    let mine = |a: &BTreeSet<(String, u64)>| -> BTreeSet<(String, u64)> {
        a.iter()
            .filter(|(_, p)| ours.contains(p))
            .cloned()
            .collect()
    };
    assert_eq!(mine(&keys(&replayed)), mine(&keys(&live)));
    let a = replayed
        .iter()
        .find(|a| a["rule"] == "SSH private key read" && a["output_fields"]["proc.pid"] == ssh)
        .unwrap();
    assert_eq!(a["output_fields"]["fd.name"], key.to_str().unwrap());
    assert_eq!(a["output_fields"]["proc.name"], "mamori-actor");

    // A rule written after the fact finds the odd file's open in the past.
    let rule = dir.join("hunt.yaml");
    fs::write(
        &rule,
        "- rule: Odd file opened\n  desc: hunt\n  condition: evt.type = openat and fd.name contains \"new\"\n  output: odd %fd.name by %proc.pid\n  priority: NOTICE\n",
    )
    .unwrap();
    let (hunted, _) = replay(rec, &["-r", rule.to_str().unwrap()]);
    let hit = hunted
        .iter()
        .find(|a| a["output_fields"]["proc.pid"] == u64::from(odd_pid))
        .expect("the new rule finds the recorded open");
    // Control characters in names are escaped in every output.
    let escaped = odd
        .to_str()
        .unwrap()
        .replace('\n', "\\n")
        .replace('\x1b', "\\x1b");
    assert_eq!(hit["output_fields"]["fd.name"], escaped);

    // Why the key rule matched the key read, and not the /etc/shadow read.
    let explain = |pid: u32| -> serde_json::Value {
        let filter = format!(
            "proc.pid = {pid} and evt.type = openat and evt.rawres >= 0 and fd.name in (/etc/shadow, {})",
            key.display()
        );
        let out = Command::new(sibling_binary("mamori"))
            .args([
                "rules",
                "explain",
                "SSH private key read",
                "--recording",
                rec,
            ])
            .args(["--filter", &filter, "--json"])
            .args(["-r", repo_rules().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let yes = explain(ssh);
    assert_eq!(yes["held"], true, "{yes}");
    let no = explain(shadow);
    assert_eq!(no["held"], false, "{no}");
    let parts = no["children"][0]["children"].as_array().unwrap();
    let failed: Vec<&str> = parts
        .iter()
        .filter(|p| p["held"] == false)
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{no}");
    assert!(
        failed[0].contains("fd.name startswith /etc/ssh/ssh_host_"),
        "{no}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn rules_test_passes_the_default_tests_and_shows_a_diff_on_failure() {
    let tests = repo_rules().join("tests/mamori_rules.test.yaml");
    let ok = Command::new(sibling_binary("mamori"))
        .args(["rules", "test", tests.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");

    let dir = std::env::temp_dir().join(format!("mamori-rtest-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    fs::write(
        &bad,
        "tests:\n  - name: wrong\n    event:\n      type: openat\n      res: 3\n      args: {name: /etc/shadow, flags: O_RDONLY}\n      process: {name: cat}\n    expect: []\n",
    )
    .unwrap();
    let out = Command::new(sibling_binary("mamori"))
        .args(["rules", "test", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  wrong"), "{text}");
    assert!(
        text.contains("+ `Credential file read by unexpected process` fired, not expected"),
        "{text}"
    );
    let _ = fs::remove_dir_all(&dir);
}
