//! Alerts: what a rule hit (or the agent itself) reports. Plain data, in
//! Falco's shape, so every output can render it without knowing rules.

use std::{fmt, sync::Arc};

use crate::event::Event;

/// Falco's eight priorities, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Priority {
    pub const ALL: [Priority; 8] = [
        Priority::Emergency,
        Priority::Alert,
        Priority::Critical,
        Priority::Error,
        Priority::Warning,
        Priority::Notice,
        Priority::Informational,
        Priority::Debug,
    ];

    /// As Falco writes it in alerts (`Warning`, `Informational`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// Parses a rules-file priority: case-insensitive, `INFO` accepted.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        if s == "info" {
            return Some(Priority::Informational);
        }
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().to_ascii_lowercase() == s)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
}
