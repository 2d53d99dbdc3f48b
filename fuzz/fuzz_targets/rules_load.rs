//! Any bytes as a rules file: loading must return diagnostics, never panic
//! or hang, and every diagnostic must carry a position.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// libfuzzer-sys aborts in its panic hook, even for panics the loader
/// contains (libyaml-safer 0.3 panics on some malformed YAML; `yaml::parse`
/// turns that into an error). A silent hook lets those be handled; a panic
/// that escapes the loader still aborts: libfuzzer-sys catches the unwind
/// and aborts.
fn quiet_contained_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}
use mamori_rules::{MatchMode, SourceFile, load};

fuzz_target!(|data: &[u8]| {
    quiet_contained_panics();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let r = load(&[SourceFile::new("fuzz.yaml", text)], MatchMode::All);
    for d in &r.diagnostics {
        assert!(d.line >= 1, "{d}");
    }
});
