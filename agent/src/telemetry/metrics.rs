//! Counters and gauges, rendered as Prometheus text.
//!
//! Stages hold an `Arc<Metrics>` and count; `/metrics` renders a snapshot.
//! Kernel-side counters are read from their map at render time.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use crate::{alert::Priority, capture::CountersHandle};

/// Renders a component's own metric families into the exposition.
pub type Renderer = Box<dyn Fn(&mut String) + Send + Sync>;

#[derive(Default)]
pub struct Metrics {
    events: HashMap<&'static str, AtomicU64>,
    alerts: Mutex<BTreeMap<(String, Priority), u64>>,
    outputs: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    capture: OnceLock<CountersHandle>,
    attached: AtomicBool,
    rules_loaded: AtomicBool,
    rules_reloads: AtomicU64,
    rules_reload_failures: AtomicU64,
    /// State table sizes, published by the detector.
    processes: AtomicU64,
    processes_evicted: AtomicU64,
    renderers: Mutex<Vec<Renderer>>,
    /// Progress of the pipeline stages, for `/healthz`.
    pub liveness: super::liveness::Liveness,
}

impl Metrics {
    pub fn new() -> Self {
        let mut events = HashMap::new();
        for sc in mamori_common::syscalls::ALL {
            events.insert(sc.name, AtomicU64::new(0));
        }
        events.insert("procexit", AtomicU64::new(0));
        Self {
            events,
            ..Default::default()
        }
    }

    /// Gives `/metrics` access to the kernel counters.
    pub fn set_capture(&self, counters: CountersHandle) {
        let _ = self.capture.set(counters);
    }

    pub fn capture_counters(&self) -> Option<crate::capture::Counters> {
        self.capture.get().map(CountersHandle::read)
    }

    pub fn event(&self, ty: &'static str) {
        if let Some(c) = self.events.get(ty) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn alert(&self, rule: &str, priority: Priority) {
        if let Ok(mut m) = self.alerts.lock() {
            *m.entry((rule.to_owned(), priority)).or_default() += 1;
        }
    }

    pub fn output_sent(&self, output: &'static str) {
        self.output(output, "sent");
    }

    pub fn output_failed(&self, output: &'static str) {
        self.output(output, "failed");
    }

    fn output(&self, output: &'static str, status: &'static str) {
        if let Ok(mut m) = self.outputs.lock() {
            *m.entry((output, status)).or_default() += 1;
        }
    }

    /// Adds a component's families (the Elasticsearch output's, say) to
    /// `/metrics`.
    pub fn add_renderer(&self, r: Renderer) {
        if let Ok(mut v) = self.renderers.lock() {
            v.push(r);
        }
    }

    pub fn set_attached(&self) {
        self.attached.store(true, Ordering::Release);
    }

    /// The process table's size and evictions so far.
    pub fn set_process_table(&self, len: usize, evicted: u64) {
        self.processes.store(len as u64, Ordering::Relaxed);
        self.processes_evicted.store(evicted, Ordering::Relaxed);
    }

    /// A reload of the rules, done or refused.
    pub fn rules_reload(&self, ok: bool) {
        let c = if ok {
            &self.rules_reloads
        } else {
            &self.rules_reload_failures
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_rules_loaded(&self) {
        self.rules_loaded.store(true, Ordering::Release);
    }

    /// Programs attached and rules loaded.
    pub fn ready(&self) -> bool {
        self.attached.load(Ordering::Acquire) && self.rules_loaded.load(Ordering::Acquire)
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(c) = self.capture_counters() {
            family(
                &mut out,
                "mamori_kernel_events_sent_total",
                "counter",
                "Records the kernel wrote to the ring buffer, per CPU.",
            );
            for (cpu, v) in c.sent.iter().enumerate() {
                let _ = writeln!(out, "mamori_kernel_events_sent_total{{cpu=\"{cpu}\"}} {v}");
            }
            family(
                &mut out,
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
                &mut out,
                "mamori_events_received_total",
                "counter",
                "Records read from the ring buffer.",
            );
            let _ = writeln!(out, "mamori_events_received_total {}", c.received);
            family(
                &mut out,
                "mamori_events_decode_errors_total",
                "counter",
                "Records that could not be decoded.",
            );
            let _ = writeln!(out, "mamori_events_decode_errors_total {}", c.decode_errors);
            family(
                &mut out,
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
                &mut out,
                "mamori_kernel_events_filtered_total",
                "counter",
                "Opens no loaded rule could match, dropped in the kernel before a record was built.",
            );
            let _ = writeln!(out, "mamori_kernel_events_filtered_total {}", c.filtered);
        }
        if let Some(h) = self.capture.get() {
            let runs = h.program_runs();
            if runs.iter().any(|r| r.runs > 0) {
                family(
                    &mut out,
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
                    &mut out,
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
        family(
            &mut out,
            "mamori_events_total",
            "counter",
            "Decoded events, per event type.",
        );
        let mut types: Vec<_> = self.events.iter().collect();
        types.sort_by_key(|(k, _)| *k);
        for (ty, v) in types {
            let _ = writeln!(
                out,
                "mamori_events_total{{type=\"{ty}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        family(
            &mut out,
            "mamori_alerts_total",
            "counter",
            "Alerts raised, per rule and priority.",
        );
        if let Ok(m) = self.alerts.lock() {
            for ((rule, prio), v) in m.iter() {
                let _ = writeln!(
                    out,
                    "mamori_alerts_total{{rule=\"{}\",priority=\"{prio}\"}} {v}",
                    label(rule)
                );
            }
        }
        family(
            &mut out,
            "mamori_output_alerts_total",
            "counter",
            "Alerts per output and status.",
        );
        if let Ok(m) = self.outputs.lock() {
            for ((output, status), v) in m.iter() {
                let _ = writeln!(
                    out,
                    "mamori_output_alerts_total{{output=\"{output}\",status=\"{status}\"}} {v}"
                );
            }
        }
        let (cpu_seconds, rss) = process_usage();
        family(
            &mut out,
            "mamori_process_cpu_seconds_total",
            "counter",
            "CPU time of the agent (user + system).",
        );
        let _ = writeln!(out, "mamori_process_cpu_seconds_total {cpu_seconds}");
        family(
            &mut out,
            "mamori_process_resident_memory_bytes",
            "gauge",
            "Resident memory of the agent.",
        );
        let _ = writeln!(out, "mamori_process_resident_memory_bytes {rss}");
        family(
            &mut out,
            "mamori_ready",
            "gauge",
            "1 once programs are attached and rules loaded.",
        );
        let _ = writeln!(out, "mamori_ready {}", u8::from(self.ready()));
        for (name, help, c) in [
            (
                "mamori_rules_reloads_total",
                "Rules reloads that took effect.",
                &self.rules_reloads,
            ),
            (
                "mamori_rules_reload_failures_total",
                "Rules reloads refused (the running rules stayed).",
                &self.rules_reload_failures,
            ),
        ] {
            family(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
        }
        family(
            &mut out,
            "mamori_processes",
            "gauge",
            "Processes in the process table.",
        );
        let _ = writeln!(
            out,
            "mamori_processes {}",
            self.processes.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "mamori_processes_evicted_total",
            "counter",
            "Process table entries dropped because the table was full.",
        );
        let _ = writeln!(
            out,
            "mamori_processes_evicted_total {}",
            self.processes_evicted.load(Ordering::Relaxed)
        );
        self.liveness.render(&mut out);
        if let Ok(v) = self.renderers.lock() {
            for r in v.iter() {
                r(&mut out);
            }
        }
        out
    }
}

/// Writes a family's `# HELP` and `# TYPE` lines.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a Prometheus label value.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `(cpu seconds, rss bytes)` of this process, from /proc/self.
pub fn process_usage() -> (f64, u64) {
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime, stime are fields 14 and 15 (1-based); rss is 24.
    let cpu = (num(11) + num(12)) as f64 / ticks;
    let rss = num(21) * page;
    (cpu, rss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_escaped_labels() {
        let m = Metrics::new();
        m.event("openat");
        m.event("openat");
        m.alert("Rule \"x\"\nsecond", Priority::Warning);
        m.output_sent("stdout");
        let text = m.render();
        assert!(text.contains("mamori_events_total{type=\"openat\"} 2"));
        assert!(text.contains(
            "mamori_alerts_total{rule=\"Rule \\\"x\\\"\\nsecond\",priority=\"Warning\"} 1"
        ));
        assert!(text.contains("mamori_output_alerts_total{output=\"stdout\",status=\"sent\"} 1"));
        assert!(text.contains("mamori_ready 0"));
        let (_, rss) = process_usage();
        assert!(rss > 0);
    }
}
