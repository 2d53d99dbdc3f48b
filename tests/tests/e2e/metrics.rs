//! `/metrics` and `/healthz` of a running agent: every family the README
//! promises is there, with values that follow real activity.

use mamori_e2e::{
    agent::{Agent, http_get, repo_rules},
    es::wait_until,
    run_actor,
};

/// Built by `cargo xtask prometheus` (part of `cargo xtask test`).
const PROMTOOL: &str = "/var/lib/mamori-tools/bin/promtool";

/// `promtool ARGS` in `dir`: its output, after checking it succeeded.
fn promtool(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(PROMTOOL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (cargo xtask prometheus builds it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

/// The shipped Prometheus alerting rules load, their unit tests (agent
/// down, blind, losing events or alerts, a refused reload, an unreadable
/// rules ConfigMap, nodes on
/// different rules) pass, and every metric they read is one a running
/// agent serves.
#[test]
fn the_shipped_prometheus_rules_pass_their_tests_and_read_real_metrics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus");
    assert!(
        promtool(&dir, &["check", "rules", "mamori-alerts.yaml"])
            .contains("SUCCESS: 9 rules found")
    );
    assert!(promtool(&dir, &["test", "rules", "mamori-alerts.test.yaml"]).contains("SUCCESS"));

    // An HTTP output (to a port nothing listens on) for its queue gauge.
    let agent = Agent::start(&[
        "-r",
        repo_rules().to_str().unwrap(),
        "-o",
        "outputs.alertmanager.url=http://127.0.0.1:9",
    ]);
    let (_, text) = http_get(agent.port, "/metrics").unwrap();
    let rules = std::fs::read_to_string(dir.join("mamori-alerts.yaml")).unwrap();
    let mut names: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("mamori_"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        // The spool is the Elasticsearch output's (its own tests read it).
        if name == "mamori_spool_pending" {
            continue;
        }
        // A family without samples yet still has its TYPE line.
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is not served:\n{text}"
        );
    }
    assert!(agent.stop().success());
}

#[test]
fn metrics_cover_the_pipeline_and_health_is_ok() {
    let agent = Agent::start(&["-r", repo_rules().to_str().unwrap()]);
    let pid = run_actor(&["open", "/etc/shadow"], Some(true)).pid;
    assert!(
        agent
            .wait_alert("Credential file read by unexpected process", pid)
            .is_some()
    );
    wait_until(10, "the process table published", || {
        agent.metric("mamori_processes").unwrap_or(0.0) > 10.0
    });
    let (status, text) = http_get(agent.port, "/metrics").unwrap();
    assert_eq!(status, 200);
    for family in [
        "mamori_kernel_events_sent_total{cpu=\"0\"}",
        "mamori_kernel_events_lost_total{cpu=\"0\",reason=\"ring_full\"}",
        "mamori_events_received_total",
        "mamori_events_total{type=\"openat\"}",
        "mamori_alerts_total{rule=\"Credential file read by unexpected process\",priority=\"Warning\"}",
        "mamori_output_alerts_total{output=\"stdout\",status=\"sent\"}",
        "mamori_process_cpu_seconds_total",
        "mamori_process_resident_memory_bytes",
        "mamori_ready 1",
        "mamori_rules_reloads_total 0",
        "mamori_rules_reload_failures_total 0",
        "mamori_processes ",
        "mamori_processes_evicted_total 0",
        "mamori_stage_progress_age_seconds{stage=\"reader\"}",
        "mamori_stage_progress_age_seconds{stage=\"detect\"}",
        "mamori_stage_progress_age_seconds{stage=\"outputs\"}",
        "mamori_container_lookups_total",
        "mamori_containers",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    // Prometheus's own checker accepts the default (classic text) format.
    let promtool = std::process::Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (cargo xtask prometheus builds it)");
    use std::io::Write;
    promtool
        .stdin
        .as_ref()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        text.contains("# TYPE mamori_rules_reloads_total counter"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    // OpenMetrics when asked for (as Prometheus does): every sample belongs to a typed family (a counter's
    // samples end in `_total`, a histogram's in `_bucket`, `_sum`,
    // `_count`), and the text ends with `# EOF`.
    let (status, text) = mamori_e2e::http::request_with(
        "GET",
        &format!("http://127.0.0.1:{}/metrics", agent.port),
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                let f = name.strip_suffix(s)?;
                text.contains(&format!("# TYPE {f} ")).then_some(f)
            })
            .unwrap_or(name);
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{name} has no TYPE line"
        );
    }
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    let health = http_get(agent.port, "/healthz").unwrap();
    assert_eq!(health.0, 200, "{health:?}");
    assert!(agent.stop().success());
}
