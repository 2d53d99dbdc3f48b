//! Any bytes as a rules file: loading must return diagnostics, never panic
//! or hang, and every diagnostic must carry a position.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::{EVENT_TYPES, quiet_contained_panics};
use mamori_rules::{MatchMode, SourceFile, load};

fuzz_target!(|data: &[u8]| {
    quiet_contained_panics();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let r = load(&[SourceFile::new("fuzz.yaml", text)], MatchMode::All, EVENT_TYPES);
    for d in &r.diagnostics {
        assert!(d.line >= 1, "{d}");
    }
});
