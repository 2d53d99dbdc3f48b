//! `explain`: each part of a rule's condition, evaluated on its own.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use common::{Ev, ruleset};
use mamori_rules::{Field as F, explain::Explained};

const RULES: &str = r#"
- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type in (execve, execveat) and evt.rawres = 0
- rule: shell by a stranger
  desc: x
  condition: spawned and proc.name in (shells) and not proc.pname = "sshd"
  output: "%proc.name"
  priority: info
  exceptions:
    - name: trusted_users
      fields: [user.name]
      values: [[admin]]
"#;

fn lines(e: &Explained, depth: usize, out: &mut Vec<String>) {
    let mark = if e.held { "+" } else { "-" };
    let values = if e.values.is_empty() {
        String::new()
    } else {
        format!("  [{}]", e.values.join(", "))
    };
    out.push(format!("{}{mark} {}{values}", "  ".repeat(depth), e.text));
    for c in &e.children {
        lines(c, depth + 1, out);
    }
}

fn explain(ev: &Ev) -> Vec<String> {
    let rs = ruleset(&[RULES]);
    let e = rs.explain("shell by a stranger", ev).unwrap();
    let mut out = Vec::new();
    lines(&e, 0, &mut out);
    out
}

#[test]
fn every_part_is_shown_with_its_values() {
    let ev = Ev::new("execve")
        .i(F::EvtRawRes, 0)
        .s(F::ProcName, "bash")
        .s(F::ProcPname, "sshd")
        .s(F::UserName, "bob");
    assert_eq!(
        explain(&ev),
        [
            "- rule `shell by a stranger`",
            "  - condition",
            "    + spawned",
            "      + evt.type in (execve, execveat)  [evt.type = execve]",
            "      + evt.rawres = 0  [evt.rawres = 0]",
            "    + proc.name in (shells)  [proc.name = bash]",
            "    - not proc.pname = \"sshd\"  [proc.pname = sshd]",
            "  + not exception `trusted_users`",
        ]
    );
}

#[test]
fn an_exception_that_holds_stops_the_rule() {
    let ev = Ev::new("execve")
        .i(F::EvtRawRes, 0)
        .s(F::ProcName, "sh")
        .s(F::ProcPname, "cron")
        .s(F::UserName, "admin");
    let out = explain(&ev);
    assert_eq!(out[0], "- rule `shell by a stranger`");
    assert_eq!(out[1], "  + condition");
    assert_eq!(out.last().unwrap(), "  - not exception `trusted_users`");
}

#[test]
fn a_missing_field_shows_as_na_and_an_unknown_rule_is_an_error() {
    let ev = Ev::new("openat");
    let out = explain(&ev);
    assert!(
        out.contains(&"      - evt.rawres = 0  [evt.rawres = <NA>]".to_owned()),
        "{out:#?}"
    );
    let rs = ruleset(&[RULES]);
    assert_eq!(rs.explain("nope", &ev).unwrap_err(), "no rule named `nope`");
}
