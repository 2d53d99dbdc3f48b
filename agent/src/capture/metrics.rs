//! The capture stage's families on `/metrics`: the kernel's counters
//! (per CPU), the decoder's, and each program's run statistics when
//! `capture.bpf_stats` is on. Read from their maps at render time.

use std::fmt::Write;

use super::CountersHandle;
use crate::telemetry::metrics::{Renderer, family};

/// The renderer `app` registers with the metrics.
pub fn renderer(h: CountersHandle) -> Renderer {
    Box::new(move |out: &mut String| render(&h, out))
}

fn render(h: &CountersHandle, out: &mut String) {
    let c = h.read();
    family(
        out,
        "mamori_kernel_events_sent_total",
        "counter",
        "Records the kernel wrote to the ring buffer, per CPU.",
    );
    for (cpu, v) in c.sent.iter().enumerate() {
        let _ = writeln!(out, "mamori_kernel_events_sent_total{{cpu=\"{cpu}\"}} {v}");
    }
    family(
        out,
        "mamori_kernel_events_lost_total",
        "counter",
        "Records lost in the kernel, per CPU and reason.",
    );
    for (cpu, v) in c.lost_ring_full.iter().enumerate() {
        let _ = writeln!(
            out,
            "mamori_kernel_events_lost_total{{cpu=\"{cpu}\",reason=\"ring_full\"}} {v}"
        );
    }
    for (cpu, v) in c.lost_no_scratch.iter().enumerate() {
        let _ = writeln!(
            out,
            "mamori_kernel_events_lost_total{{cpu=\"{cpu}\",reason=\"no_scratch\"}} {v}"
        );
    }
    family(
        out,
        "mamori_events_received_total",
        "counter",
        "Records read from the ring buffer.",
    );
    let _ = writeln!(out, "mamori_events_received_total {}", c.received);
    family(
        out,
        "mamori_events_decode_errors_total",
        "counter",
        "Records that could not be decoded.",
    );
    let _ = writeln!(out, "mamori_events_decode_errors_total {}", c.decode_errors);
    family(
        out,
        "mamori_kernel_self_events_skipped_total",
        "counter",
        "The agent's own syscalls, skipped in the kernel.",
    );
    let _ = writeln!(
        out,
        "mamori_kernel_self_events_skipped_total {}",
        c.skipped_self
    );
    family(
        out,
        "mamori_kernel_events_filtered_total",
        "counter",
        "Opens no loaded rule could match, dropped in the kernel before a record was built.",
    );
    let _ = writeln!(out, "mamori_kernel_events_filtered_total {}", c.filtered);
    let runs = h.program_runs();
    if runs.iter().any(|r| r.runs > 0) {
        family(
            out,
            "mamori_bpf_program_runs_total",
            "counter",
            "Runs of each kernel program (capture.bpf_stats).",
        );
        for r in &runs {
            let _ = writeln!(
                out,
                "mamori_bpf_program_runs_total{{program=\"{}\"}} {}",
                r.name, r.runs
            );
        }
        family(
            out,
            "mamori_bpf_program_run_seconds_total",
            "counter",
            "Time spent in each kernel program (capture.bpf_stats).",
        );
        for r in &runs {
            let _ = writeln!(
                out,
                "mamori_bpf_program_run_seconds_total{{program=\"{}\"}} {:.9}",
                r.name,
                r.run_ns as f64 / 1e9
            );
        }
    }
}
