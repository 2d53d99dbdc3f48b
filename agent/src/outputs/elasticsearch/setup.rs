//! Installs what the alert documents need in Elasticsearch: the ILM
//! policy, the component templates (ECS mappings, settings) and the index
//! templates for alerts and dead letters. Run by `mamori es setup` and at
//! start-up when the templates are missing or older than this agent's.
//!
//! Clusters differ: ILM, `wildcard`, `match_only_text` and
//! `constant_keyword` come from Elastic's default distribution. Where the
//! cluster lacks them, setup falls back (no lifecycle policy; `keyword` and
//! `text` types) and says so in its report.

use elasticsearch::http::Method;
use serde_json::{Value, json};

use super::{
    bulk::Target,
    client::{Client, Error},
};

/// Bumped whenever a template changes; installed templates with a lower
/// `version` are replaced at start-up.
pub const TEMPLATE_VERSION: u64 = 2;

pub const ILM_POLICY: &str = "mamori-alerts";
pub const MAPPINGS: &str = "mamori-alerts@mappings";
pub const SETTINGS: &str = "mamori-alerts@settings";
pub const ALERTS_TEMPLATE: &str = "mamori-alerts";
pub const DEAD_LETTER_TEMPLATE: &str = "mamori-deadletter";
pub const STATUS_TEMPLATE: &str = "mamori-status";

const ILM_JSON: &str = include_str!("../../../../deploy/elasticsearch/ilm-policy.json");
const MAPPINGS_JSON: &str =
    include_str!("../../../../deploy/elasticsearch/component-template-mappings.json");
const SETTINGS_JSON: &str =
    include_str!("../../../../deploy/elasticsearch/component-template-settings.json");
const ALERTS_JSON: &str =
    include_str!("../../../../deploy/elasticsearch/index-template-alerts.json");
const DEAD_LETTER_JSON: &str =
    include_str!("../../../../deploy/elasticsearch/index-template-deadletter.json");
const STATUS_JSON: &str =
    include_str!("../../../../deploy/elasticsearch/index-template-status.json");

/// What setup did, for the log and `mamori es setup`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub installed: Vec<String>,
    /// Things the cluster lacks and how setup went around them.
    pub fallbacks: Vec<String>,
}

/// The index templates (name, kind of index, text) for `target`:
/// data-stream and daily templates coexist under different names.
fn templates(target: &Target) -> [(String, &'static str, &'static str); 3] {
    let suffix = match target {
        Target::DataStream { .. } => "",
        Target::Daily { .. } => "-daily",
    };
    [
        (format!("{ALERTS_TEMPLATE}{suffix}"), "alerts", ALERTS_JSON),
        (
            format!("{DEAD_LETTER_TEMPLATE}{suffix}"),
            "deadletter",
            DEAD_LETTER_JSON,
        ),
        (format!("{STATUS_TEMPLATE}{suffix}"), "status", STATUS_JSON),
    ]
}

/// Whether the current templates for `target` are installed (same or
/// newer version).
pub async fn is_current(client: &Client, target: &Target) -> Result<bool, Error> {
    let [(alerts, _, _), ..] = templates(target);
    let a = client
        .request(
            Method::Get,
            &format!("/_index_template/{alerts}"),
            "application/json",
            None,
        )
        .await?;
    if a.status == 404 {
        return Ok(false);
    }
    if !a.ok() {
        return Err(client.status_error("GET /_index_template", &a));
    }
    let v = a.json().unwrap_or_default();
    let version = v["index_templates"][0]["index_template"]["version"]
        .as_u64()
        .unwrap_or(0);
    Ok(version >= TEMPLATE_VERSION)
}

/// Installs (or replaces) everything, for `target`'s kind of index.
pub async fn install(client: &Client, target: &Target) -> Result<Report, Error> {
    let mut report = Report::default();
    let ilm = install_ilm(client, &mut report).await?;

    let mut settings = parse(SETTINGS_JSON);
    if !ilm && let Some(s) = settings["template"]["settings"].as_object_mut() {
        s.remove("index.lifecycle.name");
    }
    settings["version"] = json!(TEMPLATE_VERSION);
    put(
        client,
        &format!("/_component_template/{SETTINGS}"),
        &settings,
    )
    .await?;
    report
        .installed
        .push(format!("component template {SETTINGS}"));

    let mut mappings = parse(MAPPINGS_JSON);
    mappings["version"] = json!(TEMPLATE_VERSION);
    let path = format!("/_component_template/{MAPPINGS}");
    match put(client, &path, &mappings).await {
        Err(Error::Status {
            status: 400,
            reason,
            ..
        }) if reason.contains("does not exist") => {
            let degraded = degrade_types(&mappings);
            put(client, &path, &degraded).await?;
            let first = reason.split("; caused by").next().unwrap_or(&reason);
            report.fallbacks.push(format!(
                "the cluster lacks some ECS field types ({first}); \
                 used keyword for wildcard and constant_keyword, text for match_only_text"
            ));
        }
        other => {
            other?;
        }
    }
    report
        .installed
        .push(format!("component template {MAPPINGS}"));

    // The alerts' template last: `is_current` reads its version, so an
    // install cut short is done again at the next start.
    let mut list = templates(target);
    list.rotate_left(1);
    for (name, kind, text) in list {
        let t = index_template(text, target, kind);
        put(client, &format!("/_index_template/{name}"), &t).await?;
        report.installed.push(format!("index template {name}"));
    }
    Ok(report)
}

/// Installs the ILM policy; `false` when the cluster has no ILM.
async fn install_ilm(client: &Client, report: &mut Report) -> Result<bool, Error> {
    let path = format!("/_ilm/policy/{ILM_POLICY}");
    let a = client
        .request(
            Method::Put,
            &path,
            "application/json",
            Some(ILM_JSON.as_bytes().to_vec().into()),
        )
        .await?;
    if a.ok() {
        report.installed.push(format!("ILM policy {ILM_POLICY}"));
        return Ok(true);
    }
    let reason = a.reason();
    // No ILM handler: not Elastic's default distribution.
    if matches!(a.status, 400 | 404 | 405) && reason.contains("no handler found") {
        report.fallbacks.push(
            "the cluster has no index lifecycle management (ILM): no lifecycle policy set; \
             manage retention another way"
                .into(),
        );
        return Ok(false);
    }
    Err(client.status_error(&format!("PUT {path}"), &a))
}

/// An index template for `target`'s indices of `kind`: data stream, or
/// daily indices.
fn index_template(text: &str, target: &Target, kind: &str) -> Value {
    let mut t = parse(text);
    t["version"] = json!(TEMPLATE_VERSION);
    if let Target::Daily { .. } = target
        && let Some(obj) = t.as_object_mut()
    {
        obj.remove("data_stream");
        obj.insert("index_patterns".into(), json!([format!("mamori-{kind}-*")]));
    }
    t
}

/// The mappings with types from outside Elasticsearch's core replaced.
fn degrade_types(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v.as_str()) {
                        ("type", Some("wildcard" | "constant_keyword")) => json!("keyword"),
                        ("type", Some("match_only_text")) => json!("text"),
                        _ => degrade_types(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(degrade_types).collect()),
        other => other.clone(),
    }
}

async fn put(client: &Client, path: &str, body: &Value) -> Result<(), Error> {
    client.call(Method::Put, path, Some(body)).await.map(drop)
}

fn parse(text: &str) -> Value {
    // The files are part of the binary and checked by a test.
    serde_json::from_str(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search that finds agents whose status documents stopped (for
    /// users; the end-to-end tests run it).
    const SILENT_AGENTS_JSON: &str =
        include_str!("../../../../deploy/elasticsearch/query-silent-agents.json");

    #[test]
    fn shipped_templates_are_json() {
        for text in [
            ILM_JSON,
            MAPPINGS_JSON,
            SETTINGS_JSON,
            ALERTS_JSON,
            DEAD_LETTER_JSON,
            STATUS_JSON,
            SILENT_AGENTS_JSON,
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert!(v.is_object());
        }
        let alerts = parse(ALERTS_JSON);
        assert!(
            alerts["priority"].as_u64().unwrap() > 100,
            "above the built-in logs template"
        );
        assert_eq!(alerts["index_patterns"][0], "logs-mamori.alerts-*");
    }

    #[test]
    fn daily_templates_have_no_data_stream() {
        let daily = Target::Daily {
            namespace: "default".into(),
        };
        for (name, kind, text) in templates(&daily) {
            let t = index_template(text, &daily, kind);
            assert!(t.get("data_stream").is_none(), "{name}");
            assert_eq!(t["index_patterns"], json!([format!("mamori-{kind}-*")]));
            assert_eq!(t["version"], TEMPLATE_VERSION);
            let index = match kind {
                "alerts" => daily.alerts(0),
                "deadletter" => daily.dead_letter(0),
                _ => daily.status(0),
            };
            assert!(index.starts_with(&format!("mamori-{kind}-")), "{index}");
        }
        let status = parse(STATUS_JSON);
        assert_eq!(status["index_patterns"][0], "metrics-mamori.status-*");
        assert!(status["priority"].as_u64().unwrap() > 100);
    }

    #[test]
    fn degrading_replaces_only_extension_types() {
        let m = degrade_types(&parse(MAPPINGS_JSON));
        let text = m.to_string();
        for t in ["wildcard", "match_only_text", "constant_keyword"] {
            assert!(!text.contains(&format!("\"type\":\"{t}\"")), "{t}");
        }
        let p = &m["template"]["mappings"]["properties"];
        assert_eq!(
            p["process"]["properties"]["command_line"]["type"],
            "keyword"
        );
        assert_eq!(p["message"]["type"], "text");
        assert_eq!(
            p["mamori"]["properties"]["output_fields"]["type"],
            "flattened"
        );
    }

    #[test]
    fn every_ecs_field_the_mapper_writes_is_mapped() {
        use crate::outputs::ecs::EcsMapper;
        // A document with every block filled, from the ECS tests' shape.
        let m = parse(MAPPINGS_JSON);
        let props = &m["template"]["mappings"]["properties"];
        let doc = crate::outputs::ecs::tests_support::full_document(&EcsMapper {
            identity: Default::default(),
            namespace: "default".into(),
        });
        let mut missing = Vec::new();
        walk(&doc, props, String::new(), &mut missing);
        assert!(missing.is_empty(), "not in the mappings: {missing:?}");
    }

    fn walk(doc: &Value, props: &Value, prefix: String, missing: &mut Vec<String>) {
        let Some(obj) = doc.as_object() else { return };
        for (k, v) in obj {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let mapping = &props[k];
            if mapping.is_null() {
                missing.push(path);
                continue;
            }
            if mapping["type"] == "flattened" {
                continue;
            }
            if v.is_object() {
                walk(v, &mapping["properties"], path, missing);
            }
        }
    }
}
