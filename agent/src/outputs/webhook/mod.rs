//! Alerts delivered by HTTP POST (Alertmanager, Falco's `http_output`).
//!
//! The pipeline hands each alert to a bounded in-memory queue and never
//! waits: when the queue is full the alert is dropped, counted, and
//! reported by an internal alert. A task takes what is queued (up to a
//! batch), posts it, and while the receiver is away retries the same batch
//! with backoff, so alerts arrive in order and none is skipped. What a
//! request holds is the output's [`Encoder`]; this module knows only HTTP.

mod client;
pub mod configure;
mod delivery;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

pub use self::client::Endpoint;
use self::{client::Client, delivery::Delivery};
use super::backoff::Backoff;
use crate::{
    alert::{Alert, FieldValue, Priority},
    telemetry::{exposition::Families, metrics::Metrics},
};

/// Renders one request's body.
pub trait Encoder: Send + Sync + 'static {
    /// The body of a request carrying `batch` (never empty).
    fn encode(&self, batch: &[Arc<Alert>]) -> Vec<u8>;
}

/// What every HTTP output is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The output's name in metrics, logs and internal alerts.
    pub name: &'static str,
    pub endpoint: Endpoint,
    /// Alerts less severe than this are not sent.
    pub min_priority: Priority,
    /// Alerts per request, at most.
    pub batch_size: usize,
    /// Alerts waiting, at most; more are dropped (and counted).
    pub queue_size: usize,
    pub backoff: Backoff,
    /// Raise `mamori internal: output down` after this long unreachable.
    pub down_alert_after: Duration,
    /// How long to go on delivering at shutdown.
    pub drain_timeout: Duration,
}

impl Settings {
    /// Defaults for an output posting to `endpoint`.
    pub fn new(name: &'static str, endpoint: Endpoint) -> Self {
        Self {
            name,
            endpoint,
            min_priority: Priority::Debug,
            batch_size: 100,
            queue_size: 10_000,
            backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            down_alert_after: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Shared between the queue's two ends and the metrics.
#[derive(Debug, Default)]
struct Stats {
    /// Alerts in the queue or in the batch being sent.
    waiting: AtomicU64,
    /// Dropped because the queue was full, or left at shutdown.
    dropped: AtomicU64,
    /// When the receiver stopped answering (ms since the epoch; 0: up).
    down_since_ms: AtomicU64,
}

impl Stats {
    fn reachable(&self, ok: bool) {
        if ok {
            self.down_since_ms.store(0, Relaxed);
        } else if self.down_since_ms.load(Relaxed) == 0 {
            self.down_since_ms
                .store(crate::time::now_ns() / 1_000_000, Relaxed);
        }
    }
}

/// An HTTP output, configured and checked, not yet running.
pub struct Output {
    settings: Settings,
    client: Client,
    encoder: Box<dyn Encoder>,
    stats: Arc<Stats>,
    metrics: Arc<Metrics>,
    hostname: String,
}

impl Output {
    /// Builds the client (reading the CA file): a bad one stops the start
    /// instead of failing every alert later.
    pub fn open(
        settings: Settings,
        encoder: impl Encoder,
        metrics: &Arc<Metrics>,
        hostname: &str,
    ) -> anyhow::Result<Self> {
        let client = Client::new(&settings.endpoint)?;
        let stats = Arc::new(Stats::default());
        let (s, name) = (stats.clone(), settings.name);
        metrics.add_source(Arc::new(move |f: &mut Families<'_>| {
            f.gauges(
                "mamori_output_queued_alerts",
                "Alerts waiting for an HTTP output (queued or being sent).",
                [([("output", name)], s.waiting.load(Relaxed))],
            )
        }));
        Ok(Self {
            settings,
            client,
            encoder: Box::new(encoder),
            stats,
            metrics: metrics.clone(),
            hostname: hostname.to_owned(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.settings.name
    }

    /// Starts delivering (in the async runtime).
    pub fn spawn(self) -> Running {
        let (tx, rx) = mpsc::channel(self.settings.queue_size.max(1));
        let (closing_tx, closing_rx) = watch::channel(false);
        let delivery = Delivery {
            name: self.settings.name,
            client: self.client,
            encoder: self.encoder,
            batch_size: self.settings.batch_size.max(1),
            backoff: self.settings.backoff.clone(),
            drain_timeout: self.settings.drain_timeout,
            stats: self.stats.clone(),
            metrics: self.metrics.clone(),
        };
        let task = tokio::spawn(delivery.run(rx, closing_rx));
        Running {
            name: self.settings.name,
            min_priority: self.settings.min_priority,
            down_alert_after: self.settings.down_alert_after,
            tx: Some(tx),
            closing: closing_tx,
            task,
            stats: self.stats,
            metrics: self.metrics,
            hostname: self.hostname,
            down_alerted_for: 0,
            drops_reported: 0,
            last_drop_alert: None,
        }
    }
}

/// A running HTTP output: the pipeline's end of its queue.
pub struct Running {
    name: &'static str,
    min_priority: Priority,
    down_alert_after: Duration,
    tx: Option<mpsc::Sender<Arc<Alert>>>,
    closing: watch::Sender<bool>,
    task: JoinHandle<()>,
    stats: Arc<Stats>,
    metrics: Arc<Metrics>,
    hostname: String,
    /// The outage (its start) already alerted on.
    down_alerted_for: u64,
    /// Drops already reported by an internal alert.
    drops_reported: u64,
    last_drop_alert: Option<Instant>,
}

/// At most one "queue full" alert per output this often.
const DROP_ALERT_EVERY: Duration = Duration::from_secs(60);

impl Running {
    /// Queues `alert` if it is severe enough; never waits. The output's
    /// internal alerts about itself (down, queue full) go to the others
    /// only: they would wait behind the trouble they report.
    pub fn offer(&self, alert: &Arc<Alert>) {
        if alert.priority > self.min_priority || self.is_about_me(alert) {
            return;
        }
        let Some(tx) = &self.tx else { return };
        match tx.try_send(alert.clone()) {
            Ok(()) => {
                self.stats.waiting.fetch_add(1, Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.dropped.fetch_add(1, Relaxed);
                self.metrics.output_add(self.name, "dropped", 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.metrics.output_add(self.name, "failed", 1);
            }
        }
    }

    fn is_about_me(&self, a: &Alert) -> bool {
        a.source == crate::alert::Source::Internal
            && a.output_fields
                .iter()
                .any(|(k, v)| k == "output" && *v == FieldValue::Str(self.name.into()))
    }

    /// Internal alerts about this output: down for too long, or alerts
    /// dropped since the last report.
    pub fn check(&mut self) -> Vec<Alert> {
        let mut out = Vec::new();
        let now_ms = crate::time::now_ns() / 1_000_000;
        let since = self.stats.down_since_ms.load(Relaxed);
        let down = Duration::from_millis(now_ms.saturating_sub(since));
        if since != 0 && since != self.down_alerted_for && down >= self.down_alert_after {
            self.down_alerted_for = since;
            let waiting = self.stats.waiting.load(Relaxed);
            out.push(Alert::internal(
                crate::time::now_ns(),
                super::OUTPUT_DOWN,
                Priority::Error,
                format!(
                    "mamori cannot reach {} for {} s; {waiting} alerts wait in memory",
                    self.name,
                    down.as_secs()
                ),
                vec![
                    ("output".into(), FieldValue::Str(self.name.into())),
                    ("down_s".into(), FieldValue::UInt(down.as_secs())),
                    ("queued".into(), FieldValue::UInt(waiting)),
                ],
                &self.hostname,
            ));
        }
        let dropped = self.stats.dropped.load(Relaxed);
        let due = self
            .last_drop_alert
            .is_none_or(|t| t.elapsed() >= DROP_ALERT_EVERY);
        if dropped > self.drops_reported && due {
            let n = dropped - self.drops_reported;
            self.drops_reported = dropped;
            self.last_drop_alert = Some(Instant::now());
            out.push(Alert::internal(
                crate::time::now_ns(),
                (
                    "mamori internal: output queue full",
                    "An output's queue was full: alerts for it were dropped \
                     (the other outputs still have them).",
                ),
                Priority::Critical,
                format!(
                    "{n} alerts for {} were dropped: its queue was full",
                    self.name
                ),
                vec![
                    ("output".into(), FieldValue::Str(self.name.into())),
                    ("dropped".into(), FieldValue::UInt(n)),
                ],
                &self.hostname,
            ));
        }
        out
    }

    /// Closes the queue and waits while what is queued is delivered (up
    /// to the drain timeout).
    pub async fn close(mut self) {
        self.tx = None;
        let _ = self.closing.send(true);
        let _ = self.task.await;
    }
}
