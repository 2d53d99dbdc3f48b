//! Alerts: what a rule hit (or the agent itself) reports. Plain data, in
//! Falco's shape, so every output can render it without knowing rules.

use std::{fmt, sync::Arc};

use crate::event::Event;

pub use mamori_rules::Priority;

/// A typed value of an output field.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// The field has no value for this event (`<NA>` in text, `null` in JSON).
    Missing,
    Str(String),
    Int(i64),
    UInt(u64),
    Bool(bool),
    List(Vec<String>),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Missing => f.write_str("<NA>"),
            FieldValue::Str(s) => f.write_str(s),
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::UInt(u) => write!(f, "{u}"),
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::List(l) => write!(f, "({})", l.join(",")),
        }
    }
}

/// `proc.argv` in [`Alert::context`]: the full argument vector as a list
/// (not a Falco field: Falco only has it joined), for ECS's
/// `process.args`.
pub const ARGV: &str = "proc.argv";

/// Where an alert came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A rule matched a syscall event.
    Syscall,
    /// The agent reports on itself (event loss, output trouble).
    Internal,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Syscall => "syscall",
            Source::Internal => "internal",
        }
    }
}

/// One alert.
#[derive(Clone, Debug)]
pub struct Alert {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: u64,
    pub rule: String,
    /// The rule's `desc`.
    pub description: String,
    /// The rules file that defined the rule (`rule.ruleset` in ECS).
    pub ruleset: String,
    pub priority: Priority,
    pub source: Source,
    pub tags: Vec<String>,
    /// The rule's output with fields substituted (no time/priority prefix).
    pub message: String,
    /// Every field the output names, in order, with typed values.
    pub output_fields: Vec<(String, FieldValue)>,
    pub hostname: String,
    /// The event that matched, for outputs that map it (ECS).
    pub event: Option<Arc<Event>>,
    /// What was known about the event's process, file, connection and
    /// container when the rule matched (the state moves on after), by
    /// Falco field name; fields without a value are left out. Outputs that
    /// map alerts to another schema (ECS) read this, not the state.
    pub context: Vec<(&'static str, FieldValue)>,
}

impl Alert {
    /// An alert of the agent about itself (loss, full tables, outputs
    /// down): source internal, ruleset `mamori`, tag `mamori_internal`,
    /// no event. `time_ns` is given: the time of what is reported, or now.
    pub fn internal(
        time_ns: u64,
        (rule, description): (&str, &str),
        priority: Priority,
        message: String,
        output_fields: Vec<(String, FieldValue)>,
        hostname: &str,
    ) -> Self {
        Self {
            time_ns,
            rule: rule.to_owned(),
            description: description.to_owned(),
            ruleset: "mamori".into(),
            priority,
            source: Source::Internal,
            tags: vec!["mamori_internal".into()],
            message,
            output_fields,
            hostname: hostname.to_owned(),
            event: None,
            context: Vec::new(),
        }
    }

    /// A context value by Falco field name.
    pub fn context(&self, field: &str) -> Option<&FieldValue> {
        self.context
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, v)| v)
    }
}
