//! `cargo xtask bench capture`: what an agent costs the workloads beside
//! it. Every subject (nothing, bpftrace with one tracepoint, mamori with
//! its default rules, mamori with Falco's stable rules) runs the same micro
//! loops pinned to one CPU, in rounds whose subject order rotates, so
//! drift and warm-up spread over all of them; then the kernel programs'
//! own time (BPF statistics), idle use, and two macro workloads. The
//! results go to `target/bench/` (JSON, Markdown, SVG; see `report.rs`).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::{Value, json};

use super::{
    loops::{self, LOOPS},
    macros, measure, report,
    subjects::{Kind, Subject, labelled, metric, ticks_per_s},
};
use crate::cmd;

/// Programs that need Debian packages the test setup does not install.
const TOOLS: &[(&str, &str)] = &[
    ("bpftrace", "bpftrace"),
    ("redis-server", "redis-server"),
    ("redis-benchmark", "redis-tools"),
];

pub fn run(quick: bool) -> anyhow::Result<()> {
    tools()?;
    loops::prepare()?;
    let subjects = subjects()?;
    let rounds = if quick { 3 } else { 7 };
    let scale = if quick { 4 } else { 1 };

    let mut samples: BTreeMap<&str, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    let mut usage: BTreeMap<&str, Usage> = BTreeMap::new();
    let mut per_loop: BTreeMap<(&str, &str), Usage> = BTreeMap::new();
    for round in 0..rounds {
        for s in rotated(&subjects, round) {
            let running = s.start(&[])?;
            let before = (running.metrics(), running.usage());
            let started = Instant::now();
            let mut line = format!("round {}/{rounds} {:<22}", round + 1, s.label);
            for (kind, _, n) in LOOPS {
                let pre = s.is_mamori().then(|| (running.metrics(), running.usage()));
                let ns = measure(kind, n / scale)?;
                samples
                    .entry(kind)
                    .or_default()
                    .entry(s.label)
                    .or_default()
                    .push(ns);
                line.push_str(&format!(" {kind} {ns:.0}"));
                if let Some((m0, u0)) = pre {
                    // The agent's share of this loop, once it has caught up.
                    std::thread::sleep(Duration::from_millis(100));
                    let (m1, u1) = (running.metrics(), running.usage());
                    let a = per_loop.entry((kind, s.label)).or_default();
                    a.events += metric(&m1, "mamori_events_received_total")
                        - metric(&m0, "mamori_events_received_total");
                    a.cpu_s += (u1.0 - u0.0) as f64 / ticks_per_s();
                    a.wall_s += ns * (n / scale) as f64 / 1e9;
                }
            }
            // What the agent was sent, it handles before we look.
            std::thread::sleep(Duration::from_millis(300));
            let wall = started.elapsed();
            let after = (running.metrics(), running.usage());
            if s.is_mamori() {
                let delta = |name: &str| metric(&after.0, name) - metric(&before.0, name);
                let u = usage.entry(s.label).or_default();
                u.events += delta("mamori_events_received_total");
                u.filtered += delta("mamori_kernel_events_filtered_total");
                u.lost += delta("mamori_kernel_events_lost_total")
                    + delta("mamori_events_decode_errors_total");
                u.cpu_s += (after.1.0 - before.1.0) as f64 / ticks_per_s();
                u.wall_s += wall.as_secs_f64();
                u.rss = u.rss.max(after.1.1);
                u.map_bytes = u.map_bytes.max(running.map_bytes());
            }
            eprintln!("{line}");
            running.stop();
        }
    }

    let mut loops_json = serde_json::Map::new();
    for (kind, desc, n) in LOOPS {
        let per = &samples[kind];
        let base = stats(&per["no agent"]);
        let mut subj = serde_json::Map::new();
        for s in &subjects {
            let st = stats(&per[s.label]);
            let mut row = json!({
                "median_ns": st.median, "p25_ns": st.p25, "p75_ns": st.p75,
                "min_ns": st.min, "max_ns": st.max,
                "added_ns": st.median - base.median,
                "added_pct": (st.median - base.median) / base.median * 100.0,
                "samples": per[s.label],
            });
            if let Some(a) = per_loop.get(&(*kind, s.label)) {
                row["agent_events"] = json!(a.events);
                row["agent_cpu_pct_of_loop"] = json!(a.cpu_s / a.wall_s * 100.0);
                row["agent_ns_per_event"] = json!(if a.events > 0.0 {
                    a.cpu_s * 1e9 / a.events
                } else {
                    0.0
                });
            }
            subj.insert(s.label.into(), row);
        }
        loops_json.insert(
            (*kind).into(),
            json!({"desc": desc, "n": n / scale, "subjects": subj}),
        );
    }
    let agent_json: serde_json::Map<String, Value> = usage
        .iter()
        .map(|(label, u)| {
            (
                (*label).to_owned(),
                json!({
                    "events": u.events,
                    "events_per_s": u.events / u.wall_s,
                    "filtered_in_kernel": u.filtered,
                    "lost": u.lost,
                    "cpu_pct_of_loops": u.cpu_s / u.wall_s * 100.0,
                    "cpu_us_per_1000_events": if u.events > 0.0 { u.cpu_s / u.events * 1e9 } else { 0.0 },
                    "rss_mib": u.rss as f64 / 1048576.0,
                    "bpf_map_mib": u.map_bytes as f64 / 1048576.0,
                }),
            )
        })
        .collect();

    let programs = programs(&subjects, scale)?;
    let idle = idle(&subjects, quick)?;
    let macro_json = macro_workloads(&subjects, quick)?;

    let doc = json!({
        "machine": machine(),
        "rounds": rounds,
        "quick": quick,
        "subjects": subjects.iter().map(|s| s.label).collect::<Vec<_>>(),
        "loops": loops_json,
        "agent": agent_json,
        "bpf_programs": programs,
        "idle": idle,
        "macro": macro_json,
    });
    report::write(&doc)
}

#[derive(Default)]
struct Usage {
    events: f64,
    filtered: f64,
    lost: f64,
    cpu_s: f64,
    wall_s: f64,
    rss: u64,
    map_bytes: u64,
}

pub struct Stats {
    pub median: f64,
    pub p25: f64,
    pub p75: f64,
    pub min: f64,
    pub max: f64,
}

pub fn stats(v: &[f64]) -> Stats {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: at(0.5),
        p25: at(0.25),
        p75: at(0.75),
        min: s[0],
        max: s[s.len() - 1],
    }
}

/// The subjects this machine can run, in their first-round order.
fn subjects() -> anyhow::Result<Vec<Subject>> {
    let dir = PathBuf::from(loops::DIR);
    let mut out = vec![
        Subject {
            label: "no agent",
            kind: Kind::Nothing,
            current: false,
        },
        Subject {
            label: "bpftrace, 1 tracepoint",
            kind: Kind::Bpftrace,
            current: false,
        },
        Subject {
            label: "mamori, default rules",
            kind: Kind::Mamori {
                binary: cmd::root().join("target/release/mamori"),
                rules: cmd::root().join("rules/mamori_rules.yaml"),
            },
            current: true,
        },
    ];
    // Another build to compare with in the same run (an older commit).
    if let Some(binary) = std::env::var_os("MAMORI_BENCH_BASELINE") {
        out.push(Subject {
            label: "baseline build, default rules",
            kind: Kind::Mamori {
                binary: binary.into(),
                rules: cmd::root().join("rules/mamori_rules.yaml"),
            },
            current: false,
        });
    }
    let falco = std::env::var_os("MAMORI_FALCO_RULES_DIR")
        .map_or_else(
            || cmd::root().join("../shared/compat/falco-rules"),
            PathBuf::from,
        )
        .join("falco_rules.yaml");
    if falco.is_file() {
        let copy = dir.join("falco_rules.yaml");
        std::fs::copy(&falco, &copy)?;
        out.push(Subject {
            label: "mamori, Falco stable",
            kind: Kind::Mamori {
                binary: cmd::root().join("target/release/mamori"),
                rules: copy,
            },
            current: true,
        });
    } else {
        println!(
            "bench: no row for Falco's stable rules: {} is absent (set MAMORI_FALCO_RULES_DIR)",
            falco.display()
        );
    }
    Ok(out)
}

fn rotated(subjects: &[Subject], round: usize) -> Vec<&Subject> {
    let k = round % subjects.len();
    subjects[k..].iter().chain(&subjects[..k]).collect()
}

/// Installs the benchmark's own tools when missing.
fn tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(bin, _)| cmd::output("which", &[bin]).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("bench: installing {}", missing.join(" "));
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    cmd::run("apt-get", &args).context("installing the benchmark's tools")
}

/// Kernel time per program: each mamori subject again, with the kernel's
/// BPF statistics on (they cost a little, so not in the timed rounds).
fn programs(subjects: &[Subject], scale: u64) -> anyhow::Result<Value> {
    let mut out = serde_json::Map::new();
    for s in subjects.iter().filter(|s| s.is_mamori() && s.current) {
        let running = s.start(&["-o", "capture.bpf_stats=true"])?;
        let mut per_loop = serde_json::Map::new();
        for (kind, _, n) in LOOPS {
            let n = n / scale;
            let before = running.metrics();
            measure(kind, n)?;
            std::thread::sleep(Duration::from_millis(200));
            let after = running.metrics();
            let mut progs = serde_json::Map::new();
            let mut total_ns = 0.0;
            for line in after.lines() {
                let Some(rest) = line.strip_prefix("mamori_bpf_program_runs_total{program=\"")
                else {
                    continue;
                };
                let Some((name, _)) = rest.split_once('"') else {
                    continue;
                };
                let runs = labelled(&after, "mamori_bpf_program_runs_total", "program", name)
                    - labelled(&before, "mamori_bpf_program_runs_total", "program", name);
                let secs = labelled(
                    &after,
                    "mamori_bpf_program_run_seconds_total",
                    "program",
                    name,
                ) - labelled(
                    &before,
                    "mamori_bpf_program_run_seconds_total",
                    "program",
                    name,
                );
                if runs < 1.0 {
                    continue;
                }
                total_ns += secs * 1e9;
                progs.insert(
                    name.to_owned(),
                    json!({"runs_per_op": runs / n as f64, "ns_per_run": secs * 1e9 / runs}),
                );
            }
            per_loop.insert(
                (*kind).into(),
                json!({"bpf_ns_per_op": total_ns / n as f64, "programs": progs}),
            );
        }
        running.stop();
        out.insert(s.label.into(), Value::Object(per_loop));
    }
    Ok(Value::Object(out))
}

/// mamori with its default rules on a host doing nothing in particular.
fn idle(subjects: &[Subject], quick: bool) -> anyhow::Result<Value> {
    let Some(s) = subjects.iter().find(|s| s.is_mamori()) else {
        return Ok(Value::Null);
    };
    let secs = if quick { 20 } else { 120 };
    eprintln!("idle: {} for {secs} s", s.label);
    let running = s.start(&[])?;
    std::thread::sleep(Duration::from_secs(2));
    let (c0, _) = running.usage();
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, rss) = running.usage();
    let maps = running.map_bytes();
    running.stop();
    Ok(json!({
        "subject": s.label,
        "seconds": secs,
        "cpu_pct": (c1 - c0) as f64 / ticks_per_s() / secs as f64 * 100.0,
        "rss_mib": rss as f64 / 1048576.0,
        "bpf_map_mib": maps as f64 / 1048576.0,
    }))
}

/// `make -j2` of a C project and `redis-benchmark`, per subject,
/// alternated.
fn macro_workloads(subjects: &[Subject], quick: bool) -> anyhow::Result<Value> {
    let rounds = if quick { 1 } else { 3 };
    let project = macros::prepare_c(std::path::Path::new(loops::DIR))?;
    // A warm-up build: the first pays for cold caches.
    macros::build_c(&project)?;
    let redis = macros::Redis::start()?;
    let requests = if quick { 50_000 } else { 200_000 };
    let mut build: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut rps: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..rounds {
        for s in rotated(subjects, round) {
            let running = s.start(&[])?;
            let secs = macros::build_c(&project)?;
            let r = redis.benchmark(requests)?;
            eprintln!(
                "macro round {}/{rounds} {:<22} make -j2 {secs:.1} s, redis {r:.0} req/s",
                round + 1,
                s.label
            );
            build.entry(s.label).or_default().push(secs);
            rps.entry(s.label).or_default().push(r);
            running.stop();
        }
    }
    let rows = |m: &BTreeMap<&str, Vec<f64>>, higher_is_better: bool| -> Value {
        let base = stats(&m["no agent"]).median;
        m.iter()
            .map(|(k, v)| {
                let st = stats(v);
                let slowdown = if higher_is_better {
                    (base / st.median - 1.0) * 100.0
                } else {
                    (st.median / base - 1.0) * 100.0
                };
                (
                    (*k).to_owned(),
                    json!({"median": st.median, "min": st.min, "max": st.max, "slowdown_pct": slowdown, "samples": v}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    Ok(json!({
        "make -j2 (C project, s)": rows(&build, false),
        "redis-benchmark SET/GET (req/s)": rows(&rps, true),
    }))
}

fn machine() -> Value {
    let out = |p: &str, a: &[&str]| cmd::output(p, a).unwrap_or_default().trim().to_owned();
    json!({
        "kernel": out("uname", &["-r"]),
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()
            .lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned()),
        "date": out("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "commit": out("git", &["-C", &cmd::root().display().to_string(), "rev-parse", "--short", "HEAD"]),
    })
}
