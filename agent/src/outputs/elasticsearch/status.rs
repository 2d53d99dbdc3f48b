//! The agent's status document, written every interval to
//! `metrics-mamori.status-<namespace>`: version, the rules' fingerprint
//! and count, events and alerts (totals and per second), the kernel's
//! losses, each output's deliveries, the spool's depth and the time of the
//! last event. The values are read back from the agent's own `/metrics`
//! text, so the document and a Prometheus scrape never disagree.
//!
//! A status is worth only its moment: it is sent directly, not spooled.
//! An agent that stopped, hangs or cannot reach Elasticsearch stops
//! writing, and the search in `deploy/elasticsearch/query-silent-agents.json`
//! finds its host by the missing documents.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use elasticsearch::http::Method;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::{bulk::Target, client::Client, stats::Stats};
use crate::{
    telemetry::{metrics::Metrics, samples::Samples},
    time::rfc3339_nanos,
};

/// Writes the status document every `interval` until closing.
pub struct StatusWriter {
    pub client: Client,
    pub target: Target,
    pub interval: Duration,
    pub host_name: String,
    pub metrics: Arc<Metrics>,
    pub stats: Arc<Stats>,
}

impl StatusWriter {
    pub async fn run(self, mut closing: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut before: Option<(u64, Samples)> = None;
        // Warned once per run of failures; each failure is counted.
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = closing.changed() => return,
            }
            if !self.stats.templates_ready.load(Ordering::Relaxed) {
                continue;
            }
            let now = crate::time::now_ns();
            let samples = Samples::parse(&self.metrics.render());
            let doc = document(
                &samples,
                before.as_ref(),
                now,
                (&self.target, self.interval, &self.host_name),
            );
            let path = format!("/{}/_doc", self.target.status(now));
            match self.client.call(Method::Post, &path, Some(&doc)).await {
                Ok(_) => {
                    Stats::add(&self.stats.status_sent, 1);
                    failing = false;
                }
                Err(e) => {
                    Stats::add(&self.stats.status_failed, 1);
                    if !failing {
                        warn!(error = %e, "cannot write the agent's status document");
                    } else {
                        debug!(error = %e, "status document not written");
                    }
                    failing = true;
                }
            }
            before = Some((now, samples));
        }
    }
}

/// Whose status: where it goes, how often, the host.
type Who<'a> = (&'a Target, Duration, &'a str);

/// The status document at `now_ns` from the agent's samples; rates over
/// the time since `before` (none in the first document).
fn document(s: &Samples, before: Option<&(u64, Samples)>, now_ns: u64, who: Who<'_>) -> Value {
    let (target, interval, host) = who;
    let rate = |pick: &dyn Fn(&Samples) -> f64| -> Value {
        let Some((then, b)) = before else {
            return Value::Null;
        };
        let secs = now_ns.saturating_sub(*then) as f64 / 1e9;
        if secs <= 0.0 {
            return Value::Null;
        }
        json!(((pick(s) - pick(b)).max(0.0) / secs * 100.0).round() / 100.0)
    };
    let total = |name: &'static str| move |x: &Samples| x.sum(name);
    let count = |v: f64| json!(v as u64);
    let mut outputs = Map::new();
    for out in s.label_values("mamori_output_alerts_total", "output") {
        let by = |x: &Samples, status: &str| {
            x.sum_where(
                "mamori_output_alerts_total",
                &[("output", out.as_str()), ("status", status)],
            )
        };
        outputs.insert(
            out.clone(),
            json!({
                "sent": count(by(s, "sent")),
                "failed": count(by(s, "failed")),
                "dropped": count(by(s, "dropped")),
                "sent_per_s": rate(&|x: &Samples| by(x, "sent")),
            }),
        );
    }
    // This output counts its own deliveries: created, or already there.
    if s.first("mamori_elasticsearch_indexed_total").is_some() {
        let sent = |x: &Samples| {
            x.sum("mamori_elasticsearch_indexed_total")
                + x.sum("mamori_elasticsearch_duplicates_total")
        };
        let failed = s.sum("mamori_elasticsearch_dead_lettered_total")
            + s.sum("mamori_elasticsearch_lost_total");
        outputs.insert(
            "elasticsearch".into(),
            json!({
                "sent": count(sent(s)),
                "failed": count(failed),
                "sent_per_s": rate(&sent),
            }),
        );
    }
    let rules = s.first("mamori_rules_enabled");
    let last_event = s.sum("mamori_last_event_timestamp_seconds");
    json!({
        "@timestamp": rfc3339_nanos(now_ns),
        "event": {"kind": "metric", "module": "mamori", "dataset": "mamori.status"},
        "data_stream": {
            "type": "metrics",
            "dataset": "mamori.status",
            "namespace": target.namespace(),
        },
        "agent": {"type": "mamori", "version": env!("CARGO_PKG_VERSION")},
        "host": {"name": host},
        "mamori": {"status": {
            "interval_s": interval.as_secs(),
            "ready": s.sum("mamori_ready") > 0.0,
            "rules": {
                "fingerprint": rules.and_then(|r| r.label("fingerprint")),
                "enabled": count(rules.map_or(0.0, |r| r.value)),
            },
            "events": {
                "total": count(s.sum("mamori_events_received_total")),
                "per_s": rate(&total("mamori_events_received_total")),
                "last": (last_event > 0.0).then(|| rfc3339_nanos((last_event * 1e9) as u64)),
            },
            "kernel": {
                "lost": count(s.sum("mamori_kernel_events_lost_total")),
                "lost_per_s": rate(&total("mamori_kernel_events_lost_total")),
                "filtered": count(s.sum("mamori_kernel_events_filtered_total")),
            },
            "alerts": {
                "total": count(s.sum("mamori_alerts_total")),
                "per_s": rate(&total("mamori_alerts_total")),
                "suppressed": count(s.sum("mamori_alerts_suppressed_total")),
            },
            "outputs": outputs,
            "spool": {
                "pending": count(s.sum("mamori_spool_pending")),
                "bytes": count(s.sum("mamori_spool_bytes")),
            },
            "process": {
                "cpu_seconds": s.sum("mamori_process_cpu_seconds_total"),
                "memory_bytes": count(s.sum("mamori_process_resident_memory_bytes")),
            },
        }},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "mamori_events_received_total 100\n\
        mamori_alerts_total{rule=\"a\",priority=\"Warning\"} 1\n\
        mamori_output_alerts_total{output=\"stdout\",status=\"sent\"} 1\n\
        mamori_kernel_events_lost_total{cpu=\"0\"} 0\n";
    const NOW: &str = "mamori_events_received_total 600\n\
        mamori_alerts_total{rule=\"a\",priority=\"Warning\"} 3\n\
        mamori_alerts_total{rule=\"b\",priority=\"Error\"} 2\n\
        mamori_output_alerts_total{output=\"stdout\",status=\"sent\"} 5\n\
        mamori_output_alerts_total{output=\"alertmanager\",status=\"sent\"} 2\n\
        mamori_output_alerts_total{output=\"alertmanager\",status=\"dropped\"} 3\n\
        mamori_alerts_suppressed_total{rule=\"a\"} 40\n\
        mamori_elasticsearch_indexed_total 8\n\
        mamori_elasticsearch_duplicates_total 1\n\
        mamori_elasticsearch_dead_lettered_total 2\n\
        mamori_kernel_events_lost_total{cpu=\"0\"} 4\n\
        mamori_kernel_events_lost_total{cpu=\"1\"} 6\n\
        mamori_ready 1\n\
        mamori_rules_enabled{fingerprint=\"0123abcd\"} 57\n\
        mamori_last_event_timestamp_seconds 1764806400.5\n\
        mamori_spool_pending 7\n";

    #[test]
    fn the_document_holds_totals_and_rates_of_the_metrics() {
        let target = Target::DataStream {
            namespace: "prod".into(),
        };
        let who = (&target, Duration::from_secs(30), "node-1");
        let t0 = 1_764_806_400_000_000_000;
        let first = document(&Samples::parse(BEFORE), None, t0, who);
        assert!(
            first["mamori"]["status"]["events"]["per_s"].is_null(),
            "no rate without an earlier document"
        );
        let before = (t0, Samples::parse(BEFORE));
        let d = document(
            &Samples::parse(NOW),
            Some(&before),
            t0 + 10_000_000_000,
            who,
        );
        let s = &d["mamori"]["status"];
        assert_eq!(d["host"]["name"], "node-1");
        assert_eq!(d["data_stream"]["namespace"], "prod");
        assert_eq!(d["@timestamp"], "2025-12-04T00:00:10.000000000Z");
        assert_eq!(s["ready"], true);
        assert_eq!(s["rules"]["fingerprint"], "0123abcd");
        assert_eq!(s["rules"]["enabled"], 57);
        assert_eq!(s["events"]["total"], 600);
        assert_eq!(s["events"]["per_s"], 50.0);
        assert_eq!(s["events"]["last"], "2025-12-04T00:00:00.500000000Z");
        assert_eq!(s["alerts"]["total"], 5);
        assert_eq!(s["alerts"]["per_s"], 0.4);
        assert_eq!(s["kernel"]["lost"], 10);
        assert_eq!(s["kernel"]["lost_per_s"], 1.0);
        assert_eq!(s["outputs"]["stdout"]["sent"], 5);
        assert_eq!(s["outputs"]["stdout"]["sent_per_s"], 0.4);
        assert_eq!(
            s["outputs"]["elasticsearch"]["sent"], 9,
            "created or already there"
        );
        assert_eq!(s["outputs"]["elasticsearch"]["failed"], 2);
        assert_eq!(s["outputs"]["alertmanager"]["sent"], 2);
        assert_eq!(s["outputs"]["alertmanager"]["dropped"], 3);
        assert_eq!(s["alerts"]["suppressed"], 40);
        assert_eq!(s["spool"]["pending"], 7);
        assert_eq!(s["interval_s"], 30);
    }
}
