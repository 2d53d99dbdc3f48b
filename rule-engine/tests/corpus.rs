//! Falco's published rules files load unmodified, with the counts Falco
//! reports. The files are test data this repository does not contain:
//! they are read from `$MAMORI_FALCO_RULES_DIR`, else from
//! `shared/compat/falco-rules/` beside the clone (where CI puts them).
//! When neither holds them, every test here is reported as ignored, with
//! one line saying why.
#![allow(
    clippy::unwrap_used,
    reason = "a custom harness: these are tests, panics are the failure report"
)]

use std::path::PathBuf;

use libtest_mimic::{Arguments, Trial};
use mamori_rules::{MatchMode, Severity, SourceFile, load};

/// The agent's event types: its captured syscalls and `procexit`.
fn event_types() -> Vec<&'static str> {
    mamori_common::syscalls::ALL
        .iter()
        .map(|s| s.name)
        .chain(["procexit"])
        .collect()
}

const FILES: [&str; 3] = [
    "falco_rules.yaml",
    "falco-incubating_rules.yaml",
    "falco-sandbox_rules.yaml",
];

/// Where the corpus is looked for, and whether it is there.
fn corpus_dir() -> (PathBuf, bool) {
    let dir = std::env::var_os("MAMORI_FALCO_RULES_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/falco-rules"),
        PathBuf::from,
    );
    let present = FILES.iter().all(|f| dir.join(f).is_file());
    (dir, present)
}

fn corpus(name: &str) -> SourceFile {
    let path = corpus_dir().0.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    SourceFile::new(name, text)
}

fn main() {
    let args = Arguments::from_args();
    let tests: [(&str, fn()); 7] = [
        ("stable_rules_load", stable_rules_load),
        ("incubating_rules_load", incubating_rules_load),
        ("sandbox_rules_load", sandbox_rules_load),
        ("all_three_load_together", all_three_load_together),
        (
            "stable_rules_are_indexed_under_falcos_event_types",
            stable_rules_are_indexed_under_falcos_event_types,
        ),
        (
            "no_corpus_rule_runs_on_every_event",
            no_corpus_rule_runs_on_every_event,
        ),
        (
            "the_fields_mamori_does_not_fill_are_these",
            the_fields_mamori_does_not_fill_are_these,
        ),
    ];
    let (dir, present) = corpus_dir();
    if !present {
        println!(
            "corpus: skipped, Falco's rules files are not in {} (set MAMORI_FALCO_RULES_DIR to a directory holding {})",
            dir.display(),
            FILES.join(", ")
        );
    }
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            Trial::test(name, move || {
                f();
                Ok(())
            })
            .with_ignored_flag(!present)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn errors(r: &mamori_rules::LoadResult) -> Vec<String> {
    r.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect()
}

fn stable_rules_load() {
    let r = load(
        &[corpus("falco_rules.yaml")],
        MatchMode::First,
        &event_types(),
    );
    assert_eq!(errors(&r), Vec::<String>::new());
    assert_eq!((r.stats.rules, r.stats.enabled_rules), (25, 25));
    assert!(r.ruleset.is_some());
}

fn incubating_rules_load() {
    let r = load(
        &[corpus("falco-incubating_rules.yaml")],
        MatchMode::First,
        &event_types(),
    );
    assert_eq!(errors(&r), Vec::<String>::new());
    assert_eq!((r.stats.rules, r.stats.enabled_rules), (31, 31));
}

fn sandbox_rules_load() {
    let r = load(
        &[corpus("falco-sandbox_rules.yaml")],
        MatchMode::First,
        &event_types(),
    );
    assert_eq!(errors(&r), Vec::<String>::new());
    assert_eq!((r.stats.rules, r.stats.enabled_rules), (37, 25));
}

/// Falco's three files loaded together, in Falco's order.
fn load_all_three() -> mamori_rules::LoadResult {
    load(&FILES.map(corpus), MatchMode::First, &event_types())
}

fn all_three_load_together() {
    let r = load_all_three();
    assert_eq!(errors(&r), Vec::<String>::new());
    assert_eq!(r.stats.rules, 25 + 31 + 37);
}

/// Every field of the three files that mamori does not fill, with the
/// rules that use it: what is left of Falco parity (issue 16). A field
/// filled, or a new use of an unfilled one, changes this list.
fn the_fields_mamori_does_not_fill_are_these() {
    let r = load_all_three();
    let mut got: Vec<(&str, &str)> = r
        .unfilled
        .iter()
        .map(|u| (u.field, u.rule.as_str()))
        .collect();
    got.sort();
    assert_eq!(got, Vec::<(&str, &str)>::new());
}

/// The event types each stable rule is indexed under, as Falco indexes
/// them (its evttype analysis of the same conditions).
fn stable_rules_are_indexed_under_falcos_event_types() {
    use mamori_rules::types::Types;
    let open = &["open", "openat", "openat2"][..];
    let exec = &["execve", "execveat"][..];
    let expected: &[(&str, &[&str])] = &[
        ("Directory traversal monitored file read", open),
        ("Read sensitive file trusted after startup", open),
        ("Read sensitive file untrusted", open),
        ("Run shell untrusted", exec),
        ("System user interactive", exec),
        ("Terminal shell in container", exec),
        ("Contact K8S API Server From Container", &["connect"]),
        ("Netcat Remote Code Execution in Container", exec),
        ("Search Private Keys or Passwords", exec),
        ("Clear Log Activities", open),
        ("Remove Bulk Data from Disk", exec),
        (
            "Create Symlink Over Sensitive Files",
            &["symlink", "symlinkat"],
        ),
        ("Create Hardlink Over Sensitive Files", &["link", "linkat"]),
        ("Packet socket created in container", &["socket"]),
        (
            "Redirect STDOUT/STDIN to Network Connection in Container",
            &["dup", "dup2", "dup3"],
        ),
        (
            "Linux Kernel Module Injection Detected",
            &["finit_module", "init_module"],
        ),
        ("Debugfs Launched in Privileged Container", exec),
        ("Detect release_agent File Container Escapes", open),
        ("PTRACE attached to process", &["ptrace"]),
        ("PTRACE anti-debug attempt", &["ptrace"]),
        ("Find AWS Credentials", exec),
        ("Execution from /dev/shm", exec),
        ("Drop and execute new binary in container", exec),
        (
            "Disallowed SSH Connection Non Standard Port",
            &["connect", "sendmsg", "sendto"],
        ),
        ("Fileless execution via memfd_create", exec),
    ];
    let r = load(
        &[corpus("falco_rules.yaml")],
        MatchMode::First,
        &event_types(),
    );
    let rs = r.ruleset.unwrap();
    assert_eq!(rs.rules.len(), expected.len());
    for (name, types) in expected {
        let rule = rs
            .rules
            .iter()
            .find(|r| r.name == *name)
            .unwrap_or_else(|| panic!("no rule {name}"));
        let want: std::collections::BTreeSet<String> =
            types.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(rule.types, Types::Only(want), "{name}");
    }
}

fn no_corpus_rule_runs_on_every_event() {
    let r = load_all_three();
    let unrestricted: Vec<&str> = r
        .ruleset
        .as_ref()
        .unwrap()
        .rules
        .iter()
        .filter(|rule| !matches!(rule.types, mamori_rules::types::Types::Only(_)))
        .map(|rule| rule.name.as_str())
        .collect();
    assert!(unrestricted.is_empty(), "{unrestricted:?}");
}
