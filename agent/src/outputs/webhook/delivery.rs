//! The task that empties an HTTP output's queue: a batch of what is
//! queued, posted; on a failure that may pass, the same batch again after
//! a backoff, so order holds and nothing is skipped; at shutdown, delivery
//! for up to the drain timeout, then what is left is counted as dropped.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::{
    Encoder, Stats,
    client::{Client, Failure},
};
use crate::{alert::Alert, outputs::backoff::Backoff, telemetry::metrics::Metrics};

pub struct Delivery {
    pub name: &'static str,
    pub client: Client,
    pub encoder: Box<dyn Encoder>,
    pub batch_size: usize,
    pub backoff: Backoff,
    pub drain_timeout: Duration,
    pub stats: Arc<Stats>,
    pub metrics: Arc<Metrics>,
}

impl Delivery {
    pub async fn run(self, mut rx: mpsc::Receiver<Arc<Alert>>, mut closing: watch::Receiver<bool>) {
        let mut batch: Vec<Arc<Alert>> = Vec::new();
        let mut delays = None;
        // Set once closing: give up after it.
        let mut deadline: Option<Instant> = None;
        loop {
            if batch.is_empty() {
                match rx.recv().await {
                    Some(a) => batch.push(a),
                    None => return,
                }
            }
            while batch.len() < self.batch_size {
                match rx.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
            let n = batch.len() as u64;
            match self.client.post(self.encoder.encode(&batch)).await {
                Ok(()) => {
                    if delays.take().is_some() {
                        info!(output = self.name, "output reachable again");
                    }
                    self.stats.reachable(true);
                    self.metrics.output_add(self.name, "sent", n);
                    self.done(&mut batch);
                }
                Err(Failure::Refused(why)) => {
                    self.stats.reachable(true);
                    self.metrics.output_add(self.name, "failed", n);
                    error!(output = self.name, alerts = n, error = %why, "the receiver refused alerts");
                    self.done(&mut batch);
                }
                Err(Failure::Retry(why)) => {
                    self.stats.reachable(false);
                    self.metrics.output_add(self.name, "retried", n);
                    if delays.is_none() {
                        warn!(output = self.name, alerts = n, error = %why, "output unreachable; retrying with backoff");
                    }
                    if *closing.borrow() {
                        deadline.get_or_insert_with(|| Instant::now() + self.drain_timeout);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        self.give_up(&mut batch, &mut rx);
                        return;
                    }
                    let delay = delays
                        .get_or_insert_with(|| self.backoff.delays())
                        .next()
                        .unwrap_or(self.backoff.max);
                    let delay = match deadline {
                        Some(d) => delay.min(d.saturating_duration_since(Instant::now())),
                        None => delay,
                    };
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        r = closing.changed(), if deadline.is_none() => {
                            if r.is_err() {
                                deadline = Some(Instant::now() + self.drain_timeout);
                            }
                        }
                    }
                }
            }
        }
    }

    fn done(&self, batch: &mut Vec<Arc<Alert>>) {
        self.stats.waiting.fetch_sub(batch.len() as u64, Relaxed);
        batch.clear();
    }

    /// Shutdown with the receiver still away: what is left is lost, and
    /// said so.
    fn give_up(&self, batch: &mut Vec<Arc<Alert>>, rx: &mut mpsc::Receiver<Arc<Alert>>) {
        while let Ok(a) = rx.try_recv() {
            batch.push(a);
        }
        let n = batch.len() as u64;
        self.stats.dropped.fetch_add(n, Relaxed);
        self.metrics.output_add(self.name, "dropped", n);
        error!(
            output = self.name,
            alerts = n,
            "stopping with the output unreachable: alerts not delivered"
        );
        self.done(batch);
    }
}
