//! Alerts as Prometheus Alertmanager takes them (`POST /api/v2/alerts`), so
//! its routes, grouping, silences and receivers page the people on call.
//!
//! Labels identify an alert to Alertmanager: alerts with equal labels are
//! one alert there (refreshed), which is how it keeps one page from
//! becoming a hundred. They hold the rule, priority and where it happened
//! (node, container, pod, namespace, ATT&CK technique), never the process
//! or file, unless `fields_as_labels` asks. Each occurrence is in the other
//! outputs; the annotation `kibana_url` links to it.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{mitre, webhook};
use crate::alert::{Alert, FieldValue, Priority};

/// Longest annotation value sent (the output text of a rule can be long).
const MAX_ANNOTATION: usize = 8 * 1024;

/// Renders alerts for the v2 API.
#[derive(Clone, Debug, Default)]
pub struct Encoder {
    /// Fixed labels on every alert (`cluster: prod`), after the others.
    pub labels: Vec<(String, String)>,
    /// Fields whose values become labels: (field, label name).
    pub fields_as_labels: Vec<(String, String)>,
    /// Kibana's base URL, for a link to each alert.
    pub kibana_url: Option<String>,
    /// What makes the alert's id (`event.id` in Elasticsearch).
    pub host_id: String,
    pub boot_id: String,
}

impl webhook::Encoder for Encoder {
    fn encode(&self, batch: &[Arc<Alert>]) -> Vec<u8> {
        let alerts: Vec<Value> = batch.iter().map(|a| self.alert(a)).collect();
        serde_json::to_vec(&alerts).unwrap_or_default()
    }
}

/// `critical`, `warning` or `info`: the severity label routes commonly
/// match on.
pub fn severity(p: Priority) -> &'static str {
    match p {
        Priority::Emergency | Priority::Alert | Priority::Critical => "critical",
        Priority::Error | Priority::Warning => "warning",
        Priority::Notice | Priority::Informational | Priority::Debug => "info",
    }
}

/// `fd.name` → `fd_name`: a label name Alertmanager accepts.
pub fn label_name(field: &str) -> String {
    let mut s: String = field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) || s.is_empty() {
        s.insert(0, '_');
    }
    s
}

impl Encoder {
    /// One alert of the API: labels, annotations, `startsAt` and a
    /// `generatorURL`. `endsAt` is left to Alertmanager (its
    /// `resolve_timeout`): it counts from when the alert arrives, so an
    /// alert delivered late still pages.
    pub fn alert(&self, a: &Alert) -> Value {
        let mut labels = Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                labels.insert(k.to_owned(), Value::String(v.to_owned()));
            }
        };
        put("alertname", &a.rule);
        put("rule", &a.rule);
        put("priority", a.priority.as_str());
        put("severity", severity(a.priority));
        put("source", a.source.as_str());
        put("node", &a.hostname);
        let ctx = |f: &str| match a.context(f) {
            Some(FieldValue::Missing) | None => String::new(),
            Some(v) => v.to_string(),
        };
        put("container", &ctx("container.name"));
        put("pod", &ctx("k8s.pod.name"));
        put("namespace", &ctx("k8s.ns.name"));
        let threat = mitre::from_tags(&a.tags);
        let ids = |v: &[(String, Option<&str>)]| {
            v.iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        put("mitre_technique", &ids(&threat.techniques));
        put("mitre_subtechnique", &ids(&threat.subtechniques));
        let tactics: Vec<&str> = threat.tactics.iter().map(|(id, _)| *id).collect();
        put("mitre_tactic", &tactics.join(","));
        for (field, label) in &self.fields_as_labels {
            let v = a
                .output_fields
                .iter()
                .find(|(n, _)| n == field)
                .map(|(_, v)| v)
                .or_else(|| a.context(field));
            if let Some(v) = v.filter(|v| **v != FieldValue::Missing) {
                put(label, &v.to_string());
            }
        }
        for (k, v) in &self.labels {
            put(k, v);
        }

        let mut annotations = Map::new();
        let mut note = |k: &str, v: &str| {
            if !v.is_empty() {
                annotations.insert(k.to_owned(), Value::String(truncate(v)));
            }
        };
        note("summary", &a.message);
        note("description", &a.description);
        let id = super::ids::alert_id(a, &self.host_id, &self.boot_id);
        note("event_id", &id);
        let link = self
            .kibana_url
            .as_deref()
            .map(|base| kibana_link(base, &id, a.time_ns));
        note("kibana_url", link.as_deref().unwrap_or(""));
        let mut alert = json!({
            "labels": labels,
            "annotations": annotations,
            "startsAt": crate::time::rfc3339_nanos(a.time_ns),
        });
        if let Some(link) = link {
            alert["generatorURL"] = Value::String(link);
        }
        alert
    }
}

/// Kibana's Discover on mamori's alerts data view, showing the one alert
/// (by `event.id`) within 15 minutes around it.
pub fn kibana_link(base: &str, id: &str, time_ns: u64) -> String {
    let quarter = 15 * 60 * 1_000_000_000;
    format!(
        "{}/app/discover#/?_g=(time:(from:'{}',to:'{}'))\
         &_a=(index:mamori-alerts,query:(language:kuery,query:'event.id:{id}'))",
        base.trim_end_matches('/'),
        crate::time::rfc3339_nanos(time_ns.saturating_sub(quarter)),
        crate::time::rfc3339_nanos(time_ns.saturating_add(quarter)),
    )
}

fn truncate(v: &str) -> String {
    if v.len() <= MAX_ANNOTATION {
        return v.to_owned();
    }
    let mut end = MAX_ANNOTATION;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &v[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Source;

    fn alert() -> Alert {
        Alert {
            time_ns: 1_700_000_000_123_456_789,
            rule: "Shell started in a container".into(),
            description: "A shell ran in a container.".into(),
            ruleset: "mamori_rules.yaml".into(),
            priority: Priority::Notice,
            source: Source::Syscall,
            tags: vec![
                "container".into(),
                "mitre_execution".into(),
                "T1059.004".into(),
            ],
            message: "Shell in web (proc=sh)".into(),
            output_fields: vec![
                ("proc.name".into(), FieldValue::Str("sh".into())),
                ("fd.name".into(), FieldValue::Missing),
            ],
            hostname: "node-1".into(),
            event: None,
            context: vec![
                ("container.name", FieldValue::Str("web".into())),
                ("k8s.pod.name", FieldValue::Str("web-7d9".into())),
                ("k8s.ns.name", FieldValue::Str("shop".into())),
                ("proc.pid", FieldValue::Int(42)),
            ],
        }
    }

    #[test]
    fn labels_say_what_and_where_annotations_say_the_rest() {
        let e = Encoder {
            labels: vec![("cluster".into(), "prod".into())],
            fields_as_labels: vec![
                ("proc.name".into(), "proc_name".into()),
                ("proc.pid".into(), "pid".into()),
                ("fd.name".into(), "fd_name".into()),
            ],
            kibana_url: Some("https://kibana.example:5601/".into()),
            ..Default::default()
        };
        let v = e.alert(&alert());
        assert_eq!(
            v["labels"],
            json!({
                "alertname": "Shell started in a container",
                "rule": "Shell started in a container",
                "priority": "Notice",
                "severity": "info",
                "source": "syscall",
                "node": "node-1",
                "container": "web",
                "pod": "web-7d9",
                "namespace": "shop",
                "mitre_technique": "T1059",
                "mitre_subtechnique": "T1059.004",
                "mitre_tactic": "TA0002",
                "proc_name": "sh",
                "pid": "42",
                "cluster": "prod",
            })
        );
        assert_eq!(v["annotations"]["summary"], "Shell in web (proc=sh)");
        assert_eq!(
            v["annotations"]["description"],
            "A shell ran in a container."
        );
        assert_eq!(v["startsAt"], "2023-11-14T22:13:20.123456789Z");
        assert!(v.get("endsAt").is_none());
        let id = v["annotations"]["event_id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        let link = v["annotations"]["kibana_url"].as_str().unwrap();
        assert_eq!(v["generatorURL"], link);
        assert!(
            link.starts_with(
                "https://kibana.example:5601/app/discover#/?_g=(time:(from:'2023-11-14T21:58:20"
            ),
            "{link}"
        );
        assert!(
            link.ends_with(&format!("query:'event.id:{id}'))")),
            "{link}"
        );
    }

    #[test]
    fn empty_values_are_left_out_and_long_texts_cut() {
        let mut a = alert();
        a.context.clear();
        a.tags.clear();
        a.message = "é".repeat(MAX_ANNOTATION);
        let v = Encoder::default().alert(&a);
        let labels = v["labels"].as_object().unwrap();
        for k in ["container", "pod", "namespace", "mitre_technique"] {
            assert!(!labels.contains_key(k), "{k}");
        }
        assert!(v.get("generatorURL").is_none());
        assert!(v["annotations"].get("kibana_url").is_none());
        let summary = v["annotations"]["summary"].as_str().unwrap();
        assert!(summary.len() <= MAX_ANNOTATION + 3 && summary.ends_with('…'));
    }

    #[test]
    fn severities_and_label_names() {
        assert_eq!(severity(Priority::Emergency), "critical");
        assert_eq!(severity(Priority::Error), "warning");
        assert_eq!(severity(Priority::Debug), "info");
        assert_eq!(label_name("fd.name"), "fd_name");
        assert_eq!(label_name("proc.aname[2]"), "proc_aname_2_");
        assert_eq!(label_name("1x"), "_1x");
    }
}
