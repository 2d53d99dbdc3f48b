//! Exceptions grouped by the field they are keyed on.
//!
//! Falco rules end in long runs of `and not (proc.pname = consul and
//! proc.cmdline startswith ...)`, `and not (proc.pname = nginx and ...)`:
//! each costs a test for every event that gets that far, and an event
//! that matches the rule runs them all. Siblings of an `and` that are
//! negated conjunctions guarded by an equality (or `in`) on the same
//! plain field become one [`Except`]: the field is read once, its value
//! looked up, and only the exceptions written for that value are
//! evaluated.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::{
    compile::{ByteMap, Matcher, Node, StrMatch, Test},
    value::Value,
};

/// `not (f = v1 and b1) and not (f = v2 and b2) ...`, by the value of `f`.
#[derive(Debug)]
pub struct Except {
    pub slot: u16,
    /// For each value of the field, the exceptions (indices into `bodies`)
    /// that apply.
    cases: ByteMap<Vec<u32>>,
    /// What else each exception requires (`Const(true)`: nothing).
    pub bodies: Vec<Node>,
}

impl Except {
    /// The exceptions that apply to `v` (any of its values), in order.
    pub fn cases_for(&self, v: &Value) -> Vec<u32> {
        let mut out = Vec::new();
        self.collect(v, &mut out);
        out
    }

    fn collect(&self, v: &Value, out: &mut Vec<u32>) {
        let rendered;
        let b: &[u8] = match v {
            Value::Many(vs) => return vs.iter().for_each(|x| self.collect(x, out)),
            Value::Str(s) => s,
            other => {
                rendered = other.render();
                rendered.as_bytes()
            }
        };
        if let Some(ix) = self.cases.get(b) {
            out.extend(ix);
        }
    }
}

/// The field and values a test requires: `f = v` or `f in (...)` on a
/// field without transformers.
fn guard(n: &Node) -> Option<(u16, Vec<&[u8]>)> {
    let Node::Test(t) = n else { return None };
    let Test {
        lhs,
        matcher,
        negate: false,
        ..
    } = t.as_ref()
    else {
        return None;
    };
    if !lhs.transforms.is_empty() {
        return None;
    }
    let values = match matcher {
        Matcher::Str(StrMatch::Eq(v)) => vec![v.as_ref()],
        Matcher::Str(StrMatch::In(set)) => set.keys().collect(),
        _ => return None,
    };
    Some((lhs.slot, values))
}

/// The guards a negated child offers: its own test, or any test of its
/// conjunction.
fn guards(n: &Node) -> Vec<(usize, u16)> {
    match n {
        Node::Not(inner) => match inner.as_ref() {
            Node::And(v) => v
                .iter()
                .enumerate()
                .filter_map(|(i, c)| guard(c).map(|(slot, _)| (i, slot)))
                .collect(),
            other => guard(other).map(|(s, _)| vec![(0, s)]).unwrap_or_default(),
        },
        _ => Vec::new(),
    }
}

/// Replaces the negated children of an `and` that share a guard field
/// (two or more) with one [`Except`] per field.
pub fn group(nodes: Vec<Node>) -> Vec<Node> {
    // How many children each field could guard.
    let mut counts: HashMap<u16, usize> = HashMap::default();
    for n in &nodes {
        let slots: HashSet<u16> = guards(n).into_iter().map(|(_, s)| s).collect();
        for s in slots {
            *counts.entry(s).or_default() += 1;
        }
    }
    // Each child goes with its most shared field.
    let pick = |n: &Node| {
        guards(n)
            .into_iter()
            .filter(|(_, s)| counts[s] >= 2)
            .max_by_key(|(_, s)| counts[s])
    };
    let mut out = Vec::new();
    let mut groups: Vec<Except> = Vec::new();
    for n in nodes {
        let Some((at, slot)) = pick(&n) else {
            out.push(n);
            continue;
        };
        let Node::Not(inner) = n else {
            unreachable!("guards come from negations")
        };
        let (values, body) = match *inner {
            Node::And(children) => {
                let mut children = children.into_vec();
                let g = children.remove(at);
                let values = owned_values(&g);
                let body = match children.len() {
                    0 => Node::Const(true),
                    1 => children.remove(0),
                    _ => Node::And(children.into_boxed_slice()),
                };
                (values, body)
            }
            test => (owned_values(&test), Node::Const(true)),
        };
        let i = match groups.iter().position(|g| g.slot == slot) {
            Some(i) => i,
            None => {
                groups.push(Except {
                    slot,
                    cases: ByteMap::default(),
                    bodies: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        let body_ix = g.bodies.len() as u32;
        g.bodies.push(body);
        for v in values {
            g.cases.get_or_default(v).push(body_ix);
        }
    }
    out.extend(groups.into_iter().map(|g| Node::Except(Box::new(g))));
    out
}

fn owned_values(n: &Node) -> Vec<Box<[u8]>> {
    guard(n)
        .map(|(_, vs)| vs.into_iter().map(Box::from).collect())
        .unwrap_or_default()
}
