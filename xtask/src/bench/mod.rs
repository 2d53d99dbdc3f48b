//! `cargo xtask bench capture|rules|state|delivery`.
//!
//! capture: micro loops and macro workloads beside no agent, bpftrace with
//! one tracepoint, and mamori (default rules; Falco's stable rules when
//! present), alternated; see `capture.rs`. `--quick` for a shorter run.
//!
//! capacity: rule-relevant events per second until the first loss; see
//! `capacity.rs`.
//!
//! rules: `cargo bench -p mamori --bench rules` (Falco's stable rules over a
//! generated event mix).
//!
//! delivery: `cargo bench -p mamori --bench delivery` with the test
//! Elasticsearch node running: ECS mapping, spool write and read rates,
//! alerts per second into Elasticsearch.
//!
//! latency: syscall → alert line, → searchable in Elasticsearch, → webhook
//! through a real Alertmanager, p50 and p99, idle and busy.

mod capacity;
mod capture;
mod loops;
mod macros;
mod report;
mod subjects;

use std::process::Command;

use anyhow::{Context, bail};

use crate::cmd;

/// The workload runs on this CPU; the agent may use the other.
const WORKLOAD_CPU: usize = 1;

pub fn run(what: &str, quick: bool) -> anyhow::Result<()> {
    match what {
        "capture" => capture::run(quick),
        "capacity" => capacity::run(quick),
        "rules" => cmd::cargo(&["bench", "-p", "mamori", "--bench", "rules"]),
        "state" => cmd::cargo(&["bench", "-p", "mamori", "--bench", "state"]),
        "delivery" => {
            let url = crate::es::start()?;
            // SAFETY: single-threaded; read by the bench process.
            unsafe { std::env::set_var("MAMORI_BENCH_ES_URL", url) };
            let r = cmd::cargo(&["bench", "-p", "mamori", "--bench", "delivery"]);
            crate::es::stop()?;
            r
        }
        "latency" => latency(quick),
        other => bail!(
            "unknown benchmark `{other}` (capture, capacity, rules, state, delivery, latency)"
        ),
    }
}

/// Syscall → alert line, searchable in Elasticsearch, webhook through
/// Alertmanager: the `mamori-latency` program of the test crate (it shares
/// the tests' Alertmanager and receiver), with the test Elasticsearch node.
fn latency(quick: bool) -> anyhow::Result<()> {
    crate::prometheus::build()?;
    cmd::cargo(&[
        "build",
        "--release",
        "-p",
        "mamori-e2e",
        "--bin",
        "mamori-latency",
    ])?;
    // A node already running (a test run's) is used and left running.
    let started = crate::es::running_url().is_none();
    let url = crate::es::start()?;
    // SAFETY: single-threaded; read by the bench process.
    unsafe {
        std::env::set_var("MAMORI_BENCH_ES_URL", url);
        if quick {
            std::env::set_var("MAMORI_BENCH_SAMPLES", "10");
        }
    }
    let r = cmd::run(cmd::root().join("target/release/mamori-latency"), &[]);
    if started {
        crate::es::stop()?;
    }
    r
}

/// The hidden `cargo xtask bench-workload KIND ARG` entry: runs loop KIND
/// ARG times in this process, pinned, and prints ns per operation; or,
/// for `paced-open`, a capacity generator (`CPU:RATE:SECONDS`), printing
/// how many opens it made.
pub fn workload(kind: &str, arg: &str) -> anyhow::Result<()> {
    if kind == "paced-open" {
        println!("{}", capacity::paced(arg)?);
        return Ok(());
    }
    pin(WORKLOAD_CPU);
    let n: u64 = arg.parse().context("the loop count")?;
    let ns = loops::run(kind, n)?;
    println!("{ns:.1}");
    Ok(())
}

pub(crate) fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Runs the workload in a child process and returns ns per operation.
fn measure(kind: &str, n: u64) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["bench-workload", kind, &n.to_string()])
        .output()
        .context("workload")?;
    if !out.status.success() {
        bail!("workload failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}
