//! Counters and gauges, rendered as Prometheus text.
//!
//! Stages hold an `Arc<Metrics>` and count; `/metrics` renders a snapshot.
//! A stage with counters of its own (the kernel's, the Elasticsearch
//! output's) registers a [`Renderer`] that reads them at render time:
//! telemetry knows no stage.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use mamori_rules::Priority;

/// Renders a component's own metric families into the exposition.
pub type Renderer = Box<dyn Fn(&mut String) + Send + Sync>;

#[derive(Default)]
pub struct Metrics {
    events: HashMap<&'static str, AtomicU64>,
    alerts: Mutex<BTreeMap<(String, Priority), u64>>,
    outputs: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
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
