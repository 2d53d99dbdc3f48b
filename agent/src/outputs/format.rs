//! Rendering alerts: Falco's JSON shape and a readable line.
//!
//! Field values are attacker-controlled (file names, arguments): the JSON
//! encoder escapes them; the text line escapes control characters so one
//! alert is always one line.

use serde_json::{Map, Value};

use crate::alert::{Alert, FieldValue};
use crate::time::rfc3339_nanos;

/// Falco's alert JSON (`json_output: true`), one line.
pub fn falco_json(alert: &Alert) -> String {
    falco_value(alert).to_string()
}

/// Falco's alert JSON as a value: what its `json_output` prints and its
/// `http_output` posts.
pub fn falco_value(alert: &Alert) -> Value {
    let mut fields = Map::new();
    for (name, value) in &alert.output_fields {
        fields.insert(name.clone(), json_value(value));
    }
    fields.insert("evt.time".into(), Value::from(alert.time_ns));
    let time = rfc3339_nanos(alert.time_ns);
    let mut doc = Map::new();
    doc.insert("hostname".into(), alert.hostname.clone().into());
    doc.insert(
        "output".into(),
        format!("{time}: {} {}", alert.priority, alert.message).into(),
    );
    doc.insert("output_fields".into(), Value::Object(fields));
    doc.insert("priority".into(), alert.priority.as_str().into());
    doc.insert("rule".into(), alert.rule.clone().into());
    doc.insert("source".into(), alert.source.as_str().into());
    doc.insert("tags".into(), alert.tags.clone().into());
    doc.insert("time".into(), time.into());
    Value::Object(doc)
}

/// A field value as JSON (`null` when missing).
pub fn json_value(v: &FieldValue) -> Value {
    match v {
        FieldValue::Missing => Value::Null,
        FieldValue::Str(s) => Value::from(s.as_str()),
        FieldValue::Int(i) => Value::from(*i),
        FieldValue::UInt(u) => Value::from(*u),
        FieldValue::Bool(b) => Value::from(*b),
        FieldValue::List(l) => Value::from(l.clone()),
    }
}

/// `2026-11-25T11:41:10.371008876Z: Warning <message>`, control characters
/// escaped.
pub fn text_line(alert: &Alert) -> String {
    let time = rfc3339_nanos(alert.time_ns);
    format!(
        "{time}: {} {}",
        alert.priority,
        escape_controls(&alert.message)
    )
}

/// Replaces control characters with `\n`, `\t`, `\xNN` escapes.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Priority, Source};

    fn alert(message: &str) -> Alert {
        Alert {
            time_ns: 1_795_606_870_371_008_876,
            rule: "Read sensitive file".into(),
            description: "A sensitive file was read.".into(),
            ruleset: "mamori_rules.yaml".into(),
            priority: Priority::Warning,
            source: Source::Syscall,
            tags: vec!["T1555".into()],
            message: message.into(),
            output_fields: vec![
                ("fd.name".into(), FieldValue::Str("/etc/sha\"dow\n".into())),
                ("proc.pid".into(), FieldValue::Int(42)),
                ("container.id".into(), FieldValue::Missing),
            ],
            hostname: "node-1".into(),
            event: None,
            context: Vec::new(),
        }
    }

    #[test]
    fn json_has_falcos_keys_and_typed_fields() {
        let line = falco_json(&alert("file /etc/shadow opened"));
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["rule"], "Read sensitive file");
        assert_eq!(v["priority"], "Warning");
        assert_eq!(v["source"], "syscall");
        assert_eq!(v["hostname"], "node-1");
        assert_eq!(v["time"], "2026-11-25T11:41:10.371008876Z");
        assert_eq!(v["tags"][0], "T1555");
        assert_eq!(
            v["output"],
            "2026-11-25T11:41:10.371008876Z: Warning file /etc/shadow opened"
        );
        assert_eq!(v["output_fields"]["fd.name"], "/etc/sha\"dow\n");
        assert_eq!(v["output_fields"]["proc.pid"], 42);
        assert!(v["output_fields"]["container.id"].is_null());
        assert_eq!(v["output_fields"]["evt.time"], 1_795_606_870_371_008_876u64);
    }

    #[test]
    fn text_line_stays_one_line_with_hostile_values() {
        let line = text_line(&alert("file /tmp/a\nFAKE ALERT\x1b[31m opened"));
        assert_eq!(line.lines().count(), 1);
        assert!(line.contains("/tmp/a\\nFAKE ALERT\\x1b[31m"));
    }
}
