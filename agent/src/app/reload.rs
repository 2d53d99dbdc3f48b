//! Hot reload of the rules: on SIGHUP, and when a rules file changes
//! (checked every [`WATCH_EVERY`]), the new set is loaded and compiled
//! beside the running one; only when that works are the kernel programs
//! told the new syscalls and the detector handed the new set, which it
//! swaps in between two events. A broken file is reported with its
//! file:line:col and the old set stays.

use std::{path::PathBuf, sync::Arc, time::Duration};

use mamori_rules::{RuleSet, SourceFile};
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::kernel_scope;
use crate::{capture::Capture, rules_files, telemetry::metrics::Metrics};

pub const WATCH_EVERY: Duration = Duration::from_secs(2);

pub struct Reloader {
    paths: Vec<PathBuf>,
    options: rules_files::LoadOptions,
    /// The agent's own lists, loaded after the files each time.
    agent_lists: SourceFile,
    seen: Vec<(PathBuf, u64, i64, u64)>,
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
        tx: watch::Sender<Arc<RuleSet>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let seen = rules_files::fingerprint(&paths);
        Self {
            paths,
            options,
            agent_lists,
            seen,
            tx,
            metrics,
            record_all: false,
            unfiltered: false,
        }
    }

    /// Whether a rules file changed since the last load.
    pub fn files_changed(&self) -> bool {
        !self.paths.is_empty() && rules_files::fingerprint(&self.paths) != self.seen
    }

    /// Loads the rules again and, if they load, switches to them.
    pub async fn reload(&mut self, capture: &mut Capture, why: &str) {
        self.seen = rules_files::fingerprint(&self.paths);
        let paths = self.paths.clone();
        let (last, options) = (self.agent_lists.clone(), self.options.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            rules_files::load_with(&paths, Some(&last), &options)
        })
        .await;
        let (rules, digest) = match loaded {
            Ok(Ok(r)) => r,
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
        info!(
            reason = why,
            syscalls = capture.report().enabled.len(),
            "rules reloaded"
        );
        let _ = self.tx.send(Arc::new(rules));
    }
}
