//! Expected alerts of trigger tests: each trigger names the rule that must
//! fire, how to find its alert (the process, or a field when the process
//! is a grandchild), and the fields that must hold. `check` also fails when
//! any other rule fired for a trigger's process.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::agent::Agent;

/// How a trigger's alert is found among the agent's alerts.
pub enum Who {
    /// `proc.pid` is this pid.
    Pid(u32),
    /// An output field has this value (the process is not ours to know).
    Field(&'static str, String),
}

struct Expected {
    who: Who,
    rule: &'static str,
    fields: Vec<(&'static str, String)>,
}

#[derive(Default)]
pub struct Expectations {
    list: Vec<Expected>,
}

impl Expectations {
    /// The process `pid` must raise `rule` with these field values.
    pub fn pid(&mut self, pid: u32, rule: &'static str, fields: Vec<(&'static str, String)>) {
        self.push(Who::Pid(pid), rule, fields);
    }

    pub fn push(&mut self, who: Who, rule: &'static str, fields: Vec<(&'static str, String)>) {
        self.list.push(Expected { who, rule, fields });
    }

    /// Rules expected, for counting coverage.
    pub fn rules(&self) -> BTreeSet<&'static str> {
        self.list.iter().map(|e| e.rule).collect()
    }

    /// Waits for every expected alert; returns what went wrong, one line
    /// per problem.
    pub fn check(&self, agent: &Agent) -> Vec<String> {
        let mut failures = Vec::new();
        // (pid, rule) of every alert found.
        let mut found: Vec<(u64, &str)> = Vec::new();
        for e in &self.list {
            let alert = match &e.who {
                Who::Pid(pid) => agent.wait_alert(e.rule, *pid),
                // Several processes of one container may raise the rule
                // (the runtime's own set-up among them): the alert wanted
                // is the one with the act's own field values.
                Who::Field(f, v) => agent.wait_alert_where(e.rule, |o| {
                    text(&o[f]).as_deref() == Some(v)
                        && e.fields
                            .iter()
                            .all(|(k, w)| text(&o[k]).as_deref() == Some(w.as_str()))
                }),
            };
            let Some(a) = alert else {
                failures.push(format!(
                    "no `{}` alert ({}) with {:?}",
                    e.rule,
                    describe(&e.who),
                    e.fields
                ));
                continue;
            };
            for (f, want) in &e.fields {
                if text(&a["output_fields"][f]).as_deref() != Some(want.as_str()) {
                    failures.push(format!(
                        "`{}`: {f} = {} (want {want})",
                        e.rule, a["output_fields"][f]
                    ));
                }
            }
            if !has_technique(&a) {
                failures.push(format!("`{}` has no ATT&CK technique tag", e.rule));
            }
            match a["output_fields"]["proc.pid"].as_u64() {
                Some(pid) => found.push((pid, e.rule)),
                None => failures.push(format!("`{}`: output has no proc.pid", e.rule)),
            }
        }
        let pids: BTreeSet<u64> = found.iter().map(|(p, _)| *p).collect();
        for a in agent.alerts() {
            let Some(pid) = a["output_fields"]["proc.pid"].as_u64() else {
                continue;
            };
            if pids.contains(&pid) && !found.iter().any(|(p, r)| *p == pid && a["rule"] == *r) {
                failures.push(format!(
                    "unexpected `{}` for pid {pid}: {}",
                    a["rule"], a["output"]
                ));
            }
        }
        failures
    }
}

fn describe(who: &Who) -> String {
    match who {
        Who::Pid(p) => format!("pid {p}"),
        Who::Field(f, v) => format!("{f} = {v}"),
    }
}

/// A field's value as text (numbers too).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn has_technique(a: &Value) -> bool {
    a["tags"].as_array().is_some_and(|tags| {
        tags.iter().filter_map(Value::as_str).any(|t| {
            t.len() > 1 && t.starts_with('T') && t[1..2].chars().all(|c| c.is_ascii_digit())
        })
    })
}
