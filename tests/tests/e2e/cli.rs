//! The `mamori` binary as an operator runs it: readiness, metrics, the
//! internal loss alert, and a clean exit on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use mamori_e2e::{
    agent::{free_port, http_get, repo_rules},
    sibling_binary,
};

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Waits for /readyz to answer 200.
fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_get(port, "/readyz").is_some_and(|(status, _)| status == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "mamori never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops the agent while a flood overflows its ring, then lets it go.
fn overflow(child: &Child) {
    signal(child, libc::SIGSTOP);
    let status = Command::new(sibling_binary("mamori-actor"))
        .args(["flood", "100000"])
        .status()
        .unwrap();
    assert!(status.success());
    signal(child, libc::SIGCONT);
}

/// Reads stdout lines on a thread so the agent never blocks on its pipe.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn runs_reports_loss_and_exits_cleanly_on_sigterm() {
    let port = free_port();
    // The flood opens /dev/null, which no default rule names (the kernel
    // would drop it): this rule makes the kernel send it, and alerts on
    // nothing (no process has that name).
    let dir = std::env::temp_dir().join(format!("mamori-cli-loss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flood_rule = dir.join("flood.yaml");
    std::fs::write(
        &flood_rule,
        "- rule: Flood\n  desc: makes the kernel send the flood\n  \
         condition: evt.type in (open, openat) and fd.name = /dev/null and proc.name = no-such-process\n  \
         output: flood\n  priority: DEBUG\n",
    )
    .unwrap();
    let mut child = Command::new(sibling_binary("mamori"))
        .args([
            "run",
            "--json",
            "--ring-mib",
            "1",
            "--health-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--rules", repo_rules().to_str().unwrap()])
        .args(["--rules", flood_rule.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = lines(&mut child);

    // The health server listens before the rules load and the programs
    // pass the verifier (a second or more): its first answer is 503.
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(r) = http_get(port, "/readyz") {
            break r;
        }
        assert!(Instant::now() < deadline, "/readyz never answered");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(first.0, 503, "before attach: {first:?}");
    wait_ready(port);
    assert_eq!(http_get(port, "/healthz").unwrap().0, 200);

    // Stop the agent while a flood overflows its 1 MiB ring, then let it go.
    overflow(&child);

    let deadline = Instant::now() + Duration::from_secs(15);
    let alert = loop {
        // Alerts of other processes may keep coming: the deadline holds.
        assert!(Instant::now() < deadline, "no loss alert on stdout");
        let line = out
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no loss alert on stdout");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["rule"] == "mamori internal: event loss" {
            break v;
        }
    };
    assert_eq!(alert["priority"], "Critical");
    assert_eq!(alert["source"], "internal");
    assert_eq!(alert["tags"][0], "mamori_internal");
    assert!(
        alert["output_fields"]["n_lost"].as_u64().unwrap() > 0,
        "{alert}"
    );

    let (_, metrics) = http_get(port, "/metrics").unwrap();
    let lost: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("mamori_kernel_events_lost_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(lost > 0, "{metrics}");
    assert!(metrics.contains("mamori_events_total{type=\"openat\"}"));

    // A second overflow, within the 30 s that follow an alert, then stop:
    // its losses are reported at shutdown, and the alerts' counts add up
    // to every loss.
    overflow(&child);
    signal(&child, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mamori did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut losses = vec![alert];
    losses.extend(
        out.iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .filter(|v| v["rule"] == "mamori internal: event loss"),
    );
    let n = |a: &serde_json::Value, k: &str| a["output_fields"][k].as_u64().unwrap();
    let last = losses.last().unwrap();
    assert!(
        losses.len() >= 2,
        "the second overflow was not reported at shutdown"
    );
    assert!(n(last, "n_lost_total") > n(&losses[0], "n_lost_total"));
    assert_eq!(
        losses.iter().map(|a| n(a, "n_lost")).sum::<u64>(),
        n(last, "n_lost_total"),
        "the loss alerts do not add up to every loss: {losses:#?}"
    );
}

#[test]
fn json_is_accepted_before_or_after_the_subcommand() {
    for args in [["--json", "run", "--help"], ["run", "--json", "--help"]] {
        let out = Command::new(sibling_binary("mamori"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_missing_rules_path_stops_the_start_with_its_name() {
    let out = Command::new(sibling_binary("mamori"))
        .args(["run", "-r", "/nonexistent/mamori-rules"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/mamori-rules"), "{err}");
}

#[test]
fn a_broken_rules_file_is_refused_with_its_position() {
    let dir = std::env::temp_dir().join(format!("mamori-cli-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "- rule: r\n  desc: d\n  condition: evt.type = openat and proc.nme = x\n  output: o\n  priority: WARNING\n").unwrap();
    for args in [vec!["run", "-r"], vec!["rules", "validate", "-r"]] {
        let out = Command::new(sibling_binary("mamori"))
            .args(&args)
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad.yaml:3:36") && err.contains("proc.nme"),
            "{args:?}: {err}"
        );
    }
    let out = Command::new(sibling_binary("mamori"))
        .args(["rules", "validate", "--json", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"][0]["line"], 3);
    assert_eq!(v["errors"][0]["column"], 36);
    assert_eq!(v["rules"], 1);
}

#[test]
fn a_bad_config_key_is_named() {
    let dir = std::env::temp_dir().join(format!("mamori-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad.yaml");
    std::fs::write(&cfg, "outputs:\n  stdot: {}\n").unwrap();
    let out = Command::new(sibling_binary("mamori"))
        .args(["run", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdot") && err.contains("bad.yaml"), "{err}");
}

#[test]
fn config_check_validates_without_running_and_hides_credentials() {
    let check = |args: &[&str]| {
        Command::new(sibling_binary("mamori"))
            .args(["config", "check"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = check(&[
        "-o",
        "outputs.elasticsearch.url=https://writer:s3cret@es.example:9200",
        "-o",
        "capture.ring_mib=16",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("elasticsearch https://es.example:9200/"),
        "{stdout}"
    );
    assert!(stdout.contains("16 MiB"), "{stdout}");
    assert!(!stdout.contains("s3cret"), "credentials echoed: {stdout}");

    let out = check(&["-o", "capture.ring_mib=3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("capture.ring_mib"), "{err}");

    // --json: one document, config and rules report together.
    let out = check(&[
        "--json",
        "-o",
        "capture.ring_mib=32",
        "-o",
        "rule_matching=all",
    ]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["config"]["ring_mib"], 32);
    assert_eq!(doc["config"]["rule_matching"], "all");
    assert_eq!(doc["rules"]["errors"], serde_json::json!([]));
    assert!(doc["rules"]["rules"].as_u64().unwrap() > 10);

    let out = check(&["-o", "outputs.stdot.enabled=false"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdot"));
}

#[test]
fn fields_mamori_does_not_fill_are_named_by_validate_and_fields() {
    let dir = std::env::temp_dir().join(format!("mamori-cli-unfilled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("r.yaml");
    std::fs::write(
        &file,
        "- rule: by cpu\n  desc: d\n  condition: evt.type = openat and evt.cpu = 1\n  output: o\n  priority: INFO\n",
    )
    .unwrap();
    let out = Command::new(sibling_binary("mamori"))
        .args(["rules", "validate", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    // A warning, not an error: the rules load.
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("r.yaml:1:3"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.trim_start().starts_with("evt.cpu: ") && l.contains("'by cpu'")),
        "{err}"
    );
    // The default rules need nothing mamori does not fill.
    let out = Command::new(sibling_binary("mamori"))
        .args(["rules", "validate", "-r"])
        .arg(repo_rules())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("every field these rules use is filled"),
        "{err}"
    );

    let out = Command::new(sibling_binary("mamori"))
        .args(["fields", "--json"])
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let fill = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .map(|r| r["fill"].clone())
            .unwrap()
    };
    assert_eq!(fill("proc.name")["state"], "filled");
    assert_eq!(fill("k8s.pod.name")["state"], "partial");
    assert_eq!(fill("evt.cpu")["state"], "never");
    assert!(
        fill("evt.cpu")["when"]
            .as_str()
            .is_some_and(|w| !w.is_empty())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
