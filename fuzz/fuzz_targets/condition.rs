//! Any text as a rule condition (with a small list and macro around it):
//! parse, check and compile must return an error or a ruleset, never panic.
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
    let _ = load(&[SourceFile::new("fuzz.yaml", file)], MatchMode::All);
});
