//! Hot reload of the rules: on SIGHUP, when a rules file changes
//! (checked every [`WATCH_EVERY`]) and when the Kubernetes API reports a
//! new rules ConfigMap (`rules_configmap`, which then stands in for its
//! mounted directory), the new set is loaded and compiled
//! beside the running one; only when that works are the kernel programs
//! told the new syscalls and the detector handed the new set, which it
//! swaps in between two events. A broken file is reported with its
//! file:line:col and the old set stays.

use std::{path::PathBuf, sync::Arc, time::Duration};

use mamori_rules::{RuleSet, SourceFile};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::kernel_scope;
use crate::{
    capture::Capture,
    rules_configmap::Update,
    rules_files::{self, Overlay},
    telemetry::metrics::Metrics,
};

pub const WATCH_EVERY: Duration = Duration::from_secs(2);

pub struct Reloader {
    paths: Vec<PathBuf>,
    options: rules_files::LoadOptions,
    /// The agent's own lists, loaded after the files each time.
    agent_lists: SourceFile,
    /// The rules ConfigMap as the API last reported it.
    overlay: Option<Overlay>,
    seen: Vec<(PathBuf, u64, i64, u64)>,
    /// The running rules' [`rules_files::digest`].
    digest: String,
    tx: watch::Sender<Arc<RuleSet>>,
    metrics: Arc<Metrics>,
    /// Recording: the kernel keeps sending every recordable syscall.
    pub record_all: bool,
    /// Recording or `--events`: the kernel filters no open.
    pub unfiltered: bool,
}

impl Reloader {
    pub fn new(
        paths: Vec<PathBuf>,
        options: rules_files::LoadOptions,
        agent_lists: SourceFile,
        digest: String,
        tx: watch::Sender<Arc<RuleSet>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let seen = rules_files::fingerprint(&paths);
        Self {
            paths,
            options,
            agent_lists,
            overlay: None,
            seen,
            digest,
            tx,
            metrics,
            record_all: false,
            unfiltered: false,
        }
    }

    /// The rules paths whose files are watched: all but the directory the
    /// ConfigMap from the API stands in for.
    fn watched(&self) -> Vec<PathBuf> {
        let skip = self.overlay.as_ref().map(|o| &o.dir);
        self.paths
            .iter()
            .filter(|p| Some(*p) != skip)
            .cloned()
            .collect()
    }

    /// Whether a rules file changed since the last load.
    pub fn files_changed(&self) -> bool {
        !self.paths.is_empty() && rules_files::fingerprint(&self.watched()) != self.seen
    }

    /// The API reported the rules ConfigMap: its files take the place of
    /// the mounted ones (or, when it is gone, the mounted ones return),
    /// and the rules reload if that changes them.
    pub async fn configmap(&mut self, capture: &mut Capture, update: Update) {
        let (overlay, why) = match update {
            Update::Files(version, overlay) => (
                Some(overlay),
                format!("rules ConfigMap changed (resourceVersion {version})"),
            ),
            Update::Absent => (None, "rules ConfigMap absent: the mounted files".into()),
        };
        if overlay == self.overlay {
            return;
        }
        self.overlay = overlay;
        self.load(capture, &why, false).await;
    }

    /// Loads the rules again and, if they load, switches to them.
    pub async fn reload(&mut self, capture: &mut Capture, why: &str) {
        self.load(capture, why, true).await;
    }

    /// Loads the rules and, if they load, switches to them; unless
    /// `always`, only when their contents differ from the running ones.
    async fn load(&mut self, capture: &mut Capture, why: &str, always: bool) {
        self.seen = rules_files::fingerprint(&self.watched());
        let (paths, overlay) = (self.paths.clone(), self.overlay.clone());
        let (last, options) = (self.agent_lists.clone(), self.options.clone());
        let running = self.digest.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let files = rules_files::read_with(&paths, overlay.as_ref())?;
            if !always && rules_files::digest(&files) == running {
                return Ok(None);
            }
            rules_files::compile(files, Some(&last), &options).map(Some)
        })
        .await;
        let (rules, digest) = match loaded {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) => {
                debug!(reason = why, "rules unchanged; nothing to reload");
                return;
            }
            Ok(Err(e)) => {
                self.metrics.rules_reload(false);
                error!(
                    reason = why,
                    "rules reload failed; the running rules stay: {e:#}"
                );
                return;
            }
            Err(e) => {
                self.metrics.rules_reload(false);
                error!(reason = why, error = %e, "rules reload task failed; the running rules stay");
                return;
            }
        };
        // The kernel first: the new rules must not wait for events the
        // kernel does not send yet.
        let syscalls = kernel_scope::kernel_syscalls(&rules, self.record_all);
        let prefilter = kernel_scope::kernel_prefilter(&rules, &syscalls, self.unfiltered);
        if let Err(e) = capture
            .set_syscalls(&syscalls)
            .and_then(|()| capture.set_prefilter(&prefilter))
        {
            self.metrics.rules_reload(false);
            error!(reason = why, error = %e, "cannot capture what the new rules need; the running rules stay");
            return;
        }
        kernel_scope::report_rules_that_cannot_fire(&rules, &capture.report().unavailable);
        if rules.reads(mamori_rules::Field::EvtBuffer) && capture.report().buffer_bytes == 0 {
            warn!(
                "the new rules read evt.buffer, but socket data is captured only when the rules the agent starts with read it: restart the agent for evt.buffer to have a value"
            );
        }
        self.metrics.rules_reload(true);
        self.metrics
            .set_rules(&digest, super::enabled_rules(&rules));
        self.digest = digest;
        info!(
            reason = why,
            syscalls = capture.report().enabled.len(),
            "rules reloaded"
        );
        let _ = self.tx.send(Arc::new(rules));
    }
}
