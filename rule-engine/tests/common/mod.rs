//! Test support: rules from strings, events from field values.
#![allow(
    dead_code,
    reason = "each test binary that includes this module uses a part of it"
)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support")]

use std::collections::HashMap;

use mamori_rules::{
    Extract, Field, FieldArg, LoadResult, MatchMode, RuleSet, Severity, SourceFile, Value, load,
};

/// An event given as field values. Fields not set are missing.
#[derive(Default)]
pub struct Ev {
    values: HashMap<(Field, FieldArg), Value<'static>>,
    pub ty: &'static str,
}

impl Ev {
    pub fn new(ty: &'static str) -> Self {
        let mut e = Self {
            ty,
            ..Self::default()
        };
        e.values
            .insert((Field::EvtType, FieldArg::None), Value::owned(ty));
        e
    }

    pub fn s(mut self, f: Field, v: &str) -> Self {
        self.values.insert((f, FieldArg::None), Value::owned(v));
        self
    }

    pub fn arg(mut self, f: Field, arg: FieldArg, v: Value<'static>) -> Self {
        self.values.insert((f, arg), v);
        self
    }

    pub fn i(mut self, f: Field, v: i64) -> Self {
        self.values.insert((f, FieldArg::None), Value::Int(v));
        self
    }

    pub fn b(mut self, f: Field, v: bool) -> Self {
        self.values.insert((f, FieldArg::None), Value::Bool(v));
        self
    }

    pub fn v(mut self, f: Field, v: Value<'static>) -> Self {
        self.values.insert((f, FieldArg::None), v);
        self
    }
}

impl Extract for Ev {
    fn extract(&self, field: Field, arg: &FieldArg) -> Option<Value<'_>> {
        self.values.get(&(field, arg.clone())).cloned()
    }
}

pub fn load_strs(files: &[&str]) -> LoadResult {
    let files: Vec<SourceFile> = files
        .iter()
        .enumerate()
        .map(|(i, t)| SourceFile::new(format!("f{i}.yaml"), *t))
        .collect();
    load(&files, MatchMode::All, &event_types())
}

pub fn errors(r: &LoadResult) -> Vec<String> {
    r.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
        .collect()
}

pub fn warnings(r: &LoadResult) -> Vec<String> {
    r.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
        .collect()
}

pub fn ruleset(files: &[&str]) -> RuleSet {
    let r = load_strs(files);
    assert!(errors(&r).is_empty(), "{:?}", errors(&r));
    r.ruleset.expect("ruleset")
}

/// Names of the rules matching `ev`.
pub fn hits(rs: &RuleSet, ev: &Ev) -> Vec<String> {
    let Some(t) = rs.type_id(ev.ty) else {
        return Vec::new();
    };
    rs.matching(t, ev).into_iter().map(str::to_owned).collect()
}

/// A one-rule file with `condition`.
pub fn rule(condition: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: {condition}\n  output: o\n  priority: WARNING\n")
}

/// True when the one-rule file with `condition` matches `ev`.
pub fn matches(condition: &str, ev: &Ev) -> bool {
    let rs = ruleset(&[&rule(condition)]);
    !hits(&rs, ev).is_empty()
}

/// The agent's event types: its captured syscalls and `procexit`.
pub fn event_types() -> Vec<&'static str> {
    mamori_common::syscalls::ALL
        .iter()
        .map(|s| s.name)
        .chain(["procexit"])
        .collect()
}
