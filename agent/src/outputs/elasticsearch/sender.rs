//! The delivery loop: reads the spool in order, sends `_bulk` batches,
//! retries what can be retried, dead-letters what Elasticsearch refuses,
//! and acknowledges a batch only when every document in it is settled.
//!
//! Batches close at `batch_docs` documents, `batch_bytes` bytes, or
//! `flush_interval` after their first document. Failures of a whole
//! request (unreachable, 429, 5xx, 401/403) are retried forever with
//! exponential backoff and jitter: the alerts wait in the spool meanwhile.

use std::{
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use backon::{BackoffBuilder, ExponentialBuilder};
use elasticsearch::http::Method;
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use super::{
    bulk::{self, Doc, Outcome, Target},
    client::{Client, Error},
    setup,
    stats::Stats,
};
use crate::{
    alert::{Alert, FieldValue, Priority},
    outputs::{
        backoff::Backoff,
        ecs::EcsMapper,
        spool::{Drops, Spool},
    },
};

/// When batches close.
#[derive(Clone, Debug)]
pub struct Batching {
    pub docs: usize,
    pub bytes: usize,
    pub flush_interval: Duration,
}

pub struct Sender {
    pub client: Client,
    pub target: Target,
    pub spool: Arc<Mutex<Spool>>,
    /// Signalled when the writer appended.
    pub appended: Arc<Notify>,
    pub stats: Arc<Stats>,
    pub batching: Batching,
    pub backoff: Backoff,
    /// Install templates when missing or older than this agent's.
    pub setup: bool,
    /// How long to go on delivering after the writer closed.
    pub drain_timeout: Duration,
    /// Makes the internal alert that reports spool drops.
    pub mapper: EcsMapper,
}

/// The bulk path with a compact answer: statuses and errors only.
const BULK_PATH: &str =
    "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason";

/// A document on its way: where it goes, and whether it is already the
/// dead letter of a refused alert.
#[derive(Clone, Debug)]
struct Item {
    doc: Doc,
    index: String,
    dead_letter: bool,
}

/// Logs trouble once when it starts, then at most every 30 s, and once
/// when it ends.
#[derive(Default)]
struct Trouble {
    since: Option<Instant>,
    last_log: Option<Instant>,
    failures: u64,
}

impl Trouble {
    fn failed(&mut self, e: &Error, pending: u64) {
        self.failures += 1;
        let now = Instant::now();
        let due = self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(30));
        if self.since.is_none() {
            self.since = Some(now);
        }
        if due {
            self.last_log = Some(now);
            error!(
                error = %e,
                failures = self.failures,
                pending_alerts = pending,
                "Elasticsearch delivery failing; alerts are kept in the spool and retried"
            );
        }
    }

    fn recovered(&mut self, pending: u64) {
        if let Some(since) = self.since.take() {
            info!(
                after_s = since.elapsed().as_secs(),
                failures = self.failures,
                pending_alerts = pending,
                "Elasticsearch reachable again; delivering the spool"
            );
        }
        self.failures = 0;
        self.last_log = None;
    }
}

/// What the delivery loop carries between requests.
struct LoopState {
    trouble: Trouble,
    /// The delays of the failures in a row so far (`None` after a success).
    delays: Option<<ExponentialBuilder as BackoffBuilder>::Backoff>,
    /// Set once closing: delivery stops at this time.
    deadline: Option<Instant>,
    closing: watch::Receiver<bool>,
}

impl LoopState {
    fn note_closing(&mut self, drain_timeout: Duration) {
        if self.deadline.is_none() && *self.closing.borrow() {
            self.deadline = Some(Instant::now() + drain_timeout);
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// The internal alert reporting alerts dropped from a full spool. Its time
/// is the last drop's, so the same report always gets the same id.
fn spool_full_alert(drops: &Drops, hostname: &str) -> Alert {
    let n = drops.unreported();
    Alert::internal(
        drops.last_ns,
        (
            "mamori internal: spool full",
            "Elasticsearch was unreachable for long enough to fill the disk spool; \
                      the oldest undelivered alerts were dropped.",
        ),
        Priority::Critical,
        format!(
            "mamori dropped {n} undelivered alerts: the spool was full (Elasticsearch unreachable for too long?)"
        ),
        vec![
            ("n_dropped".into(), FieldValue::UInt(n)),
            ("n_dropped_total".into(), FieldValue::UInt(drops.total)),
        ],
        hostname,
    )
}

impl Sender {
    /// Runs until `closing` turns true and the spool is drained (or the
    /// drain timeout passes; the rest waits in the spool for next start).
    pub async fn run(self, closing: watch::Receiver<bool>) {
        let mut st = LoopState {
            trouble: Trouble::default(),
            delays: None,
            deadline: None,
            closing,
        };
        let mut setup_done = !self.setup;
        loop {
            st.note_closing(self.drain_timeout);
            if st.past_deadline() {
                self.update_spool_stats().await;
                let pending = Stats::get(&self.stats.spool_pending);
                if pending > 0 {
                    warn!(
                        pending_alerts = pending,
                        "stopping with alerts in the spool; they will be sent after the next start"
                    );
                }
                return;
            }
            if !setup_done {
                match self.ensure_templates().await {
                    Ok(()) => setup_done = true,
                    Err(e) if e.retryable() => {
                        self.stats.reachable(false);
                        st.trouble.failed(&e, self.pending().await);
                        self.sleep(&mut st).await;
                        continue;
                    }
                    Err(e) => {
                        error!(error = %e, "cannot install the index templates; sending anyway");
                        setup_done = true;
                    }
                }
            }
            // The status writer waits for this: a document written before
            // the templates would make an index of the wrong kind.
            self.stats.templates_ready.store(true, Ordering::Relaxed);
            // Drops are reported before the alerts that outlived them.
            if let Some((doc, drops)) = self.drop_report().await {
                let item = Item {
                    index: self.target.alerts(doc.time_ns),
                    doc,
                    dead_letter: false,
                };
                if self.deliver(vec![item], &mut st).await {
                    self.drops_reported(drops.total).await;
                }
                continue;
            }
            let batch = self
                .next_batch(st.deadline.is_some(), &mut st.closing)
                .await;
            if batch.is_empty() {
                if st.deadline.is_some() {
                    self.update_spool_stats().await;
                    return;
                }
                continue;
            }
            let last_seq = batch.last().map_or(0, |d| d.seq);
            let items: Vec<Item> = batch
                .into_iter()
                .map(|doc| Item {
                    index: self.target.alerts(doc.time_ns),
                    doc,
                    dead_letter: false,
                })
                .collect();
            if self.deliver(items, &mut st).await {
                self.ack(last_seq).await;
            }
        }
    }

    /// Sends `items` until every one is settled (true) or the drain
    /// deadline passes (false); only the deadline stops the retries.
    async fn deliver(&self, mut items: Vec<Item>, st: &mut LoopState) -> bool {
        loop {
            match self.send(&mut items).await {
                Ok(()) => {
                    st.trouble.recovered(self.pending().await);
                    st.delays = None;
                    if items.is_empty() {
                        return true;
                    }
                }
                Err(e) => {
                    Stats::add(&self.stats.bulk_failures, 1);
                    self.stats.reachable(false);
                    st.trouble.failed(&e, self.pending().await);
                }
            }
            st.note_closing(self.drain_timeout);
            if st.past_deadline() {
                return false;
            }
            self.sleep(st).await;
        }
    }

    /// The internal alert for drops not yet reported, if any. Its id comes
    /// from the drop record, so a resend after a crash is a duplicate.
    async fn drop_report(&self) -> Option<(Doc, Drops)> {
        let drops = self.spool.lock().ok()?.drops();
        if drops.unreported() == 0 {
            return None;
        }
        let alert = spool_full_alert(&drops, &self.mapper.identity.host_name);
        let (id, json) = self.mapper.document(&alert, crate::time::now_ns());
        let doc = Doc {
            seq: 0,
            id,
            time_ns: alert.time_ns,
            json: json.to_string().into_bytes(),
        };
        Some((doc, drops))
    }

    async fn drops_reported(&self, total: u64) {
        let spool = self.spool.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut s = spool.lock().map_err(|_| "spool lock poisoned".to_owned())?;
            s.drops_reported(total).map_err(|e| e.to_string())
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                error!(error = %e, "cannot record the spool-drop report (it may be sent again; Elasticsearch drops the duplicate)")
            }
            Err(e) => error!(error = %e, "spool drop-report task failed"),
        }
    }

    /// The next batch: waits for documents, then up to the flush interval
    /// for the batch to fill.
    async fn next_batch(&self, draining: bool, closing: &mut watch::Receiver<bool>) -> Vec<Doc> {
        let b = &self.batching;
        let mut batch = self.read(b.docs, b.bytes).await;
        if batch.is_empty() {
            if draining {
                return batch;
            }
            tokio::select! {
                () = self.appended.notified() => {}
                _ = closing.changed() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            batch = self.read(b.docs, b.bytes).await;
            if batch.is_empty() {
                return batch;
            }
        }
        let started = Instant::now();
        let size = |v: &[Doc]| v.iter().map(|d| d.json.len()).sum::<usize>();
        while batch.len() < b.docs && size(&batch) < b.bytes && !draining && !*closing.borrow() {
            let left = b.flush_interval.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            tokio::select! {
                () = self.appended.notified() => {}
                _ = closing.changed() => {}
                () = tokio::time::sleep(left) => {}
            }
            let more = self
                .read(b.docs - batch.len(), b.bytes.saturating_sub(size(&batch)))
                .await;
            batch.extend(more);
        }
        batch
    }

    /// Sends `items` once. Settled items leave the vector; refused alerts
    /// turn into dead letters; retryable ones stay. `Err` when the request
    /// failed as a whole.
    async fn send(&self, items: &mut Vec<Item>) -> Result<(), Error> {
        let body = bulk::body(
            items.iter().map(|i| (i.index.as_str(), &i.doc)),
            crate::time::now_ns(),
        );
        Stats::add(&self.stats.bulk_requests, 1);
        let started = Instant::now();
        let answer = self
            .client
            .request(
                Method::Post,
                BULK_PATH,
                "application/x-ndjson",
                Some(body.into()),
            )
            .await;
        self.stats.latency.observe(started.elapsed());
        let answer = answer?;
        if answer.status == 413 && items.len() > 1 {
            // Too large for the cluster's limit: send halves separately.
            let mut rest = items.split_off(items.len() / 2);
            Box::pin(self.send(items)).await?;
            Box::pin(self.send(&mut rest)).await?;
            items.extend(rest);
            return Ok(());
        }
        if !answer.ok() {
            return Err(self.client.status_error("POST /_bulk", &answer));
        }
        self.stats.reachable(true);
        let outcomes = bulk::outcomes(&answer.body, items.len());
        let mut left = Vec::new();
        for (item, outcome) in items.drain(..).zip(outcomes) {
            match outcome {
                Outcome::Created if item.dead_letter => Stats::add(&self.stats.dead_lettered, 1),
                Outcome::Created => Stats::add(&self.stats.indexed, 1),
                Outcome::Duplicate if item.dead_letter => {
                    Stats::add(&self.stats.dead_lettered, 1);
                }
                Outcome::Duplicate => Stats::add(&self.stats.duplicates, 1),
                Outcome::Retry { .. } => {
                    Stats::add(&self.stats.item_retries, 1);
                    left.push(item);
                }
                Outcome::Refused { status, reason } if !item.dead_letter => {
                    warn!(
                        id = %item.doc.id,
                        status,
                        reason = %reason,
                        "Elasticsearch refused an alert; storing it in the dead-letter stream"
                    );
                    let json =
                        bulk::dead_letter(&item.doc, status, &reason, self.target.namespace());
                    left.push(Item {
                        index: self.target.dead_letter(item.doc.time_ns),
                        doc: Doc { json, ..item.doc },
                        dead_letter: true,
                    });
                }
                Outcome::Refused { status, reason } => {
                    Stats::add(&self.stats.lost, 1);
                    error!(
                        id = %item.doc.id,
                        status,
                        reason = %reason,
                        document = %String::from_utf8_lossy(&item.doc.json),
                        "Elasticsearch refused the dead letter of an alert too; the alert is only in this log"
                    );
                }
            }
        }
        *items = left;
        Ok(())
    }

    async fn ensure_templates(&self) -> Result<(), Error> {
        if setup::is_current(&self.client, &self.target).await? {
            return Ok(());
        }
        let report = setup::install(&self.client, &self.target).await?;
        info!(installed = ?report.installed, "Elasticsearch templates installed");
        for f in &report.fallbacks {
            warn!("Elasticsearch setup: {f}");
        }
        Ok(())
    }

    async fn sleep(&self, st: &mut LoopState) {
        let delay = st
            .delays
            .get_or_insert_with(|| self.backoff.delays())
            .next()
            .unwrap_or(self.backoff.max);
        let delay = match st.deadline {
            Some(d) => delay.min(d.saturating_duration_since(Instant::now())),
            None => delay,
        };
        let draining = st.deadline.is_some();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = st.closing.changed(), if !draining => {}
        }
    }

    async fn read(&self, docs: usize, bytes: usize) -> Vec<Doc> {
        let spool = self.spool.clone();
        let stats = self.stats.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut s = spool.lock().map_err(|_| "spool lock poisoned".to_owned())?;
            let recs = s.read(docs, bytes).map_err(|e| e.to_string())?;
            stats
                .spool_corrupt
                .store(s.stats().corrupt_records, Ordering::Relaxed);
            Ok::<_, String>(recs)
        })
        .await;
        let recs = match read {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                error!(error = %e, "cannot read the spool");
                return Vec::new();
            }
            Err(e) => {
                error!(error = %e, "spool read task failed");
                return Vec::new();
            }
        };
        recs.into_iter()
            .filter_map(|r| {
                let seq = r.seq;
                let d = Doc::decode(seq, &r.payload);
                if d.is_none() {
                    // It passed its checksum, so it was written this way.
                    Stats::add(&self.stats.lost, 1);
                    error!(seq, "spool record is not an alert document; skipped");
                }
                d
            })
            .collect()
    }

    async fn ack(&self, seq: u64) {
        let spool = self.spool.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut s = spool.lock().map_err(|_| "spool lock poisoned".to_owned())?;
            s.ack(seq).map_err(|e| e.to_string())
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                error!(error = %e, "cannot record delivery in the spool (alerts may be resent; Elasticsearch drops the duplicates)")
            }
            Err(e) => error!(error = %e, "spool ack task failed"),
        }
        self.update_spool_stats().await;
    }

    async fn pending(&self) -> u64 {
        self.update_spool_stats().await;
        Stats::get(&self.stats.spool_pending)
    }

    async fn update_spool_stats(&self) {
        if let Ok(s) = self.spool.lock() {
            self.stats.set_spool_gauges(s.pending(), s.bytes());
        }
    }
}
