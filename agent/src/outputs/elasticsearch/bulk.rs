//! `_bulk` requests: the spool record format, request bodies, and what
//! each item of an answer means for delivery.
//!
//! Every item is a `create` with the alert's own `_id`: a retry of a
//! document Elasticsearch already has answers 409, which counts as
//! delivered, so retries never duplicate.

use serde_json::Value;

use crate::{outputs::ecs, time::rfc3339_nanos};

/// A document waiting for delivery, as kept in the spool:
/// `<id> <time_ns>\n<json>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub seq: u64,
    pub id: String,
    pub time_ns: u64,
    pub json: Vec<u8>,
}

impl Doc {
    pub fn encode(id: &str, time_ns: u64, json: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(id.len() + 24 + json.len());
        out.extend_from_slice(id.as_bytes());
        out.push(b' ');
        out.extend_from_slice(time_ns.to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(json);
        out
    }

    /// Parses a spool record; `None` when it is not one of ours.
    pub fn decode(seq: u64, payload: &[u8]) -> Option<Self> {
        let nl = payload.iter().position(|&b| b == b'\n')?;
        let head = std::str::from_utf8(&payload[..nl]).ok()?;
        let (id, time) = head.split_once(' ')?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        Some(Self {
            seq,
            id: id.to_owned(),
            time_ns: time.parse().ok()?,
            json: payload[nl + 1..].to_vec(),
        })
    }
}

/// Where documents go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `logs-mamori.alerts-<namespace>` and `logs-mamori.deadletter-<namespace>`.
    DataStream { namespace: String },
    /// `mamori-alerts-<namespace>-YYYY.MM.DD` (and `mamori-deadletter-...`)
    /// for clusters without data streams.
    Daily { namespace: String },
}

impl Target {
    pub fn namespace(&self) -> &str {
        match self {
            Target::DataStream { namespace } | Target::Daily { namespace } => namespace,
        }
    }

    /// The index or data stream of an alert at `time_ns`.
    pub fn alerts(&self, time_ns: u64) -> String {
        self.index("alerts", time_ns)
    }

    /// Where the agent's status document at `time_ns` goes: a metrics
    /// data stream (or daily index) of its own.
    pub fn status(&self, time_ns: u64) -> String {
        match self {
            Target::DataStream { namespace } => format!("metrics-mamori.status-{namespace}"),
            Target::Daily { .. } => self.index("status", time_ns),
        }
    }

    /// Where refused documents go.
    pub fn dead_letter(&self, time_ns: u64) -> String {
        self.index("deadletter", time_ns)
    }

    fn index(&self, kind: &str, time_ns: u64) -> String {
        match self {
            Target::DataStream { namespace } => format!("logs-mamori.{kind}-{namespace}"),
            Target::Daily { namespace } => {
                format!("mamori-{kind}-{namespace}-{}", day(time_ns))
            }
        }
    }
}

/// `YYYY.MM.DD` (UTC).
fn day(time_ns: u64) -> String {
    rfc3339_nanos(time_ns)[..10].replace('-', ".")
}

/// A `_bulk` body creating each document in its index, with
/// `event.ingested` set to `now_ns`.
pub fn body<'a>(docs: impl IntoIterator<Item = (&'a str, &'a Doc)>, now_ns: u64) -> Vec<u8> {
    let ingested = ecs::ingested_value(now_ns);
    let mut out = Vec::new();
    for (index, d) in docs {
        let action = serde_json::json!({"create": {"_index": index, "_id": d.id}});
        out.extend_from_slice(action.to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&with_ingested(&d.json, &ingested));
        out.push(b'\n');
    }
    out
}

/// Sets the placeholder `event.ingested` to the send time; documents
/// without the placeholder are left as they are.
fn with_ingested(json: &[u8], ingested: &str) -> Vec<u8> {
    let mut out = json.to_vec();
    let needle = ecs::INGESTED_PLACEHOLDER.as_bytes();
    if ingested.len() == needle.len()
        && let Some(at) = json.windows(needle.len()).position(|w| w == needle)
    {
        out[at..at + needle.len()].copy_from_slice(ingested.as_bytes());
    }
    out
}

/// What happened to one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// Already there (409 on create): delivered before.
    Duplicate,
    /// Try again later (429, 5xx, or no answer for the item).
    Retry {
        status: u16,
        reason: String,
    },
    /// Refused for good (mapping errors and other 4xx): dead-letter it.
    Refused {
        status: u16,
        reason: String,
    },
}

/// The outcome of each of `n` items from a `_bulk` answer body. An answer
/// that cannot be read makes every item a retry.
pub fn outcomes(answer: &[u8], n: usize) -> Vec<Outcome> {
    let unreadable = |why: &str| {
        vec![
            Outcome::Retry {
                status: 0,
                reason: why.to_owned(),
            };
            n
        ]
    };
    let Ok(v) = serde_json::from_slice::<Value>(answer) else {
        return unreadable("unreadable _bulk answer");
    };
    let Some(items) = v["items"].as_array() else {
        return unreadable("_bulk answer without items");
    };
    if items.len() != n {
        return unreadable("_bulk answer with the wrong number of items");
    }
    items.iter().map(outcome).collect()
}

fn outcome(item: &Value) -> Outcome {
    let Some(r) = item.as_object().and_then(|o| o.values().next()) else {
        return Outcome::Retry {
            status: 0,
            reason: "malformed item".into(),
        };
    };
    let status = r["status"].as_u64().unwrap_or(0) as u16;
    let reason = || {
        let e = &r["error"];
        match (e["type"].as_str(), e["reason"].as_str()) {
            (Some(t), Some(why)) => format!("{t}: {why}"),
            (Some(t), None) => t.to_owned(),
            _ => e.to_string(),
        }
    };
    match status {
        200..=299 => Outcome::Created,
        409 => Outcome::Duplicate,
        429 | 500..=599 | 0 => Outcome::Retry {
            status,
            reason: reason(),
        },
        _ => Outcome::Refused {
            status,
            reason: reason(),
        },
    }
}

/// The dead-letter document for a refused one: the original kept whole
/// as a string (`event.original`), the reason in `error.*`.
pub fn dead_letter(doc: &Doc, status: u16, reason: &str, namespace: &str) -> Vec<u8> {
    let original = String::from_utf8_lossy(&doc.json);
    let parsed: Option<Value> = serde_json::from_slice(&doc.json).ok();
    let rule = parsed
        .as_ref()
        .and_then(|v| v["rule"]["name"].as_str().map(str::to_owned));
    serde_json::json!({
        "@timestamp": rfc3339_nanos(doc.time_ns),
        "message": format!("Elasticsearch refused alert {} ({status}): {reason}", doc.id),
        "ecs": {"version": ecs::ECS_VERSION},
        "event": {
            "kind": "pipeline_error",
            "id": doc.id,
            "module": "mamori",
            "dataset": "mamori.deadletter",
            "original": original,
            "ingested": "1970-01-01T00:00:00.000Z",
        },
        "error": {"code": status.to_string(), "type": "bulk_item_refused", "message": reason},
        "rule": {"name": rule},
        "data_stream": {"type": "logs", "dataset": "mamori.deadletter", "namespace": namespace},
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> Doc {
        Doc {
            seq: 1,
            id: id.into(),
            time_ns: 1_795_606_870_371_008_876,
            json: format!(
                r#"{{"event":{{"id":"{id}",{}}},"x":1}}"#,
                ecs::INGESTED_PLACEHOLDER
            )
            .into_bytes(),
        }
    }

    #[test]
    fn spool_records_round_trip() {
        let d = doc("ab12");
        let enc = Doc::encode(&d.id, d.time_ns, &d.json);
        assert_eq!(Doc::decode(1, &enc), Some(d));
        assert_eq!(Doc::decode(1, b"garbage"), None);
        assert_eq!(Doc::decode(1, b"a\"b 1\n{}"), None);
        assert_eq!(Doc::decode(1, b"ab x\n{}"), None);
    }

    #[test]
    fn targets_name_data_streams_or_daily_indices() {
        let ds = Target::DataStream {
            namespace: "prod".into(),
        };
        assert_eq!(ds.alerts(0), "logs-mamori.alerts-prod");
        assert_eq!(ds.dead_letter(0), "logs-mamori.deadletter-prod");
        let daily = Target::Daily {
            namespace: "prod".into(),
        };
        assert_eq!(
            daily.alerts(1_795_606_870_371_008_876),
            "mamori-alerts-prod-2026.11.25"
        );
    }

    #[test]
    fn bodies_create_with_ids_and_set_ingested() {
        let docs = [doc("a1"), doc("b2")];
        let b = body(
            docs.iter().map(|d| ("logs-mamori.alerts-default", d)),
            1_795_606_900_000_000_000,
        );
        let text = String::from_utf8(b).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(text.ends_with('\n'));
        let action: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(action["create"]["_id"], "a1");
        assert_eq!(action["create"]["_index"], "logs-mamori.alerts-default");
        let src: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(src["event"]["ingested"], "2026-11-25T11:41:40.000Z");
        assert_eq!(src["event"]["id"], "a1");
    }

    #[test]
    fn item_outcomes() {
        let answer = br#"{"errors":true,"items":[
            {"create":{"_id":"a","status":201}},
            {"create":{"_id":"b","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"create":{"_id":"c","status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}},
            {"create":{"_id":"d","status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse field [process.pid]"}}},
            {"create":{"_id":"e","status":503,"error":{"type":"unavailable_shards_exception","reason":"no shard"}}}
        ]}"#;
        let o = outcomes(answer, 5);
        assert_eq!(o[0], Outcome::Created);
        assert_eq!(o[1], Outcome::Duplicate);
        assert!(matches!(&o[2], Outcome::Retry { status: 429, .. }));
        assert_eq!(
            o[3],
            Outcome::Refused {
                status: 400,
                reason: "document_parsing_exception: failed to parse field [process.pid]".into()
            }
        );
        assert!(matches!(&o[4], Outcome::Retry { status: 503, .. }));
    }

    #[test]
    fn unreadable_answers_retry_everything() {
        for answer in [
            &b"<html>"[..],
            br#"{"took":1}"#,
            br#"{"items":[{"create":{"status":201}}]}"#,
        ] {
            let o = outcomes(answer, 2);
            assert_eq!(o.len(), 2);
            assert!(
                o.iter().all(|x| matches!(x, Outcome::Retry { .. })),
                "{o:?}"
            );
        }
    }

    #[test]
    fn dead_letters_keep_the_original_and_the_reason() {
        let d = doc("a1");
        let dl: Value = serde_json::from_slice(&dead_letter(
            &d,
            400,
            "mapper_parsing_exception: x",
            "default",
        ))
        .unwrap();
        assert_eq!(dl["event"]["kind"], "pipeline_error");
        assert_eq!(dl["event"]["id"], "a1");
        assert_eq!(dl["error"]["message"], "mapper_parsing_exception: x");
        assert_eq!(dl["event"]["original"], String::from_utf8(d.json).unwrap());
        assert_eq!(dl["data_stream"]["dataset"], "mamori.deadletter");
    }
}
