//! Detection: update the state with an event, evaluate the rules on it,
//! turn hits into alerts. Owns the state; reads the ruleset.

pub mod args;
pub mod containerview;
pub mod context;
pub mod extract;
pub mod fdview;
pub mod fsview;
pub mod names;

use std::sync::Arc;

use mamori_rules::{OutputValue, RuleSet};

use crate::{
    alert::{Alert, FieldValue, Source},
    event::Event,
    state::{State, fds::Fds},
};

pub use extract::View;

pub struct Detector {
    rules: Arc<RuleSet>,
    /// The rules' type id of each syscall, by number (a string hash per
    /// event otherwise).
    syscall_types: Vec<Option<u16>>,
    pub state: State,
    hostname: String,
    evt_num: u64,
}

impl Detector {
    pub fn new(rules: Arc<RuleSet>, state: State, hostname: String) -> Self {
        Self {
            syscall_types: syscall_types(&rules),
            rules,
            state,
            hostname,
            evt_num: 0,
        }
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Swaps in a new ruleset (hot reload); state is kept.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        self.syscall_types = syscall_types(&rules);
        self.rules = rules;
    }

    fn type_id(&self, ty: &crate::event::EventType) -> Option<u16> {
        match ty {
            crate::event::EventType::Syscall(s) => {
                self.syscall_types.get(s.nr as usize).copied().flatten()
            }
            other => self.rules.type_id(other.name()),
        }
    }

    /// Applies `ev` to the state and evaluates it; `alert` receives each hit.
    pub fn process(&mut self, ev: &Event, mut alert: impl FnMut(Alert)) {
        self.evt_num += 1;
        self.state.apply_before(ev);
        let rules = &self.rules;
        let mut hits = Vec::new();
        let mut context = Vec::new();
        let Some(ty) = self.type_id(&ev.ty) else {
            self.state.apply_after(ev);
            return;
        };
        let view = View::new(ev, &self.state, &self.hostname, self.evt_num);
        rules.evaluate(ty, &view, |rule, out| hits.push((rule, out)));
        if !hits.is_empty() {
            context = context::collect(&view);
        }
        let seen = Fds::changed_by(ev).then(|| view.fd_entry());
        self.state.apply_after_seen(ev, seen);
        if hits.is_empty() {
            return;
        }
        // Only events that alert are kept (outputs map them to ECS).
        let ev = Arc::new(ev.clone());
        let last = hits.len() - 1;
        for (i, (rule, out)) in hits.into_iter().enumerate() {
            // One hit in the default match mode: the context moves.
            let context = if i == last {
                std::mem::take(&mut context)
            } else {
                context.clone()
            };
            alert(Alert {
                time_ns: ev.time_ns,
                rule: rule.name.clone(),
                description: rule.desc.clone(),
                ruleset: ruleset_name(&rule.file),
                priority: rule.priority,
                source: Source::Syscall,
                tags: rule.tags.clone(),
                message: out.message,
                output_fields: out
                    .fields
                    .into_iter()
                    .map(|(k, v)| (k, field_value(v)))
                    .collect(),
                hostname: self.hostname.clone(),
                event: Some(ev.clone()),
                context,
            });
        }
    }
}

impl Detector {
    /// The rules `ev` matches against the state as it is, without
    /// applying the event or rendering outputs: the rule engine's share
    /// of [`Detector::process`] (benchmarks).
    pub fn matching(&self, ev: &Event) -> Vec<&str> {
        let Some(ty) = self.type_id(&ev.ty) else {
            return Vec::new();
        };
        let view = View::new(ev, &self.state, &self.hostname, self.evt_num);
        self.rules.matching(ty, &view)
    }

    /// [`Detector::matching`] with every rule's condition evaluated, its
    /// guard or not: the reference the guards are tested against.
    #[cfg(test)]
    pub fn matching_unguarded(&self, ev: &Event) -> Vec<&str> {
        let Some(ty) = self.type_id(&ev.ty) else {
            return Vec::new();
        };
        let view = View::new(ev, &self.state, &self.hostname, self.evt_num);
        self.rules.matching_unguarded(ty, &view)
    }

    /// Applies `ev` to the state like [`Detector::process`], but instead
    /// of alerting explains, part by part, why `rule` does or does not
    /// match it, when `select` picks it.
    pub fn explain(
        &mut self,
        ev: &Event,
        rule: &str,
        select: impl FnOnce(&View<'_>) -> bool,
    ) -> Option<Result<mamori_rules::explain::Explained, String>> {
        self.evt_num += 1;
        self.state.apply_before(ev);
        let view = View::new(ev, &self.state, &self.hostname, self.evt_num);
        let out = select(&view).then(|| self.rules.explain(rule, &view));
        self.state.apply_after(ev);
        out
    }
}

/// The type id of each captured syscall, indexed by number.
fn syscall_types(rules: &RuleSet) -> Vec<Option<u16>> {
    let all = mamori_common::syscalls::ALL;
    let max = all.iter().map(|s| s.nr).max().unwrap_or(0) as usize;
    let mut v = vec![None; max + 1];
    for s in all {
        v[s.nr as usize] = rules.type_id(s.name);
    }
    v
}

/// The file name of a rule's file, without directories.
fn ruleset_name(file: &str) -> String {
    file.rsplit('/').next().unwrap_or(file).to_owned()
}

fn field_value(v: OutputValue) -> FieldValue {
    match v {
        OutputValue::Missing => FieldValue::Missing,
        OutputValue::Str(s) => FieldValue::Str(s),
        OutputValue::Int(i) => FieldValue::Int(i),
        OutputValue::Bool(b) => FieldValue::Bool(b),
    }
}
