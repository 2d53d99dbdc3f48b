//! Following the rules ConfigMap through the Kubernetes API
//! (`rules_configmap`). The kubelet copies a ConfigMap edit into the
//! mounted directory only on its next sync of the pod, 1 to 1.5 minutes
//! later; a watch on the one ConfigMap hears of it within a second. The
//! agent needs only `get`, `list` and `watch` on that ConfigMap (the
//! chart's Role names it), and keeps running on the mounted files when
//! the API cannot be reached.

use std::{path::PathBuf, sync::Arc, time::Duration};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::{rules_files::Overlay, telemetry::metrics::Metrics};

/// `rules_configmap` in the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub name: String,
    /// None: the namespace of the pod's service account.
    pub namespace: Option<String>,
    /// The rules directory the ConfigMap is mounted at.
    pub directory: PathBuf,
}

/// What the API says of the ConfigMap.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
    /// Its rules files now (resourceVersion, files).
    Files(String, Overlay),
    /// It does not exist: the mounted files are what there is.
    Absent,
}

/// How long to wait before asking for a client again when the
/// configuration cannot be read (no token, no kubeconfig).
const CLIENT_RETRY: Duration = Duration::from_secs(30);

/// Follows the ConfigMap until the receiver is dropped.
pub fn spawn(settings: Settings, metrics: Arc<Metrics>) -> mpsc::Receiver<Update> {
    // Only the newest state matters; a slow reload skips ahead.
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(follow(settings, metrics, tx));
    rx
}

async fn follow(settings: Settings, metrics: Arc<Metrics>, tx: mpsc::Sender<Update>) {
    let client = loop {
        match Client::try_default().await {
            Ok(c) => break c,
            Err(e) => {
                metrics.rules_api_error();
                warn!(error = %e, "rules_configmap: no Kubernetes API client; the mounted rules files stay in force");
                tokio::time::sleep(CLIENT_RETRY).await;
            }
        }
    };
    let namespace = settings
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let who = format!("{namespace}/{}", settings.name);
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", settings.name));
    let mut events = watcher(api, config).default_backoff().boxed();
    // Whether the current (re)list found the ConfigMap.
    let mut listed = false;
    let mut healthy = false;
    while let Some(event) = events.next().await {
        let update = match event {
            Ok(watcher::Event::Init) => {
                // Sent before the list is asked for: not yet a sign of health.
                listed = false;
                continue;
            }
            Ok(watcher::Event::InitApply(cm) | watcher::Event::Apply(cm)) => {
                listed = true;
                Some(files(&settings, cm))
            }
            Ok(watcher::Event::InitDone) => (!listed).then_some(Update::Absent),
            Ok(watcher::Event::Delete(_)) => Some(Update::Absent),
            Err(e) => {
                metrics.rules_api_error();
                healthy = false;
                warn!(configmap = %who, error = %e, "rules_configmap: cannot watch the rules ConfigMap; retrying, the running rules stay");
                continue;
            }
        };
        if !healthy {
            healthy = true;
            info!(configmap = %who, "rules_configmap: following the rules ConfigMap through the Kubernetes API");
        }
        if let Some(update) = update
            && tx.send(update).await.is_err()
        {
            return;
        }
    }
}

fn files(settings: &Settings, cm: ConfigMap) -> Update {
    let version = cm.metadata.resource_version.unwrap_or_default();
    let files = cm.data.unwrap_or_default().into_iter().collect();
    Update::Files(
        version,
        Overlay {
            dir: settings.directory.clone(),
            files,
        },
    )
}
