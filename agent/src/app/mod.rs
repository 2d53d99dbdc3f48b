//! Wires the stages with bounded channels and owns start-up and shutdown.
//!
//! capture::Reader ─events─► detect ─alerts─► outputs
//!                                ▲
//!  loss watcher ─internal alerts─┘
//!
//! Shutdown (SIGTERM/SIGINT): the reader drains the ring and closes its
//! channel; each stage finishes its input and closes the next; outputs
//! flush; the programs detach when the capture is dropped.

pub mod kernel_scope;
mod limits;
mod names;
mod open_outputs;
pub mod prefilter;
pub mod reload;
pub mod replay;
pub mod rulestest;
mod supervise;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use mamori_rules::RuleSet;

use self::{
    kernel_scope::{kernel_prefilter, kernel_syscalls, report_rules_that_cannot_fire},
    reload::Reloader,
};
use crate::{
    alert::{Alert, FieldValue, Priority},
    capture::{self, Capture, Counters},
    detect::Detector,
    event::Event,
    outputs::{self, Sink, event_json::event_json},
    record::Recorder,
    rules_files,
    state::State,
    telemetry::{exposition::Families, health, liveness::Heartbeat, metrics::Metrics},
};

/// Everything `run` needs, resolved from flags and the config file.
#[derive(Debug)]
pub struct RunSettings {
    pub rules: Vec<PathBuf>,
    /// Follow the rules ConfigMap through the Kubernetes API.
    pub rules_configmap: Option<crate::rules_configmap::Settings>,
    pub sinks: Vec<Sink>,
    pub health_addr: Option<SocketAddr>,
    /// Print raw events instead of alerts.
    pub events: bool,
    pub capture: capture::Options,
    pub hostname: String,
    pub elasticsearch: Option<outputs::elasticsearch::Settings>,
    /// The Alertmanager output's delivery settings and encoder.
    pub alertmanager: Option<(outputs::webhook::Settings, outputs::alertmanager::Encoder)>,
    /// Storm control in front of the outputs.
    pub storm: outputs::storm::Settings,
    /// Falco's `http_output`: delivery settings and encoder.
    pub http: Option<(outputs::webhook::Settings, outputs::falco_http::Encoder)>,
    /// CRI sockets for pod metadata (empty: the usual ones).
    pub cri_sockets: Vec<PathBuf>,
    /// Bytes all descriptor tables may hold together (`state.fd_table_mib`).
    pub fd_table_bytes: usize,
    /// Write the enriched event stream to this file (`--record`).
    pub record: Option<PathBuf>,
    /// The configuration file, when one was given (watched for tampering).
    pub config_file: Option<PathBuf>,
    /// `rule_matching` and `append_output`.
    pub rules_options: rules_files::LoadOptions,
}

/// Channel depths between stages: deep enough to absorb a burst, bounded
/// so a stuck stage pushes back into the ring (where loss is counted).
const EVENT_QUEUE: usize = 8192;
/// Events the detector takes from its queue at once.
const RECV_BATCH: usize = 256;
const ALERT_QUEUE: usize = 4096;

pub async fn run(settings: RunSettings) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new(&crate::event::TYPE_NAMES));
    if let Some(addr) = settings.health_addr {
        let listener = health::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tokio::spawn(health::serve(listener, metrics.clone()));
    }

    let (files, dirs) = crate::state::agent_self::own_paths(&own_files(&settings));
    let agent_lists = rules_files::agent_lists(files, dirs);
    let (rules, digest) =
        rules_files::load_with(&settings.rules, Some(&agent_lists), &settings.rules_options)?;
    metrics.set_rules(&digest, enabled_rules(&rules));
    let rules = Arc::new(rules);
    // Before the kernel programs: a spool that cannot be opened stops the
    // start rather than losing alerts.
    let identity = outputs::identity::Identity::detect(&settings.hostname, &host_root());
    let elasticsearch = open_outputs::elasticsearch(&settings, &identity, &metrics)?;
    let http_outputs = open_outputs::http(&settings, &identity, &metrics)?;
    let unfiltered = settings.record.is_some() || settings.events;
    let mut capture = start_capture(&settings, &rules, unfiltered).await?;
    let counters = capture.counters_handle()?;
    metrics.add_source(capture::metrics::source(counters.clone()));
    metrics.set_attached();

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (event_tx, event_rx) = mpsc::channel::<Event>(EVENT_QUEUE);
    let (alert_tx, alert_rx) = mpsc::channel::<Alert>(ALERT_QUEUE);
    let beats = Beats::new(&metrics, &event_tx, &alert_tx);
    let reader = capture
        .reader(
            event_tx,
            settings.capture.poll_interval,
            shutdown_rx.clone(),
        )?
        .with_heartbeat(beats.reader);
    let reader = tokio::spawn(reader.run());
    let (state, recorder) = seed_state(&settings, &metrics).await?;
    names::resolve(&state.names, &rules, &metrics).await;
    let detector = Detector::new(rules.clone(), settings.hostname.clone());
    let (rules_tx, rules_rx) = watch::channel(rules);
    let (identities_tx, identities_rx) = watch::channel(Vec::new());
    let detect = tokio::spawn(detect(
        event_rx,
        rules_rx,
        alert_tx.clone(),
        metrics.clone(),
        Taps {
            print_events: settings.events,
            recorder,
            limits: limits::LimitWatch::new(settings.hostname.clone()),
            identities: identities_tx,
        },
        (state, detector),
        beats.detect,
    ));
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(watch_loss(
        counters,
        alert_tx,
        settings.hostname.clone(),
        shutdown_rx,
        drained_rx,
    ));
    let outputs = tokio::spawn(outputs::run(
        alert_rx,
        outputs::Outputs {
            sinks: settings.sinks,
            elasticsearch,
            http: http_outputs,
            storm: settings.storm.clone(),
            hostname: settings.hostname.clone(),
        },
        metrics.clone(),
        beats.outputs,
    ));

    let mut reloader = Reloader::new(
        settings.rules.clone(),
        settings.rules_options.clone(),
        agent_lists,
        digest,
        rules_tx,
        metrics.clone(),
    );
    reloader.record_all = settings.record.is_some();
    reloader.unfiltered = unfiltered;
    let configmap = settings
        .rules_configmap
        .clone()
        .map(|s| crate::rules_configmap::spawn(s, metrics.clone()));
    supervise::supervise(&mut capture, &mut reloader, identities_rx, configmap).await?;
    info!("shutting down: draining events and flushing outputs");
    let _ = shutdown_tx.send(true);
    let _ = reader.await;
    // Every record is read: the loss watcher reports the last window.
    let _ = drained_tx.send(());
    let _ = detect.await;
    let _ = watcher.await;
    let _ = outputs.await;
    drop(capture); // detaches the programs
    info!("stopped");
    Ok(())
}

/// Loads and attaches the kernel programs with the syscalls and open
/// prefilter the rules need.
async fn start_capture(
    settings: &RunSettings,
    rules: &RuleSet,
    unfiltered: bool,
) -> anyhow::Result<Capture> {
    let mut opts = settings.capture.clone();
    opts.syscalls = kernel_syscalls(rules, settings.record.is_some());
    opts.prefilter = kernel_prefilter(rules, &opts.syscalls, unfiltered);
    // Socket data is private and costs a copy per send or receive: only
    // for rules that read it.
    if !rules.reads(mamori_rules::Field::EvtBuffer) {
        opts.buffer_bytes = 0;
    } else if opts.buffer_bytes > 0 {
        info!(
            bytes = opts.buffer_bytes,
            "evt.buffer: sends and receives carry the first bytes of their data"
        );
    }
    if opts.prefilter.filter.active != 0 {
        info!(
            terms = opts
                .prefilter
                .filter
                .type_terms
                .iter()
                .fold(0, |a, t| a | t)
                .count_ones(),
            names = opts.prefilter.names.len(),
            "kernel drops opens no rule can match"
        );
    }
    let started = std::time::Instant::now();
    let capture = tokio::task::spawn_blocking(move || Capture::start(&opts))
        .await
        .context("capture start-up task failed")??;
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "programs loaded and attached"
    );
    report_rules_that_cannot_fire(rules, &capture.report().unavailable);
    Ok(capture)
}

/// The stages' liveness: the reader should poll unless the detector holds
/// it back (full queue); the detector and outputs work while their queues
/// hold items.
struct Beats {
    reader: Heartbeat,
    detect: Heartbeat,
    outputs: Heartbeat,
}

impl Beats {
    fn new(metrics: &Metrics, events: &mpsc::Sender<Event>, alerts: &mpsc::Sender<Alert>) -> Self {
        let (events_w, alerts_w) = (events.downgrade(), alerts.downgrade());
        let reader = metrics.liveness.stage(
            "reader",
            Box::new(move || events_w.upgrade().is_some_and(|t| t.capacity() > 0)),
        );
        let events_w = events.downgrade();
        let detect = metrics.liveness.stage(
            "detect",
            Box::new(move || {
                events_w
                    .upgrade()
                    .is_some_and(|t| t.capacity() < t.max_capacity())
            }),
        );
        let outputs = metrics.liveness.stage(
            "outputs",
            Box::new(move || {
                alerts_w
                    .upgrade()
                    .is_some_and(|t| t.capacity() < t.max_capacity())
            }),
        );
        Self {
            reader,
            detect,
            outputs,
        }
    }
}

/// The state seeded from /proc, and the recorder when `--record` asks.
/// The agent's configuration and rules files (what tampering would change).
fn own_files(settings: &RunSettings) -> Vec<PathBuf> {
    settings
        .config_file
        .iter()
        .chain(&settings.rules)
        .cloned()
        .collect()
}

async fn seed_state(
    settings: &RunSettings,
    metrics: &Metrics,
) -> anyhow::Result<(State, Option<Recorder>)> {
    let cri_sockets = settings.cri_sockets.clone();
    let fd_bytes = settings.fd_table_bytes;
    let mut state =
        tokio::task::spawn_blocking(move || State::from_proc(host_root(), cri_sockets, fd_bytes))
            .await
            .context("process table seed failed")?;
    state.agent = Some(crate::state::agent_self::AgentSelf::this_process(
        &own_files(settings),
    ));
    let budget = state.processes.fd_budget().clone();
    metrics.add_source(Arc::new(move |f: &mut Families<'_>| {
        f.gauge(
            "mamori_fd_table_bytes",
            "Bytes the descriptor tables hold (all processes).",
            budget.used() as i64,
        )?;
        f.gauge(
            "mamori_fd_table_limit_bytes",
            "What they may hold (state.fd_table_mib).",
            budget.limit() as i64,
        )?;
        f.counter(
            "mamori_fd_table_refused",
            "Descriptors not kept because the tables' budget was spent.",
            budget.refused.load(std::sync::atomic::Ordering::Relaxed),
        )
    }));
    let container_stats = state.containers.stats.clone();
    metrics.add_source(Arc::new(move |f: &mut Families<'_>| {
        container_stats.families(f)
    }));
    info!(
        processes = state.processes.len(),
        "process table seeded from /proc"
    );
    let recorder = match &settings.record {
        Some(path) => {
            let r = Recorder::create(path, &mut state, &settings.hostname)?;
            info!(path = %path.display(), "recording events");
            Some(r)
        }
        None => None,
    };
    Ok((state, recorder))
}

/// What the detection stage also does with each event.
struct Taps {
    /// The watched files' identities, for the kernel's prefilter.
    identities: watch::Sender<Vec<(u32, u64)>>,
    /// `--events`: print it as JSON.
    print_events: bool,
    /// `--record`: write it, with what it taught the state.
    recorder: Option<Recorder>,
    /// Reports the state's limits when they are reached.
    limits: limits::LimitWatch,
}

/// The detection stage: state, rules, alerts.
async fn detect(
    mut rx: mpsc::Receiver<Event>,
    mut rules: watch::Receiver<Arc<RuleSet>>,
    alerts: mpsc::Sender<Alert>,
    metrics: Arc<Metrics>,
    mut taps: Taps,
    (mut state, mut detector): (State, Detector),
    heartbeat: Heartbeat,
) {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut hits = Vec::new();
    let mut beats_due = 0u32;
    let mut batch = Vec::with_capacity(RECV_BATCH);
    let watch_paths = |state: &mut State, d: &Detector| {
        state
            .watched
            .watch(d.rules().compared_paths(mamori_rules::Field::FdName));
        state.names.want(names::names_in(d.rules()));
    };
    watch_paths(&mut state, &detector);
    let mut identities = u64::MAX;
    while rx.recv_many(&mut batch, RECV_BATCH).await > 0 {
        for ev in batch.drain(..) {
            // A reloaded ruleset takes over between two events.
            if rules.has_changed().unwrap_or(false) {
                detector.set_rules(rules.borrow_and_update().clone());
                watch_paths(&mut state, &detector);
            }
            if state.watched.generation() != identities {
                identities = state.watched.generation();
                let _ = taps.identities.send(state.watched.identities().collect());
            }
            metrics.event(ev.ty.name(), ev.time_ns);
            hold_for_container_metadata(&mut state, &ev).await;
            if taps.print_events {
                let mut out = stdout.lock();
                let _ = writeln!(out, "{}", event_json(&ev));
            }
            let before = taps.recorder.as_ref().map(|r| r.before(&state, &ev));
            detector.process(&mut state, &ev, |a| hits.push(a));
            if let (Some(r), Some(before)) = (&mut taps.recorder, before)
                && let Err(e) = r.after(&mut state, &ev, before)
            {
                error!(error = %format!("{e:#}"), "recording stopped");
                taps.recorder = None;
            }
            // A clock read per event would cost more than it tells.
            beats_due = beats_due.wrapping_add(1);
            if beats_due.is_multiple_of(256) || rx.is_empty() {
                heartbeat.beat();
                if let Some(r) = &mut taps.recorder
                    && let Err(e) = r.flush_if_due()
                {
                    error!(error = %format!("{e:#}"), "recording stopped");
                    taps.recorder = None;
                }
                let p = &state.processes;
                metrics.set_process_table(p.len(), p.evicted);
                if let Some(a) = taps.limits.check(&state) {
                    hits.push(a);
                }
                if let Some(a) = taps.limits.check_runtime(&state) {
                    hits.push(a);
                }
                if let Some(a) = taps.limits.check_paths(&state) {
                    hits.push(a);
                }
            }
            for a in hits.drain(..) {
                metrics.alert(&a.rule, a.priority);
                if alerts.send(a).await.is_err() {
                    return;
                }
            }
        }
    }
    if let Some(r) = taps.recorder.take() {
        let events = r.events;
        match r.finish() {
            Ok(()) => info!(events, "recording complete"),
            Err(e) => error!(error = %format!("{e:#}"), "recording incomplete"),
        }
    }
}

/// Holds `ev` (and the stream behind it) until its container's metadata
/// has arrived, at most `container::METADATA_WAIT` after the lookup
/// started: rules on `container.image` see it from the first exec.
async fn hold_for_container_metadata(state: &mut State, ev: &Event) {
    state.containers.absorb();
    let Some(id) = state.container_of(ev) else {
        return;
    };
    let containers = &mut state.containers;
    let Some(deadline) = containers.wait_deadline(&id) else {
        return;
    };
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::from_std(deadline);
    while containers.wait_deadline(&id).is_some() {
        if tokio::time::timeout_at(deadline, containers.next_answer())
            .await
            .is_err()
        {
            break;
        }
    }
    containers.stats.held(started.elapsed());
    if containers.wait_deadline(&id).is_some() {
        containers.hold_expired();
    }
}

/// Raises an internal alert when the kernel or decoder loses events:
/// at most one per `LOSS_ALERT_EVERY`, each counting the losses since the
/// previous one, and a last one at shutdown, once the reader has drained
/// the ring (`drained`), for what the last window lost: the alerts' counts
/// add up to every loss. Also raises the kernel's other counted limit,
/// path strings not copied at syscall entry (`limits::EntryCopyWatch`).
async fn watch_loss(
    counters: capture::CountersHandle,
    alerts: mpsc::Sender<Alert>,
    hostname: String,
    mut shutdown: watch::Receiver<bool>,
    drained: tokio::sync::oneshot::Receiver<()>,
) {
    let mut drained = Some(drained);
    const CHECK_EVERY: Duration = Duration::from_secs(1);
    const LOSS_ALERT_EVERY: Duration = Duration::from_secs(30);
    let mut reported = 0u64;
    let mut last_alert: Option<tokio::time::Instant> = None;
    let mut copies = limits::EntryCopyWatch::new(hostname.clone());
    let mut tick = tokio::time::interval(CHECK_EVERY);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = shutdown.changed() => true,
        };
        if stopping && let Some(drained) = drained.take() {
            let _ = drained.await;
        }
        let c = counters.read();
        let lost = c.lost();
        let due = stopping || last_alert.is_none_or(|t| t.elapsed() >= LOSS_ALERT_EVERY);
        if lost > reported && due {
            warn!(
                lost_total = lost,
                since_last = lost - reported,
                "events lost"
            );
            let alert = loss_alert(&c, lost - reported, &hostname);
            if alerts.send(alert).await.is_err() {
                return;
            }
            reported = lost;
            last_alert = Some(tokio::time::Instant::now());
        }
        if let Some(alert) = copies.check(c.entry_copy_full)
            && alerts.send(alert).await.is_err()
        {
            return;
        }
        if stopping {
            return;
        }
    }
}

/// The internal alert for lost events.
pub fn loss_alert(c: &Counters, new_losses: u64, hostname: &str) -> Alert {
    let sent: u64 = c.sent.iter().sum();
    let ring: u64 = c.lost_ring_full.iter().sum();
    let scratch: u64 = c.lost_no_scratch.iter().sum();
    let fields = vec![
        ("n_lost".to_owned(), FieldValue::UInt(new_losses)),
        ("n_lost_total".to_owned(), FieldValue::UInt(c.lost())),
        ("n_lost_ring_full".to_owned(), FieldValue::UInt(ring)),
        ("n_lost_no_scratch".to_owned(), FieldValue::UInt(scratch)),
        (
            "n_decode_errors".to_owned(),
            FieldValue::UInt(c.decode_errors),
        ),
        ("n_evts".to_owned(), FieldValue::UInt(sent)),
    ];
    Alert::internal(
        crate::time::now_ns(),
        (
            "mamori internal: event loss",
            "The kernel or the decoder lost events: detection has gaps.",
        ),
        Priority::Critical,
        format!(
            "mamori lost {new_losses} events ({} in total: ring full {ring}, no scratch {scratch}, undecodable {}; {sent} sent)",
            c.lost(),
            c.decode_errors
        ),
        fields,
        hostname,
    )
}

/// Where the host's files are seen: `MAMORI_HOST_ROOT` (`/host` in a
/// DaemonSet pod that mounts the host's root there), else `/`.
pub fn host_root() -> PathBuf {
    std::env::var_os("MAMORI_HOST_ROOT")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// How many rules are enabled (for the metrics and status documents).
pub fn enabled_rules(rules: &RuleSet) -> u64 {
    rules.rules.iter().filter(|r| r.enabled).count() as u64
}
