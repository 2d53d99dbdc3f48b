//! The delivery latency benchmark (`cargo xtask bench latency`): from the
//! syscall to the alert line on stdout, to the document searchable in
//! Elasticsearch, and to the webhook Alertmanager calls, p50 and p99, on an
//! idle node and on a busy one (a shell exec loop on every CPU).
//!
//! One agent runs the default rules plus a rule on this run's own files,
//! with the Elasticsearch and Alertmanager outputs at their defaults. Each
//! sample opens a new file and takes the time just before the call; the
//! three arrivals are timed where they are seen: the agent's stdout read by
//! this process, the first `_count` (no forced refresh, polled every 10 ms)
//! that finds the document, the receiver's clock. Alertmanager's route
//! sends at once (`group_wait: 0s`); a real route usually waits 30 s more
//! to group.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: failing loudly is right"
)]

use std::{
    fs,
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mamori_e2e::{
    agent::{Agent, now_ns, repo_rules},
    alertmanager::Alertmanager,
    http::request,
    webhook::Receiver,
};
use serde_json::{Value, json};

fn main() {
    let url = std::env::var("MAMORI_BENCH_ES_URL")
        .expect("MAMORI_BENCH_ES_URL (cargo xtask bench latency sets it)");
    let samples: usize = std::env::var("MAMORI_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let dir = std::env::temp_dir().join(format!("mamori-latency-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let ns = format!("latency{}", std::process::id());
    let receiver = Receiver::start();
    let am = Alertmanager::start(&receiver.url("/hook"));
    let rules = dir.join("latency.yaml");
    fs::write(
        &rules,
        format!(
            "- rule: Latency probe\n  desc: the latency benchmark opened its file\n  \
             condition: evt.type in (open, openat, openat2) and fd.name startswith \"{}/probe-\"\n  \
             output: probe %fd.name opened by %proc.name\n  priority: CRITICAL\n  tags: [filesystem]\n",
            dir.display()
        ),
    )
    .unwrap();
    let cfg = dir.join("mamori.yaml");
    fs::write(
        &cfg,
        format!(
            "outputs:\n  elasticsearch:\n    url: {url}\n    namespace: {ns}\n    spool_dir: {}\n  \
             alertmanager:\n    url: {}\n    fields_as_labels: [fd.name]\n",
            dir.join("spool").display(),
            am.url()
        ),
    )
    .unwrap();
    let agent = Agent::start(&[
        "-c",
        cfg.to_str().unwrap(),
        "-r",
        repo_rules().to_str().unwrap(),
        "-r",
        rules.to_str().unwrap(),
    ]);
    let index = format!("logs-mamori.alerts-{ns}");
    let mut report = Vec::new();
    for busy in [false, true] {
        let load = busy.then(Load::start);
        // Warm-up: the first request of each output opens connections.
        sample(
            &agent,
            &receiver,
            &url,
            &index,
            &dir,
            &format!("warm-{busy}"),
        );
        let mut runs = Vec::new();
        for i in 0..samples {
            runs.push(sample(
                &agent,
                &receiver,
                &url,
                &index,
                &dir,
                &format!("{busy}-{i}"),
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(load);
        report.push((if busy { "busy" } else { "idle" }, runs));
    }
    assert!(agent.stop().success());
    println!();
    println!(
        "delivery latency, {samples} samples per row (ms; p99 of {samples} is the 2nd largest)"
    );
    println!(
        "| node | syscall -> alert line p50 / p99 | -> searchable in Elasticsearch p50 / p99 | -> webhook via Alertmanager p50 / p99 |"
    );
    println!("| --- | --- | --- | --- |");
    for (name, runs) in &report {
        let col = |f: fn(&Sample) -> u64| {
            let mut v: Vec<u64> = runs.iter().map(f).collect();
            v.sort_unstable();
            format!("{:.1} / {:.1}", ms(pct(&v, 50)), ms(pct(&v, 99)))
        };
        println!(
            "| {name} | {} | {} | {} |",
            col(|s| s.line),
            col(|s| s.searchable),
            col(|s| s.webhook)
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Nanoseconds from the syscall to each arrival.
struct Sample {
    line: u64,
    searchable: u64,
    webhook: u64,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The `p`th percentile of sorted `v` (nearest rank).
fn pct(v: &[u64], p: usize) -> u64 {
    let rank = (p * v.len()).div_ceil(100).max(1);
    v[rank - 1]
}

fn sample(
    agent: &Agent,
    receiver: &Receiver,
    url: &str,
    index: &str,
    dir: &Path,
    name: &str,
) -> Sample {
    let path = dir.join(format!("probe-{name}"));
    fs::write(&path, "x").unwrap();
    let path = path.to_str().unwrap().to_owned();
    let t0 = now_ns();
    drop(fs::File::open(&path).unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut line, mut searchable, mut webhook) = (None, None, None);
    while line.is_none() || searchable.is_none() || webhook.is_none() {
        assert!(Instant::now() < deadline, "{path}: not delivered in 60 s");
        if line.is_none() {
            line = agent
                .alerts_with_arrival()
                .iter()
                .find(|(a, _)| {
                    a["rule"] == "Latency probe" && a["output_fields"]["fd.name"] == path.as_str()
                })
                .map(|(_, t)| *t);
        }
        if webhook.is_none() {
            webhook = receiver.requests().iter().find_map(|r| {
                let alerts = r.json()["alerts"].as_array().cloned().unwrap_or_default();
                alerts
                    .iter()
                    .any(|a| a["labels"]["fd_name"] == path.as_str())
                    .then_some(r.received_ns)
            });
        }
        if searchable.is_none() && found(url, index, &path) {
            searchable = Some(now_ns());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let since = |t: Option<u64>| t.unwrap().saturating_sub(t0);
    Sample {
        line: since(line),
        searchable: since(searchable),
        webhook: since(webhook),
    }
}

/// Whether a search (no forced refresh) finds the alert on `path`.
fn found(url: &str, index: &str, path: &str) -> bool {
    let q = json!({"query": {"term": {"file.path": path}}});
    match request(
        "POST",
        &format!("{url}/{index}/_count"),
        Some(&q.to_string()),
    ) {
        Some((200, body)) => {
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)["count"]
                .as_u64()
                .unwrap_or(0)
                > 0
        }
        _ => false,
    }
}

/// A busy node: a shell exec loop per CPU (each exec is events the agent
/// processes, and the loops take the CPUs), stopped on drop.
struct Load(Vec<Child>);

impl Load {
    fn start() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Self(
            (0..cpus)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do /bin/true; done"])
                        .stdout(Stdio::null())
                        .process_group(0)
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // The loop and its current child: the whole process group.
            // SAFETY: a plain kill(2) of a group this process made.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}
