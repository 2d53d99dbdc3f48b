//! Falco's `append_output`: extra text and fields on the outputs of the
//! rules an entry matches.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{Ev, ruleset};
use mamori_rules::{AppendOutput, ExtraField, Field as F, FieldArg, OutputValue, Value};

const RULES: &str = r#"
- rule: shell
  desc: d
  condition: evt.type = execve and proc.name = sh
  output: "shell %proc.name"
  priority: WARNING
  tags: [T1059, process]
- rule: other
  desc: d
  condition: evt.type = execve and proc.name = sh
  output: "other %proc.name"
  priority: WARNING
  tags: [process]
"#;

fn event() -> Ev {
    Ev::new("execve")
        .s(F::ProcName, "sh")
        .i(F::ProcPid, 42)
        .arg(
            F::ProcEnv,
            FieldArg::Key("TEAM".into()),
            Value::owned("red"),
        )
}

/// Each rule's (message, fields) for the event.
fn outputs(entries: &[AppendOutput]) -> Vec<(String, Vec<(String, OutputValue)>)> {
    let mut rs = ruleset(&[RULES]);
    let warnings = rs.append_output(entries).expect("entries apply");
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut out = Vec::new();
    rs.evaluate(rs.type_id("execve").unwrap(), &event(), |_, o| {
        out.push((o.message, o.fields))
    });
    out
}

#[test]
fn text_goes_to_the_message_and_fields_only_to_the_fields() {
    let out = outputs(&[AppendOutput {
        extra_output: Some("pid=%proc.pid".into()),
        extra_fields: vec![
            ExtraField::Field("proc.env[TEAM]".into()),
            ExtraField::Named {
                name: "who".into(),
                format: "%proc.name/%proc.pid".into(),
            },
            // Already shown: not repeated.
            ExtraField::Field("proc.name".into()),
        ],
        ..AppendOutput::default()
    }]);
    assert_eq!(out.len(), 2);
    let (message, fields) = &out[0];
    assert_eq!(message, "shell sh pid=42");
    assert_eq!(
        fields,
        &vec![
            ("proc.name".to_owned(), OutputValue::Str("sh".into())),
            ("proc.pid".to_owned(), OutputValue::Int(42)),
            ("proc.env[TEAM]".to_owned(), OutputValue::Str("red".into())),
            ("who".to_owned(), OutputValue::Str("sh/42".into())),
        ]
    );
}

#[test]
fn entries_match_by_rule_tags_and_source() {
    let text = |m: &str| AppendOutput {
        extra_output: Some(m.into()),
        ..AppendOutput::default()
    };
    let out = outputs(&[
        AppendOutput {
            rule: Some("other".into()),
            ..text("by-rule")
        },
        AppendOutput {
            tags: vec!["T1059".into(), "process".into()],
            ..text("by-tags")
        },
        AppendOutput {
            source: Some("syscall".into()),
            ..text("by-source")
        },
    ]);
    let messages: Vec<&str> = out.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        messages,
        ["shell sh by-tags by-source", "other sh by-rule by-source"]
    );
}

#[test]
fn a_bad_entry_names_its_key_and_an_unfilled_field_is_warned() {
    let mut rs = ruleset(&[RULES]);
    let e = rs
        .append_output(&[
            AppendOutput::default(),
            AppendOutput {
                extra_fields: vec![ExtraField::Field("proc.nope".into())],
                ..AppendOutput::default()
            },
        ])
        .unwrap_err();
    assert!(e.starts_with("append_output[1].extra_fields[0]: "), "{e}");
    assert!(e.contains("proc.nope"), "{e}");
    let w = rs
        .append_output(&[AppendOutput {
            source: Some("k8s_audit".into()),
            extra_output: Some("cpu=%evt.cpu".into()),
            ..AppendOutput::default()
        }])
        .unwrap();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("evt.cpu") && w[0].starts_with("append_output[0]"),
        "{w:?}"
    );
    assert!(w[1].contains("k8s_audit"), "{w:?}");
}
