//! Outputs: where alerts go. Each sink renders alerts its own way; none
//! knows about rules or the kernel.

pub mod alertmanager;
pub mod backoff;
pub mod ecs;
pub mod elasticsearch;
pub mod event_json;
pub mod falco_http;
pub mod file;
pub mod format;
pub mod identity;
pub mod ids;
pub mod mitre;
pub mod spool;
pub mod storm;
pub mod webhook;

use std::{
    io::{self, Write},
    path::PathBuf,
    sync::Arc,
    time::Instant,
};

use tokio::sync::mpsc;
use tracing::error;

use crate::{alert::Alert, telemetry::metrics::Metrics};

/// The internal alert of an output unreachable for too long (rule name,
/// description).
pub const OUTPUT_DOWN: (&str, &str) = (
    "mamori internal: output down",
    "An output has failed for longer than its alert threshold; its alerts \
     wait (Elasticsearch: in the disk spool; HTTP outputs: in memory).",
);

/// How a stream sink renders alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Falco's alert JSON, one per line.
    Json,
    /// A readable line.
    Text,
}

impl Format {
    pub fn render(self, alert: &Alert) -> String {
        match self {
            Format::Json => format::falco_json(alert),
            Format::Text => format::text_line(alert),
        }
    }
}

/// A configured stream sink.
#[derive(Clone, Debug)]
pub enum Sink {
    Stdout(Format),
    /// Appends to a file (created if missing), rotated past `max_bytes`
    /// (0: never) keeping `keep` old files.
    File {
        path: PathBuf,
        format: Format,
        max_bytes: u64,
        keep: u32,
    },
}

impl Sink {
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Stdout(_) => "stdout",
            Sink::File { .. } => "file",
        }
    }

    fn format(&self) -> Format {
        match self {
            Sink::Stdout(f) | Sink::File { format: f, .. } => *f,
        }
    }
}

enum Writer {
    Stdout(io::Stdout),
    File(file::RotatingFile),
}

impl Writer {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Writer::Stdout(s) => {
                let mut s = s.lock();
                s.write_all(line)?;
                s.flush()
            }
            Writer::File(f) => f.write_line(line),
        }
    }
}

/// Where alerts go, and what comes before them.
pub struct Outputs {
    pub sinks: Vec<Sink>,
    pub elasticsearch: Option<elasticsearch::Output>,
    pub http: Vec<webhook::Output>,
    pub storm: storm::Settings,
    /// For the agent's own alerts (storm summaries).
    pub hostname: String,
}

/// Delivers every alert from `rx` that storm control lets through to every
/// stream sink, to Elasticsearch and to the HTTP outputs, until `rx`
/// closes; then summarises what storm control held back and lets the
/// queued outputs drain. A failing sink is counted and logged; the others
/// go on. Every few seconds the networked outputs are checked for trouble
/// worth an internal alert (down too long, alerts dropped), and storm
/// control for summaries due.
pub async fn run(
    mut rx: mpsc::Receiver<Alert>,
    outputs: Outputs,
    metrics: Arc<Metrics>,
    heartbeat: crate::telemetry::liveness::Heartbeat,
) {
    let mut storm = storm::Storm::new(outputs.storm, &outputs.hostname);
    let mut down_watch = outputs
        .elasticsearch
        .as_ref()
        .map(elasticsearch::Output::down_watch);
    let mut fanout = Fanout::start(
        outputs.sinks,
        outputs.elasticsearch,
        outputs.http,
        metrics.clone(),
    );
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            a = rx.recv() => match a {
                Some(a) => {
                    if storm.admit(&a, Instant::now()) == storm::Verdict::Suppressed {
                        metrics.suppressed(&a.rule);
                    } else {
                        fanout.deliver(a).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                let mut internal: Vec<Alert> = storm.summaries(Instant::now(), false);
                internal.extend(down_watch.as_mut().and_then(elasticsearch::DownWatch::check));
                for h in &mut fanout.http {
                    internal.extend(h.check());
                }
                for a in internal {
                    fanout.deliver(a).await;
                }
            }
        }
        heartbeat.beat();
    }
    for a in storm.summaries(Instant::now(), true) {
        fanout.deliver(a).await;
    }
    fanout.close().await;
}

/// The outputs, open.
struct Fanout {
    writers: Vec<(Sink, Writer)>,
    http: Vec<webhook::Running>,
    es_tx: Option<mpsc::Sender<Arc<Alert>>>,
    es_task: Option<tokio::task::JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Fanout {
    fn start(
        sinks: Vec<Sink>,
        elasticsearch: Option<elasticsearch::Output>,
        http: Vec<webhook::Output>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut writers = Vec::new();
        for sink in sinks {
            match open(&sink) {
                Ok(w) => writers.push((sink, w)),
                Err(e) => {
                    error!(sink = sink.name(), error = %e, "cannot open output");
                    metrics.output_failed(sink.name());
                }
            }
        }
        let (es_tx, es_task) = match elasticsearch {
            Some(out) => {
                let (tx, rx) = mpsc::channel(ES_QUEUE);
                (Some(tx), Some(tokio::spawn(out.run(rx))))
            }
            None => (None, None),
        };
        Self {
            writers,
            http: http.into_iter().map(webhook::Output::spawn).collect(),
            es_tx,
            es_task,
            metrics,
        }
    }

    async fn deliver(&mut self, alert: Alert) {
        let alert = Arc::new(alert);
        for (sink, w) in &mut self.writers {
            let mut line = sink.format().render(&alert);
            line.push('\n');
            match w.write_line(line.as_bytes()) {
                Ok(()) => self.metrics.output_sent(sink.name()),
                Err(e) => {
                    self.metrics.output_failed(sink.name());
                    error!(sink = sink.name(), error = %e, "output write failed");
                }
            }
        }
        for h in &self.http {
            h.offer(&alert);
        }
        if let Some(tx) = &self.es_tx {
            // Waits when the spool writer is behind: back-pressure, not loss.
            if tx.send(alert).await.is_err() {
                self.metrics.output_failed("elasticsearch");
            }
        }
    }

    /// Lets the queued outputs drain, side by side, each within its own
    /// timeout.
    async fn close(self) {
        drop(self.es_tx);
        let mut closing = tokio::task::JoinSet::new();
        for h in self.http {
            closing.spawn(h.close());
        }
        if let Some(task) = self.es_task {
            let _ = task.await;
        }
        closing.join_all().await;
    }
}

/// Alerts queued for the spool writer.
const ES_QUEUE: usize = 4096;

fn open(sink: &Sink) -> io::Result<Writer> {
    Ok(match sink {
        Sink::Stdout(_) => Writer::Stdout(io::stdout()),
        Sink::File {
            path,
            max_bytes,
            keep,
            ..
        } => Writer::File(file::RotatingFile::open(path, *max_bytes, *keep)?),
    })
}
