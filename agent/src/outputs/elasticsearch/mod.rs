//! The Elasticsearch output: alerts become ECS documents, are written to
//! the disk spool (synced) before anything is sent, and are delivered in
//! order with `_bulk` by the [`sender`]. Each alert is stored once: its
//! `_id` is fixed when the document is made, and a resend answers 409.
//!
//! ```text
//! alerts ─► writer (ECS, spool append + fsync) ─► spool ─► sender ─► _bulk
//!                         └ spool full: oldest dropped, counted on disk;
//!                           the sender reports them in an internal alert
//! ```

pub mod bulk;
pub mod client;
pub mod configure;
pub mod sender;
pub mod setup;
pub mod stats;
pub mod status;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{Notify, mpsc, watch};
use tracing::{error, warn};

use self::{
    bulk::{Doc, Target},
    client::{Client, Connection},
    sender::{Batching, Sender},
    stats::Stats,
    status::StatusWriter,
};
use super::{
    backoff::Backoff,
    ecs::EcsMapper,
    spool::{self, Spool},
};
use crate::{
    alert::{Alert, FieldValue, Priority},
    telemetry::{exposition::Families, metrics::Metrics},
};

/// Settings of the output (from the config file and flags).
#[derive(Clone, Debug)]
pub struct Settings {
    pub connection: Connection,
    pub target: Target,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub batching: Batching,
    pub backoff: Backoff,
    /// Install the templates at start when missing or older.
    pub setup: bool,
    /// After SIGTERM, how long to go on delivering the spool.
    pub drain_timeout: Duration,
    /// Raise an internal alert once Elasticsearch is unreachable this long.
    pub down_alert_after: Duration,
    /// How often the agent's status document is written; `None`: never.
    pub status_interval: Option<Duration>,
}

impl Settings {
    /// Defaults for `url`: data stream `logs-mamori.alerts-default`,
    /// batches of 500 documents / 5 MiB / 1 s, a 1 GiB spool.
    pub fn new(connection: Connection, spool_dir: PathBuf) -> Self {
        Self {
            connection,
            target: Target::DataStream {
                namespace: "default".into(),
            },
            spool_dir,
            spool_max_bytes: 1 << 30,
            batching: Batching {
                docs: 500,
                bytes: 5 << 20,
                flush_interval: Duration::from_secs(1),
            },
            backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            setup: true,
            drain_timeout: Duration::from_secs(5),
            down_alert_after: Duration::from_secs(300),
            status_interval: Some(Duration::from_secs(30)),
        }
    }
}

/// The output, ready to run: the spool is open (and locked).
pub struct Output {
    settings: Settings,
    client: Client,
    spool: Arc<Mutex<Spool>>,
    stats: Arc<Stats>,
    mapper: EcsMapper,
    /// Read for the status documents.
    metrics: Arc<Metrics>,
}

impl Output {
    /// Opens the spool and builds the client; errors here stop the start
    /// (a spool that cannot be written would lose alerts).
    pub fn open(
        settings: Settings,
        mapper: EcsMapper,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let client = Client::new(&settings.connection)?;
        let spool = Spool::open(
            &settings.spool_dir,
            spool::Limits::with_max(settings.spool_max_bytes),
        )?;
        let stats = Arc::new(Stats::default());
        stats.set_spool_gauges(spool.pending(), spool.bytes());
        let s = stats.clone();
        metrics.add_source(Arc::new(move |f: &mut Families<'_>| s.families(f)));
        Ok(Self {
            settings,
            client,
            spool: Arc::new(Mutex::new(spool)),
            stats,
            mapper,
            metrics: metrics.clone(),
        })
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Watches for a long outage, to raise an internal alert.
    pub fn down_watch(&self) -> DownWatch {
        DownWatch {
            stats: self.stats.clone(),
            after: self.settings.down_alert_after,
            hostname: self.mapper.identity.host_name.clone(),
            alerted_for: 0,
        }
    }

    /// Writes every alert from `rx` to the spool and delivers the spool,
    /// until `rx` closes; then delivers for up to the drain timeout.
    pub async fn run(self, mut rx: mpsc::Receiver<Arc<Alert>>) {
        let appended = Arc::new(Notify::new());
        let (closing_tx, closing_rx) = watch::channel(false);
        let sender = Sender {
            client: self.client.clone(),
            target: self.settings.target.clone(),
            spool: self.spool.clone(),
            appended: appended.clone(),
            stats: self.stats.clone(),
            batching: self.settings.batching.clone(),
            backoff: self.settings.backoff.clone(),
            setup: self.settings.setup,
            drain_timeout: self.settings.drain_timeout,
            mapper: self.mapper.clone(),
        };
        let status = self.settings.status_interval.map(|interval| {
            let writer = StatusWriter {
                client: self.client.clone(),
                target: self.settings.target.clone(),
                interval,
                host_name: self.mapper.identity.host_name.clone(),
                metrics: self.metrics.clone(),
                stats: self.stats.clone(),
            };
            tokio::spawn(writer.run(closing_rx.clone()))
        });
        let sender = tokio::spawn(sender.run(closing_rx));

        let mut batch: Vec<Arc<Alert>> = Vec::new();
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < 512 {
                match rx.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
            let records: Vec<Vec<u8>> = batch.drain(..).map(|a| self.encode(&a)).collect();
            let dropped = self.append(records).await;
            if dropped > 0 {
                Stats::add(&self.stats.spool_dropped, dropped);
                warn!(dropped, "spool full: dropped the oldest undelivered alerts");
            }
            appended.notify_one();
        }
        let _ = closing_tx.send(true);
        let _ = sender.await;
        if let Some(status) = status {
            let _ = status.await;
        }
    }

    fn encode(&self, alert: &Alert) -> Vec<u8> {
        let (id, doc) = self.mapper.document(alert, crate::time::now_ns());
        Doc::encode(&id, alert.time_ns, doc.to_string().as_bytes())
    }

    /// Appends and syncs; returns how many old records were dropped.
    async fn append(&self, records: Vec<Vec<u8>>) -> u64 {
        let n = records.len() as u64;
        let spool = self.spool.clone();
        let stats = self.stats.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut s = spool.lock().map_err(|_| "spool lock poisoned".to_owned())?;
            let dropped = s.append(&records).map_err(|e| e.to_string())?;
            // Gauges follow every append, so a reader of the metrics never
            // sees alerts counted as spooled but not yet as pending.
            stats.set_spool_gauges(s.pending(), s.bytes());
            Ok::<_, String>(dropped)
        })
        .await;
        match res {
            Ok(Ok(dropped)) => {
                Stats::add(&self.stats.spooled, n);
                dropped
            }
            Ok(Err(e)) => {
                Stats::add(&self.stats.lost, n);
                error!(error = %e, alerts = n, "cannot write alerts to the spool; they are lost for Elasticsearch");
                0
            }
            Err(e) => {
                Stats::add(&self.stats.lost, n);
                error!(error = %e, "spool write task failed");
                0
            }
        }
    }
}

/// Raises `mamori internal: output down` once per outage that lasts
/// longer than `after`; the alerts themselves wait in the spool.
pub struct DownWatch {
    stats: Arc<Stats>,
    after: Duration,
    hostname: String,
    /// The outage (its start) already alerted on.
    alerted_for: u64,
}

impl DownWatch {
    pub fn check(&mut self) -> Option<Alert> {
        let since = Stats::get(&self.stats.down_since_ms);
        let now = crate::time::now_ns() / 1_000_000;
        let down = Duration::from_millis(now.saturating_sub(since));
        if since == 0 || since == self.alerted_for || down < self.after {
            return None;
        }
        self.alerted_for = since;
        let pending = Stats::get(&self.stats.spool_pending);
        Some(Alert::internal(
            crate::time::now_ns(),
            super::OUTPUT_DOWN,
            Priority::Error,
            format!(
                "mamori cannot reach Elasticsearch for {} s; {pending} alerts wait in the spool",
                down.as_secs()
            ),
            vec![
                ("output".into(), FieldValue::Str("elasticsearch".into())),
                ("down_s".into(), FieldValue::UInt(down.as_secs())),
                ("spool_pending".into(), FieldValue::UInt(pending)),
            ],
            &self.hostname,
        ))
    }
}
