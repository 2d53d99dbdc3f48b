//! Any text as a rule condition (with a small list and macro around it):
//! parse, check and compile must return an error or a ruleset, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::{EVENT_TYPES, quiet_contained_panics};
use mamori_rules::{MatchMode, SourceFile, load, syntax};

fuzz_target!(|data: &[u8]| {
    quiet_contained_panics();
    let Ok(cond) = std::str::from_utf8(data) else { return };
    let _ = syntax::parse(cond);
    let quoted = cond.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ");
    let file = format!(
        "- list: l\n  items: [a, \"b c\"]\n- macro: m\n  condition: evt.type = openat\n\
         - rule: r\n  desc: d\n  condition: \"{quoted}\"\n  output: \"%proc.name %fd.name\"\n  priority: WARNING\n"
    );
    let _ = load(&[SourceFile::new("fuzz.yaml", file)], MatchMode::All, EVENT_TYPES);
});
