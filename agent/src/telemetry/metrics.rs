//! The agent's counters and gauges, and the registry of the stages' own.
//!
//! Stages hold an `Arc<Metrics>` and count; `/metrics` renders a snapshot.
//! A stage with counters of its own (the kernel's, the Elasticsearch
//! output's) registers a [`Source`] that reads them at scrape time:
//! telemetry knows no stage.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use mamori_rules::Priority;

use super::exposition::{self, Families, Source, escape};

#[derive(Default)]
pub struct Metrics {
    events: HashMap<&'static str, AtomicU64>,
    alerts: Mutex<BTreeMap<(String, Priority), u64>>,
    /// Alerts held back by storm control, per rule.
    suppressed: Mutex<BTreeMap<String, u64>>,
    outputs: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    attached: AtomicBool,
    rules_loaded: AtomicBool,
    rules_reloads: AtomicU64,
    rules_reload_failures: AtomicU64,
    /// Failed reads of the rules ConfigMap through the Kubernetes API.
    rules_api_errors: AtomicU64,
    /// The loaded rules: fingerprint and enabled rules.
    rules: Mutex<(String, u64)>,
    /// Time of the last event decoded (ns since the epoch; 0: none yet).
    last_event_ns: AtomicU64,
    /// State table sizes, published by the detector.
    processes: AtomicU64,
    processes_evicted: AtomicU64,
    sources: Mutex<Vec<Source>>,
    /// Progress of the pipeline stages, for `/healthz`.
    pub liveness: super::liveness::Liveness,
}

impl Metrics {
    /// Metrics counting `event_types` (each shown from 0).
    pub fn new(event_types: &[&'static str]) -> Self {
        let events = event_types
            .iter()
            .map(|t| (*t, AtomicU64::new(0)))
            .collect();
        Self {
            events,
            ..Default::default()
        }
    }

    /// An event of type `ty` that happened at `time_ns`.
    pub fn event(&self, ty: &'static str, time_ns: u64) {
        if let Some(c) = self.events.get(ty) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        // One writer (the detector): a plain compare and store, no locked
        // read-modify-write on every event.
        if time_ns > self.last_event_ns.load(Ordering::Relaxed) {
            self.last_event_ns.store(time_ns, Ordering::Relaxed);
        }
    }

    pub fn alert(&self, rule: &str, priority: Priority) {
        if let Ok(mut m) = self.alerts.lock() {
            *m.entry((rule.to_owned(), priority)).or_default() += 1;
        }
    }

    /// An alert of `rule` storm control held back.
    pub fn suppressed(&self, rule: &str) {
        if let Ok(mut m) = self.suppressed.lock() {
            *m.entry(rule.to_owned()).or_default() += 1;
        }
    }

    pub fn output_sent(&self, output: &'static str) {
        self.output(output, "sent");
    }

    pub fn output_failed(&self, output: &'static str) {
        self.output(output, "failed");
    }

    fn output(&self, output: &'static str, status: &'static str) {
        self.output_add(output, status, 1);
    }

    /// `n` alerts of `output` with `status` (`sent`, `failed`, `retried`,
    /// `dropped`).
    pub fn output_add(&self, output: &'static str, status: &'static str, n: u64) {
        if let Ok(mut m) = self.outputs.lock() {
            *m.entry((output, status)).or_default() += n;
        }
    }

    /// Adds a stage's families (the kernel's counters, the Elasticsearch
    /// output's) to `/metrics`.
    pub fn add_source(&self, s: Source) {
        if let Ok(mut v) = self.sources.lock() {
            v.push(s);
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

    /// The rules ConfigMap could not be read through the Kubernetes API.
    pub fn rules_api_error(&self) {
        self.rules_api_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Rules loaded (at start or by a reload): their fingerprint and how
    /// many are enabled.
    pub fn set_rules(&self, fingerprint: &str, enabled: u64) {
        if let Ok(mut r) = self.rules.lock() {
            *r = (fingerprint.to_owned(), enabled);
        }
        self.rules_loaded.store(true, Ordering::Release);
    }

    /// Programs attached and rules loaded.
    pub fn ready(&self) -> bool {
        self.attached.load(Ordering::Acquire) && self.rules_loaded.load(Ordering::Acquire)
    }

    /// The `/metrics` exposition: the agent's own families, then each
    /// stage's, in the order they registered.
    pub fn render(self: &Arc<Self>) -> String {
        let me = self.clone();
        let mut sources: Vec<Source> = vec![Arc::new(move |f: &mut Families<'_>| me.families(f))];
        let liveness = self.clone();
        sources.push(Arc::new(move |f: &mut Families<'_>| {
            liveness.liveness.families(f)
        }));
        if let Ok(v) = self.sources.lock() {
            sources.extend(v.iter().cloned());
        }
        exposition::encode(&sources)
    }

    fn families(&self, f: &mut Families<'_>) -> exposition::Result {
        let mut types: Vec<_> = self.events.iter().collect();
        types.sort_by_key(|(k, _)| *k);
        f.counters(
            "mamori_events",
            "Decoded events, per event type.",
            types
                .into_iter()
                .map(|(ty, v)| ([("type", *ty)], v.load(Ordering::Relaxed))),
        )?;
        let alerts: Vec<_> = self
            .alerts
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((rule, prio), v)| {
                        (
                            [("rule", escape(rule)), ("priority", prio.as_str().into())],
                            *v,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        f.counters(
            "mamori_alerts",
            "Alerts raised, per rule and priority.",
            alerts,
        )?;
        let suppressed: Vec<_> = self
            .suppressed
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(rule, v)| ([("rule", escape(rule))], *v))
                    .collect()
            })
            .unwrap_or_default();
        f.counters(
            "mamori_alerts_suppressed",
            "Alerts raised but held back by storm control, per rule.",
            suppressed,
        )?;
        let outputs: Vec<_> = self
            .outputs
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((output, status), v)| ([("output", *output), ("status", *status)], *v))
                    .collect()
            })
            .unwrap_or_default();
        f.counters(
            "mamori_output_alerts",
            "Alerts per output and status.",
            outputs,
        )?;
        let (cpu_seconds, rss) = process_usage();
        f.counter(
            "mamori_process_cpu_seconds",
            "CPU time of the agent (user + system).",
            cpu_seconds,
        )?;
        f.gauge(
            "mamori_process_resident_memory_bytes",
            "Resident memory of the agent.",
            rss,
        )?;
        f.gauge(
            "mamori_ready",
            "1 once programs are attached and rules loaded.",
            u64::from(self.ready()),
        )?;
        f.gauges(
            "mamori_build_info",
            "The agent's version (value 1).",
            [([("version", env!("CARGO_PKG_VERSION"))], 1u64)],
        )?;
        let (fingerprint, enabled) = self.rules.lock().map(|r| r.clone()).unwrap_or_default();
        f.gauges(
            "mamori_rules_enabled",
            "Enabled rules, labelled with the fingerprint of the rules files loaded.",
            [([("fingerprint", fingerprint)], enabled)],
        )?;
        f.gauge(
            "mamori_last_event_timestamp_seconds",
            "When the last event decoded happened (0: none yet).",
            self.last_event_ns.load(Ordering::Relaxed) as f64 / 1e9,
        )?;
        f.counter(
            "mamori_rules_reloads",
            "Rules reloads that took effect.",
            self.rules_reloads.load(Ordering::Relaxed),
        )?;
        f.counter(
            "mamori_rules_reload_failures",
            "Rules reloads refused (the running rules stayed).",
            self.rules_reload_failures.load(Ordering::Relaxed),
        )?;
        f.counter(
            "mamori_rules_api_errors",
            "Failed reads of the rules ConfigMap through the Kubernetes API (rules_configmap).",
            self.rules_api_errors.load(Ordering::Relaxed),
        )?;
        f.gauge(
            "mamori_processes",
            "Processes in the process table.",
            self.processes.load(Ordering::Relaxed),
        )?;
        f.counter(
            "mamori_processes_evicted",
            "Process table entries dropped because the table was full.",
            self.processes_evicted.load(Ordering::Relaxed),
        )
    }
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
        let m = Arc::new(Metrics::new(&["openat", "procexit"]));
        m.event("openat", 1_500_000_000);
        m.event("openat", 1_000_000_000);
        m.set_rules("ab12", 7);
        m.alert("Rule \"x\"\nsecond", Priority::Warning);
        m.output_sent("stdout");
        let text = m.render();
        assert!(text.contains("mamori_events_total{type=\"openat\"} 2"));
        assert!(text.contains(
            "mamori_alerts_total{rule=\"Rule \\\"x\\\"\\nsecond\",priority=\"Warning\"} 1"
        ));
        assert!(text.contains("mamori_output_alerts_total{output=\"stdout\",status=\"sent\"} 1"));
        assert!(
            text.contains("mamori_ready 0"),
            "rules loaded, programs not attached"
        );
        assert!(text.contains("mamori_rules_enabled{fingerprint=\"ab12\"} 7"));
        assert!(
            text.contains("mamori_last_event_timestamp_seconds 1.5"),
            "the latest event, not the last decoded"
        );
        let (_, rss) = process_usage();
        assert!(rss > 0);
    }
}
