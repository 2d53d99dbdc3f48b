//! The capture stage's families on `/metrics`: the kernel's counters
//! (per CPU), the decoder's, and each program's run statistics when
//! `capture.bpf_stats` is on. Read from their maps at scrape time.

use std::sync::Arc;

use super::CountersHandle;
use crate::telemetry::exposition::{self, Families, Source};

/// The source `app` registers with the metrics.
pub fn source(h: CountersHandle) -> Source {
    Arc::new(move |f: &mut Families<'_>| families(&h, f))
}

fn families(h: &CountersHandle, f: &mut Families<'_>) -> exposition::Result {
    let c = h.read();
    let cpu = |i: usize| i.to_string();
    f.counters(
        "mamori_kernel_events_sent",
        "Records the kernel wrote to the ring buffer, per CPU.",
        c.sent
            .iter()
            .enumerate()
            .map(|(i, v)| ([("cpu", cpu(i))], *v)),
    )?;
    let lost = |reason: &'static str, per_cpu: &[u64]| {
        per_cpu
            .iter()
            .enumerate()
            .map(move |(i, v)| ([("cpu", cpu(i)), ("reason", reason.into())], *v))
            .collect::<Vec<_>>()
    };
    let mut lost_samples = lost("ring_full", &c.lost_ring_full);
    lost_samples.extend(lost("no_scratch", &c.lost_no_scratch));
    f.counters(
        "mamori_kernel_events_lost",
        "Records lost in the kernel, per CPU and reason.",
        lost_samples,
    )?;
    f.counter(
        "mamori_events_received",
        "Records read from the ring buffer.",
        c.received,
    )?;
    f.counter(
        "mamori_events_decode_errors",
        "Records that could not be decoded.",
        c.decode_errors,
    )?;
    f.counter(
        "mamori_kernel_self_events_skipped",
        "The agent's own syscalls, skipped in the kernel.",
        c.skipped_self,
    )?;
    f.counter(
        "mamori_kernel_events_filtered",
        "Calls no loaded rule could match, dropped in the kernel before a record was built \
         (opens by the prefilter, failed path calls no rule reads).",
        c.filtered,
    )?;
    f.counter(
        "mamori_kernel_compat_syscalls",
        "32-bit (ia32) syscalls seen; each process using them is reported once.",
        c.compat_syscalls,
    )?;
    f.counter(
        "mamori_kernel_entry_copies_missed",
        "Path strings of syscalls read at exit only, because the kernel's table of strings \
         copied at entry (4096 calls in flight) was full.",
        c.entry_copy_full,
    )?;
    f.counters(
        "mamori_uring_unpaired",
        "io_uring requests reported from one half: a submission whose completion did not come \
         in time (result unknown), or a completion whose submission was not seen.",
        [
            ([("half", "submission".to_string())], c.uring_unanswered),
            ([("half", "completion".to_string())], c.uring_unmatched),
        ],
    )?;
    let runs = h.program_runs();
    if runs.iter().any(|r| r.runs > 0) {
        f.counters(
            "mamori_bpf_program_runs",
            "Runs of each kernel program (capture.bpf_stats).",
            runs.iter()
                .map(|r| ([("program", r.name.to_string())], r.runs)),
        )?;
        f.counters(
            "mamori_bpf_program_run_seconds",
            "Time spent in each kernel program (capture.bpf_stats).",
            runs.iter()
                .map(|r| ([("program", r.name.to_string())], r.run_ns as f64 / 1e9)),
        )?;
    }
    Ok(())
}
