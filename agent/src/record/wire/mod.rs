//! The serialised shapes of events and processes in a recording: separate
//! from the in-memory types, which hold raw bytes, kernel structs and
//! derived fields; bytes that are not UTF-8 round-trip as hex. (Users and
//! container metadata are plain data and serialise as they are.)
//!
//! `event.rs` holds the shapes of events, `process.rs` those of the
//! process table; this file the text and byte encodings both use.

mod event;
mod process;

pub use event::{DetailRec, EventRec, ExecRec, FileRec, ParamRec, SockRec, TaskRec, event_type};
pub use process::{ProcessRec, runtime_name};

use serde::{Deserialize, Serialize};

use crate::event::Text;

/// Text as a JSON string when it is UTF-8 and whole, else hex bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum TextRec {
    Str(String),
    Raw {
        hex: String,
        #[serde(default)]
        truncated: bool,
    },
}

impl From<&Text> for TextRec {
    fn from(t: &Text) -> Self {
        match std::str::from_utf8(&t.bytes) {
            Ok(s) if !t.truncated => TextRec::Str(s.to_owned()),
            _ => TextRec::Raw {
                hex: hex(&t.bytes),
                truncated: t.truncated,
            },
        }
    }
}

impl TextRec {
    pub fn to_text(&self) -> Text {
        match self {
            TextRec::Str(s) => Text::from(s.as_str()),
            TextRec::Raw { hex, truncated } => Text {
                bytes: unhex(hex),
                truncated: *truncated,
            },
        }
    }
}

impl Default for TextRec {
    fn default() -> Self {
        TextRec::Str(String::new())
    }
}

pub(super) fn texts(v: &[Text]) -> Vec<TextRec> {
    v.iter().map(TextRec::from).collect()
}

pub(super) fn untexts(v: &[TextRec]) -> Vec<Text> {
    v.iter().map(TextRec::to_text).collect()
}

pub(super) fn opt(t: &Option<Text>) -> Option<TextRec> {
    t.as_ref().map(TextRec::from)
}

pub(super) fn unopt(t: &Option<TextRec>) -> Option<Text> {
    t.as_ref().map(TextRec::to_text)
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

pub(super) fn addr16(s: &str) -> [u8; 16] {
    let mut out = [0; 16];
    for (o, b) in out.iter_mut().zip(unhex(s)) {
        *o = b;
    }
    out
}
