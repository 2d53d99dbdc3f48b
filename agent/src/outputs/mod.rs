//! Outputs: where alerts go. Each sink renders alerts its own way; none
//! knows about rules or the kernel.

pub mod event_json;
pub mod format;
pub mod time;

use std::{
    io::{self, Write},
    path::PathBuf,
};

use tokio::sync::mpsc;
use tracing::error;

use crate::{alert::Alert, telemetry::metrics::Metrics};

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

/// A configured sink.
#[derive(Clone, Debug)]
pub enum Sink {
    Stdout(Format),
    /// Appends to a file (created if missing).
    File(PathBuf, Format),
}

impl Sink {
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Stdout(_) => "stdout",
            Sink::File(..) => "file",
        }
    }
}

/// Delivers every alert from `rx` to every sink, until `rx` closes; then
/// flushes. A failing sink is counted and logged; the others go on.
pub async fn run(
    mut rx: mpsc::Receiver<Alert>,
    sinks: Vec<Sink>,
    metrics: std::sync::Arc<Metrics>,
) {
    let mut writers: Vec<(Sink, Box<dyn Write + Send>)> = Vec::new();
    for sink in sinks {
        match open(&sink) {
            Ok(w) => writers.push((sink, w)),
            Err(e) => {
                error!(sink = sink.name(), error = %e, "cannot open output");
                metrics.output_failed(sink.name());
            }
        }
    }
    while let Some(alert) = rx.recv().await {
        for (sink, w) in &mut writers {
            let (Sink::Stdout(fmt) | Sink::File(_, fmt)) = sink;
            let mut line = fmt.render(&alert);
            line.push('\n');
            match w.write_all(line.as_bytes()).and_then(|()| w.flush()) {
                Ok(()) => metrics.output_sent(sink.name()),
                Err(e) => {
                    metrics.output_failed(sink.name());
                    error!(sink = sink.name(), error = %e, "output write failed");
                }
            }
        }
    }
    for (_, w) in &mut writers {
        let _ = w.flush();
    }
}

fn open(sink: &Sink) -> io::Result<Box<dyn Write + Send>> {
    Ok(match sink {
        Sink::Stdout(_) => Box::new(io::stdout()),
        Sink::File(path, _) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
    })
}
