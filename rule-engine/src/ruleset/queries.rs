//! What the caller asks a compiled ruleset about its rules' needs: which
//! fields they read, which values they compare a field with whole (the
//! files the agent watches by identity, the names it resolves).

use std::collections::BTreeSet;

use super::RuleSet;
use crate::{
    compile::{self, Node},
    fields::Field,
};

impl RuleSet {
    /// Whether an enabled rule reads `field` (the agent captures some
    /// costly values, such as socket data for `evt.buffer`, only then).
    pub fn reads(&self, field: Field) -> bool {
        self.fields_read.contains(&field)
    }

    /// Absolute paths that enabled rules compare `field` with whole (`=`,
    /// `in`, no transformer): the files whose identity (device, inode) the
    /// agent watches, so that another name for the same file (a hard link,
    /// a bind mount) matches as the file's own name does.
    pub fn compared_paths(&self, field: Field) -> BTreeSet<Vec<u8>> {
        let mut out = self.compared_whole(field, false);
        out.retain(|b| b.starts_with(b"/") && b.len() > 1);
        out
    }

    /// The strings enabled rules compare `field` with whole (`=`, `!=`,
    /// `in`, no transformer): for `fd.sip.name`, the domain names the
    /// agent resolves.
    pub fn compared_strings(&self, field: Field) -> BTreeSet<Vec<u8>> {
        self.compared_whole(field, true)
    }

    fn compared_whole(&self, field: Field, negated: bool) -> BTreeSet<Vec<u8>> {
        fn walk(n: &Node, visit: &mut impl FnMut(&compile::Test)) {
            match n {
                Node::And(v) | Node::Or(v) => v.iter().for_each(|x| walk(x, visit)),
                Node::Not(x) => walk(x, visit),
                Node::Test(t) => visit(t),
                Node::Const(_) | Node::Except(_) => {}
            }
        }
        let mut out = BTreeSet::new();
        let mut visit = |t: &compile::Test| {
            let is_field = self.slots.get(t.lhs.slot as usize).map(|s| s.0) == Some(field);
            if !is_field || !t.lhs.transforms.is_empty() || (t.negate && !negated) {
                return;
            }
            let mut add = |b: &[u8]| {
                out.insert(b.to_vec());
            };
            match &t.matcher {
                compile::Matcher::Str(compile::StrMatch::Eq(b)) => add(b),
                compile::Matcher::Str(compile::StrMatch::In(set)) => set.keys().for_each(add),
                _ => {}
            }
        };
        for e in self.buckets.iter().flatten() {
            walk(&e.node, &mut visit);
        }
        out
    }
}
