//! `cargo xtask bench capture|rules|state|delivery`.
//!
//! capture: micro loops and macro workloads beside no agent, bpftrace with
//! one tracepoint, and mamori (default rules; Falco's stable rules when
//! present), alternated; see `capture.rs`. `--quick` for a shorter run.
//!
//! rules: `cargo bench -p mamori --bench rules` (Falco's stable rules over a
//! generated event mix).
//!
//! delivery: `cargo bench -p mamori --bench delivery` with the test
//! Elasticsearch node running: ECS mapping, spool write and read rates,
//! alerts per second into Elasticsearch.

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
        other => bail!("unknown benchmark `{other}` (capture, rules, state, delivery)"),
    }
}

/// The hidden `cargo xtask bench-workload KIND N` entry: runs the loop in
/// this process, pinned, and prints ns per operation.
pub fn workload(kind: &str, n: u64) -> anyhow::Result<()> {
    pin(WORKLOAD_CPU);
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
