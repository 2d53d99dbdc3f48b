//! The agent's life after start: until SIGTERM or SIGINT, it reloads the
//! rules when asked or when they change, and hands the kernel the watched
//! files' identities as the state learns them.

use anyhow::Context;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};
use tracing::warn;

use super::reload::{self, Reloader};
use crate::capture::Capture;

/// Until SIGTERM or SIGINT: reloads the rules on SIGHUP, when their
/// files change and when the API reports a new rules ConfigMap.
pub(super) async fn supervise(
    capture: &mut Capture,
    reloader: &mut Reloader,
    mut identities: watch::Receiver<Vec<(u32, u64)>>,
    mut configmap: Option<mpsc::Receiver<crate::rules_configmap::Update>>,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut tick = tokio::time::interval(reload::WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => reloader.reload(capture, "SIGHUP").await,
            _ = tick.tick() => {
                if reloader.files_changed() {
                    reloader.reload(capture, "rules files changed").await;
                }
            }
            Some(update) = async {
                match configmap.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => reloader.configmap(capture, update).await,
            Ok(()) = identities.changed() => {
                let ids = identities.borrow_and_update().clone();
                if let Err(e) = capture.set_watched_inodes(&ids) {
                    warn!(error = %e, "cannot update the watched files' identities in the kernel");
                }
            }
        }
    }
}
