//! The networked outputs opened before the kernel programs load: a spool
//! or CA file that cannot be read stops the start rather than losing
//! alerts later.

use std::sync::Arc;

use anyhow::Context;
use tracing::info;

use super::RunSettings;
use crate::{outputs, telemetry::metrics::Metrics};

/// The Elasticsearch output with its spool open, when configured.
pub fn elasticsearch(
    settings: &RunSettings,
    identity: &outputs::identity::Identity,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<outputs::elasticsearch::Output>> {
    let Some(es) = settings.elasticsearch.clone() else {
        return Ok(None);
    };
    let mapper = outputs::ecs::EcsMapper {
        identity: identity.clone(),
        namespace: es.target.namespace().to_owned(),
    };
    let url = es.connection.url.to_string();
    let spool = es.spool_dir.display().to_string();
    let out = outputs::elasticsearch::Output::open(es, mapper, metrics)
        .context("cannot start the Elasticsearch output")?;
    info!(url, spool, "Elasticsearch output on");
    Ok(Some(out))
}

/// The HTTP outputs (Alertmanager, Falco's http_output), their clients
/// built: a bad CA file stops the start.
pub fn http(
    settings: &RunSettings,
    identity: &outputs::identity::Identity,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Vec<outputs::webhook::Output>> {
    let mut out = Vec::new();
    if let Some((s, encoder)) = settings.alertmanager.clone() {
        let url = s.endpoint.url.to_string();
        let min_priority = s.min_priority.as_str();
        let encoder = outputs::webhook::configure::with_identity(encoder, identity);
        out.push(
            outputs::webhook::Output::open(s, encoder, metrics, &settings.hostname)
                .context("cannot start the Alertmanager output")?,
        );
        info!(url, min_priority, "Alertmanager output on");
    }
    if let Some((s, encoder)) = settings.http.clone() {
        let url = s.endpoint.url.to_string();
        out.push(
            outputs::webhook::Output::open(s, encoder, metrics, &settings.hostname)
                .context("cannot start the HTTP output")?,
        );
        info!(url, "HTTP output on");
    }
    Ok(out)
}
