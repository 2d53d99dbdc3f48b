//! Detection: evaluate the rules on an event seen with the state, turn
//! hits into alerts. Reads the state (downstream of it: the caller owns
//! it and applies each event around the evaluation, see
//! [`Detector::process`]) and the ruleset.

pub mod containerview;
pub mod context;
pub mod extract;
pub mod fdview;
pub mod fsview;

use std::sync::Arc;

use mamori_rules::{OutputValue, RuleSet};

use crate::{
    alert::{Alert, FieldValue, Source},
    event::Event,
    state::State,
};

pub use extract::View;

pub struct Detector {
    rules: Arc<RuleSet>,
    /// The rules' type id of each syscall, by number (a string hash per
    /// event otherwise).
    syscall_types: Vec<Option<u16>>,
    hostname: String,
    evt_num: u64,
}

impl Detector {
    pub fn new(rules: Arc<RuleSet>, hostname: String) -> Self {
        Self {
            syscall_types: syscall_types(&rules),
            rules,
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

    /// One event through state and rules, in the order the state's
    /// invariant needs: applied before (an exec is evaluated with its new
    /// image), evaluated, applied after (an exit is evaluated with the
    /// process still known). `alert` receives each hit.
    pub fn process(&mut self, state: &mut State, ev: &Event, alert: impl FnMut(Alert)) {
        state.apply_before(ev);
        self.evaluate(state, ev, alert);
        state.apply_after(ev);
    }

    /// Evaluates `ev` against the state as it is; `alert` receives each hit.
    pub fn evaluate(&mut self, state: &State, ev: &Event, mut alert: impl FnMut(Alert)) {
        self.evt_num += 1;
        let rules = &self.rules;
        let mut hits = Vec::new();
        let Some(ty) = self.type_id(&ev.ty) else {
            return;
        };
        let view = View::new(ev, state, &self.hostname, self.evt_num);
        rules.evaluate(ty, &view, |rule, out| hits.push((rule, out)));
        if hits.is_empty() {
            return;
        }
        let mut context = context::collect(&view);
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
    pub fn matching(&self, state: &State, ev: &Event) -> Vec<&str> {
        let Some(ty) = self.type_id(&ev.ty) else {
            return Vec::new();
        };
        let view = View::new(ev, state, &self.hostname, self.evt_num);
        self.rules.matching(ty, &view)
    }

    /// [`Detector::matching`] with every rule's condition evaluated, its
    /// guard or not: the reference the guards are tested against.
    #[cfg(test)]
    pub fn matching_unguarded(&self, state: &State, ev: &Event) -> Vec<&str> {
        let Some(ty) = self.type_id(&ev.ty) else {
            return Vec::new();
        };
        let view = View::new(ev, state, &self.hostname, self.evt_num);
        self.rules.matching_unguarded(ty, &view)
    }

    /// Applies `ev` to the state like [`Detector::process`], but instead
    /// of alerting explains, part by part, why `rule` does or does not
    /// match it, when `select` picks it.
    pub fn explain(
        &mut self,
        state: &mut State,
        ev: &Event,
        rule: &str,
        select: impl FnOnce(&View<'_>) -> bool,
    ) -> Option<Result<mamori_rules::explain::Explained, String>> {
        self.evt_num += 1;
        state.apply_before(ev);
        let view = View::new(ev, state, &self.hostname, self.evt_num);
        let out = select(&view).then(|| self.rules.explain(rule, &view));
        state.apply_after(ev);
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
