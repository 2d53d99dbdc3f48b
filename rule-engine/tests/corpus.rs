//! Falco's published rules files load unmodified, with the counts Falco
//! reports. The files are read from `../shared/compat/falco-rules/`
//! (test data beside the repository; never copied into it).

use std::path::PathBuf;

use mamori_rules::{MatchMode, Severity, SourceFile, load};

fn corpus(name: &str) -> SourceFile {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/falco-rules");
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the compatibility corpus must be at {}: {e}",
            path.display()
        )
    });
    SourceFile::new(name, text)
}

fn errors(r: &mamori_rules::LoadResult) -> Vec<String> {
    r.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn stable_rules_load() {
    let r = load(&[corpus("falco_rules.yaml")], MatchMode::First);
    assert_eq!(errors(&r), Vec::<String>::new());
    assert_eq!((r.stats.rules, r.stats.enabled_rules), (25, 25));
    assert!(r.ruleset.is_some());
}

#[test]
fn incubating_rules_load() {
    let r = load(&[corpus("falco-incubating_rules.yaml")], MatchMode::First);
    assert_eq!(errors(&r), Vec::<String>::new());
    assert_eq!((r.stats.rules, r.stats.enabled_rules), (31, 31));
}

#[test]
fn sandbox_rules_load() {
    let r = load(&[corpus("falco-sandbox_rules.yaml")], MatchMode::First);
    assert_eq!(errors(&r), Vec::<String>::new());
    assert_eq!((r.stats.rules, r.stats.enabled_rules), (37, 25));
}

#[test]
fn all_three_load_together() {
    let r = load(
        &[
            corpus("falco_rules.yaml"),
            corpus("falco-incubating_rules.yaml"),
            corpus("falco-sandbox_rules.yaml"),
        ],
        MatchMode::First,
    );
    assert_eq!(errors(&r), Vec::<String>::new());
    assert_eq!(r.stats.rules, 25 + 31 + 37);
}
