//! `cargo xtask bench capacity`: how many rule-relevant events per second
//! mamori takes without loss on this machine. Generators (one per CPU)
//! open a file some rule names (the kernel sends every open; the rules
//! evaluate it; nothing alerts) at a paced rate that doubles each step,
//! until the kernel reports a loss or the generators cannot go faster.
//! Each step reports what was asked, what the generators did, what the
//! agent received and lost, and the agent's CPU, which tells what
//! saturates first: the generators (the kernel side's cost per event), the
//! ring (loss while the agent has CPU to spare), or the agent (loss at a
//! full core).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::json;

use super::{
    loops::{self, WATCHED},
    subjects::{Kind, Subject, metric, ticks_per_s},
};
use crate::cmd;

/// Seconds per step.
const STEP_S: u64 = 5;
/// First target rate, events per second (all generators together).
const START_RATE: u64 = 25_000;

pub fn run(quick: bool) -> anyhow::Result<()> {
    loops::prepare()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ring_mib = 8;
    let agent = Subject {
        label: "mamori, default rules",
        kind: Kind::Mamori {
            binary: cmd::root().join("target/release/mamori"),
            rules: cmd::root().join("rules/mamori_rules.yaml"),
        },
        current: true,
    };
    let running = agent.start(&["-o", &format!("capture.ring_mib={ring_mib}")])?;
    let pid = running.pid().context("agent pid")?;
    let mut steps = Vec::new();
    let mut rate = START_RATE;
    let mut best_clean = 0.0f64;
    let step_s = if quick { 2 } else { STEP_S };
    loop {
        let before = running.metrics();
        let (cpu0, _) = super::subjects::usage(pid);
        let started = Instant::now();
        let per_gen = rate / cpus as u64;
        let gens: Vec<Child> = (0..cpus)
            .map(|cpu| generator(cpu, per_gen, step_s))
            .collect::<anyhow::Result<_>>()?;
        let mut done = 0u64;
        for g in gens {
            let out = g.wait_with_output()?;
            done += String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
        }
        // Let the agent catch up before counting.
        std::thread::sleep(Duration::from_millis(500));
        let secs = started.elapsed().as_secs_f64();
        let after = running.metrics();
        let (cpu1, rss) = super::subjects::usage(pid);
        let delta = |name: &str| metric(&after, name) - metric(&before, name);
        let received = delta("mamori_events_received_total");
        let lost =
            delta("mamori_kernel_events_lost_total") + delta("mamori_events_decode_errors_total");
        let achieved = done as f64 / step_s as f64;
        let cpu_pct = (cpu1 - cpu0) as f64 / ticks_per_s() / secs * 100.0;
        eprintln!(
            "capacity: asked {rate}/s, generators did {achieved:.0}/s, agent received {:.0}/s, lost {lost:.0}, agent CPU {cpu_pct:.0} %",
            received / step_s as f64
        );
        steps.push(json!({
            "asked_per_s": rate, "generated_per_s": achieved,
            "received_per_s": received / step_s as f64, "lost": lost,
            "agent_cpu_pct": cpu_pct, "agent_rss_mib": rss as f64 / 1048576.0,
        }));
        let saturated = achieved < rate as f64 * 0.9;
        if lost == 0.0 {
            best_clean = best_clean.max(received / step_s as f64);
        }
        if lost > 0.0 || saturated {
            let limit = if lost == 0.0 {
                "the generators: each event's kernel-side cost (tracepoint, prefilter, record) on their own CPUs"
            } else if cpu_pct > 90.0 {
                "the agent's userspace (a full core)"
            } else {
                "the ring buffer (loss while the agent had CPU to spare)"
            };
            let doc = json!({
                "ring_mib": ring_mib,
                "wakeup_bytes": 256 * 1024,
                "poll_ms": 10,
                "generators": cpus,
                "steps": steps,
                "highest_rate_without_loss_per_s": best_clean,
                "limited_by": limit,
            });
            let dir = cmd::root().join("target/bench");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(
                dir.join("capacity.json"),
                serde_json::to_string_pretty(&doc)?,
            )?;
            println!(
                "capacity: {best_clean:.0} rule-relevant events/s without loss ({cpus} generators, ring {ring_mib} MiB, wake-up at 256 KiB, 10 ms poll); limited by {limit}"
            );
            break;
        }
        rate *= 2;
    }
    running.stop();
    Ok(())
}

/// One generator pinned to `cpu`, opening the watched file at `rate` per
/// second for `secs`; prints how many it opened.
fn generator(cpu: usize, rate: u64, secs: u64) -> anyhow::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(["bench-workload", "paced-open"])
        .arg(format!("{cpu}:{rate}:{secs}"))
        .stdout(Stdio::piped())
        .spawn()
        .context("starting a generator")
}

/// The paced loop: batches of opens of [`WATCHED`], a batch each
/// millisecond, on `cpu`.
pub fn paced(spec: &str) -> anyhow::Result<u64> {
    let mut parts = spec.split(':').map(|p| p.parse::<u64>().unwrap_or(0));
    let (cpu, rate, secs) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(1),
    );
    super::pin(cpu as usize);
    let path = std::ffi::CString::new(WATCHED)?;
    let per_ms = (rate / 1000).max(1);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut done = 0u64;
    let mut tick = start;
    while Instant::now() < end {
        for _ in 0..per_ms {
            // SAFETY: a valid C string; the fd is closed at once.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                libc::close(fd);
            }
        }
        done += per_ms;
        tick += Duration::from_millis(1);
        let now = Instant::now();
        if tick > now {
            std::thread::sleep(tick - now);
        }
    }
    Ok(done)
}
