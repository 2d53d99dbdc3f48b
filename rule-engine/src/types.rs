//! Which event types a condition can match: the basis of the per-type
//! rule index. The analysis is exact for `evt.type` tests and an
//! over-approximation for everything else (any type).

use std::collections::BTreeSet;

use crate::{
    check::{CExpr, CRhs, Cmp, Typed},
    fields::Field,
    syntax::Op,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Types {
    Any,
    Only(BTreeSet<String>),
    AllBut(BTreeSet<String>),
}

impl Types {
    fn and(self, other: Types) -> Types {
        match (self, other) {
            (Types::Any, x) | (x, Types::Any) => x,
            (Types::Only(a), Types::Only(b)) => Types::Only(a.intersection(&b).cloned().collect()),
            (Types::Only(a), Types::AllBut(b)) | (Types::AllBut(b), Types::Only(a)) => {
                Types::Only(a.difference(&b).cloned().collect())
            }
            (Types::AllBut(a), Types::AllBut(b)) => Types::AllBut(a.union(&b).cloned().collect()),
        }
    }

    fn or(self, other: Types) -> Types {
        match (self, other) {
            (Types::Any, _) | (_, Types::Any) => Types::Any,
            (Types::Only(a), Types::Only(b)) => Types::Only(a.union(&b).cloned().collect()),
            (Types::Only(a), Types::AllBut(b)) | (Types::AllBut(b), Types::Only(a)) => {
                Types::AllBut(b.difference(&a).cloned().collect())
            }
            (Types::AllBut(a), Types::AllBut(b)) => {
                Types::AllBut(a.intersection(&b).cloned().collect())
            }
        }
    }

    fn not(self) -> Types {
        match self {
            Types::Any => Types::Any,
            Types::Only(s) => Types::AllBut(s),
            Types::AllBut(s) => Types::Only(s),
        }
    }

    /// True when `name` may match.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Types::Any => true,
            Types::Only(s) => s.contains(name),
            Types::AllBut(s) => !s.contains(name),
        }
    }
}

/// The `evt.type` names a `Cmp` pins, if it is a plain type test.
pub fn type_test(c: &Cmp) -> Option<(Op, Vec<&[u8]>)> {
    if c.lhs.field != Field::EvtType || !c.lhs.transforms.is_empty() || c.modifier.is_some() {
        return None;
    }
    let CRhs::Values(v) = &c.rhs else { return None };
    let names: Option<Vec<&[u8]>> = v
        .iter()
        .map(|t| match t {
            Typed::Str(s) => Some(s.as_slice()),
            _ => None,
        })
        .collect();
    match c.op {
        Op::Eq | Op::Ne | Op::In => Some((c.op, names?)),
        _ => None,
    }
}

/// `(types, exact)`: exact when the expression is true for precisely these
/// types (so its negation is the complement).
pub fn types(e: &CExpr) -> (Types, bool) {
    match e {
        CExpr::Const(true) => (Types::Any, true),
        CExpr::Const(false) => (Types::Only(BTreeSet::new()), true),
        CExpr::Cmp(c) => match type_test(c) {
            Some((op, names)) => {
                let set: BTreeSet<String> = names
                    .iter()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect();
                (
                    if op == Op::Ne {
                        Types::AllBut(set)
                    } else {
                        Types::Only(set)
                    },
                    true,
                )
            }
            None => (Types::Any, false),
        },
        CExpr::And(v) => v.iter().fold((Types::Any, true), |(t, ex), x| {
            let (u, ey) = types(x);
            (t.and(u), ex && ey)
        }),
        CExpr::Or(v) => v
            .iter()
            .fold((Types::Only(BTreeSet::new()), true), |(t, ex), x| {
                let (u, ey) = types(x);
                (t.or(u), ex && ey)
            }),
        CExpr::Not(x) => match types(x) {
            (t, true) => (t.not(), true),
            (_, false) => (Types::Any, false),
        },
    }
}

/// Replaces `evt.type` tests with their value for events of type `name`,
/// then folds constants.
pub fn specialize(e: &CExpr, name: &str) -> CExpr {
    fold(match e {
        CExpr::Cmp(c) => match type_test(c) {
            Some((op, names)) => {
                let hit = names.contains(&name.as_bytes());
                CExpr::Const(if op == Op::Ne { !hit } else { hit })
            }
            None => e.clone(),
        },
        CExpr::And(v) => CExpr::And(v.iter().map(|x| specialize(x, name)).collect()),
        CExpr::Or(v) => CExpr::Or(v.iter().map(|x| specialize(x, name)).collect()),
        CExpr::Not(x) => CExpr::Not(Box::new(specialize(x, name))),
        CExpr::Const(b) => CExpr::Const(*b),
    })
}

/// Constant folding and flattening.
pub fn fold(e: CExpr) -> CExpr {
    match e {
        CExpr::And(v) => {
            let mut out = Vec::new();
            for x in v.into_iter().map(fold) {
                match x {
                    CExpr::Const(true) => {}
                    CExpr::Const(false) => return CExpr::Const(false),
                    CExpr::And(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => CExpr::Const(true),
                1 => out.remove(0),
                _ => CExpr::And(out),
            }
        }
        CExpr::Or(v) => {
            let mut out = Vec::new();
            for x in v.into_iter().map(fold) {
                match x {
                    CExpr::Const(false) => {}
                    CExpr::Const(true) => return CExpr::Const(true),
                    CExpr::Or(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => CExpr::Const(false),
                1 => out.remove(0),
                _ => CExpr::Or(out),
            }
        }
        CExpr::Not(x) => match fold(*x) {
            CExpr::Const(b) => CExpr::Const(!b),
            CExpr::Not(inner) => *inner,
            other => CExpr::Not(Box::new(other)),
        },
        other => other,
    }
}
