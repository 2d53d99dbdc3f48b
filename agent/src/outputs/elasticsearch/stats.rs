//! Delivery counters of the Elasticsearch output, for `/metrics` and the
//! tests: every alert ends in exactly one of indexed, duplicate,
//! dead-lettered, lost, or still in the spool.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::telemetry::exposition::{self, Families};

#[derive(Debug, Default)]
pub struct Stats {
    /// Documents written to the spool.
    pub spooled: AtomicU64,
    /// Created in Elasticsearch.
    pub indexed: AtomicU64,
    /// Already there (a resend after a crash or a lost answer).
    pub duplicates: AtomicU64,
    /// Refused and stored in the dead-letter stream.
    pub dead_lettered: AtomicU64,
    /// Refused, and the dead letter refused too: only logged.
    pub lost: AtomicU64,
    pub bulk_requests: AtomicU64,
    /// Requests that failed as a whole (unreachable, 429, 5xx, auth).
    pub bulk_failures: AtomicU64,
    /// Items sent again after a per-item 429/5xx.
    pub item_retries: AtomicU64,
    /// Dropped from a full spool before delivery.
    pub spool_dropped: AtomicU64,
    /// Status documents written, and not written.
    pub status_sent: AtomicU64,
    pub status_failed: AtomicU64,
    pub spool_corrupt: AtomicU64,
    pub spool_pending: AtomicU64,
    pub spool_bytes: AtomicU64,
    /// The templates are installed (or setup is off, or failed for good).
    pub templates_ready: AtomicBool,
    /// The last request reached Elasticsearch and was accepted.
    pub connected: AtomicBool,
    /// Wall-clock ms when the current run of failures began; 0 when up.
    pub down_since_ms: AtomicU64,
    /// `_bulk` request durations (answered or not).
    pub latency: Latency,
}

/// Upper bounds (seconds) of the request-duration histogram's buckets.
const LATENCY_BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A Prometheus histogram of request durations.
#[derive(Debug, Default)]
pub struct Latency {
    /// Observations at or below each bound (not cumulative here).
    buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Latency {
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BOUNDS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn families(&self, f: &mut Families<'_>) -> exposition::Result {
        let mut buckets: Vec<(f64, u64)> = LATENCY_BOUNDS
            .iter()
            .zip(&self.buckets)
            .map(|(b, c)| (*b, c.load(Relaxed)))
            .collect();
        let count = self.count.load(Relaxed);
        let in_bounds: u64 = buckets.iter().map(|(_, c)| c).sum();
        buckets.push((f64::MAX, count.saturating_sub(in_bounds)));
        f.histogram(
            "mamori_elasticsearch_request_duration_seconds",
            "Duration of _bulk requests.",
            self.sum_us.load(Relaxed) as f64 / 1e6,
            count,
            &buckets,
        )
    }
}

impl Stats {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }

    /// Records a failed (`false`) or accepted request.
    pub fn reachable(&self, ok: bool) {
        self.connected.store(ok, Relaxed);
        if ok {
            self.down_since_ms.store(0, Relaxed);
        } else if self.down_since_ms.load(Relaxed) == 0 {
            self.down_since_ms
                .store(crate::time::now_ns() / 1_000_000, Relaxed);
        }
    }

    pub fn set_spool_gauges(&self, pending: u64, bytes: u64) {
        self.spool_pending.store(pending, Relaxed);
        self.spool_bytes.store(bytes, Relaxed);
    }

    /// `mamori_elasticsearch_*` and `mamori_spool_*` for `/metrics`.
    pub fn families(&self, f: &mut Families<'_>) -> exposition::Result {
        let counters: [(&str, &str, &AtomicU64); 11] = [
            (
                "spooled",
                "Alert documents written to the disk spool.",
                &self.spooled,
            ),
            (
                "indexed",
                "Alert documents created in Elasticsearch.",
                &self.indexed,
            ),
            (
                "duplicates",
                "Documents Elasticsearch already had (resends; delivered once).",
                &self.duplicates,
            ),
            (
                "dead_lettered",
                "Documents refused by Elasticsearch and stored in the dead-letter stream.",
                &self.dead_lettered,
            ),
            (
                "lost",
                "Documents refused, whose dead letter was refused too (logged).",
                &self.lost,
            ),
            ("bulk_requests", "_bulk requests sent.", &self.bulk_requests),
            (
                "bulk_failures",
                "_bulk requests that failed as a whole and were retried.",
                &self.bulk_failures,
            ),
            (
                "item_retries",
                "Bulk items retried after 429 or 5xx.",
                &self.item_retries,
            ),
            (
                "spool_dropped",
                "Undelivered alerts dropped because the spool was full.",
                &self.spool_dropped,
            ),
            (
                "status_sent",
                "The agent's status documents written.",
                &self.status_sent,
            ),
            (
                "status_failed",
                "The agent's status documents not written (unreachable or refused).",
                &self.status_failed,
            ),
        ];
        for (name, help, c) in counters {
            f.counter(&format!("mamori_elasticsearch_{name}"), help, Self::get(c))?;
        }
        f.counter(
            "mamori_spool_corrupt_records",
            "Spool records skipped as torn or corrupt.",
            Self::get(&self.spool_corrupt),
        )?;
        let gauges: [(&str, &str, u64); 3] = [
            (
                "mamori_spool_pending",
                "Alerts in the spool not yet delivered.",
                Self::get(&self.spool_pending),
            ),
            (
                "mamori_spool_bytes",
                "Bytes of spool on disk.",
                Self::get(&self.spool_bytes),
            ),
            (
                "mamori_elasticsearch_connected",
                "1 when the last request to Elasticsearch succeeded.",
                u64::from(self.connected.load(Relaxed)),
            ),
        ];
        for (name, help, v) in gauges {
            f.gauge(name, help, v)?;
        }
        self.latency.families(f)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_histogram_is_cumulative() {
        let l = std::sync::Arc::new(Latency::default());
        l.observe(Duration::from_millis(3));
        l.observe(Duration::from_millis(80));
        l.observe(Duration::from_secs(30));
        let src = l.clone();
        let out = exposition::encode(&[std::sync::Arc::new(move |f: &mut Families<'_>| {
            src.families(f)
        })]);
        let m = "mamori_elasticsearch_request_duration_seconds";
        assert!(
            out.contains(&format!("{m}_bucket{{le=\"0.005\"}} 1\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{m}_bucket{{le=\"0.1\"}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{m}_bucket{{le=\"10.0\"}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{m}_bucket{{le=\"+Inf\"}} 3\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{m}_count 3\n")), "{out}");
        assert!(out.contains(&format!("{m}_sum 30.083\n")), "{out}");
    }
}
