//! Per-rule guards on opens: the rule engine's own use of the prefilter.
//!
//! The kernel's prefilter admits an open when some rule could match it;
//! the open then meets every rule of its type. Most open rules name their
//! files, so a guard built from each rule's own terms
//! ([`crate::prefilter::rule_guard`]) skips most of them after one look at
//! the engine's `fd.name` and `evt.rawres`, before any condition runs.
//!
//! Sound for any string, whatever produced it: each name and directory
//! constraint of a term is implied, as a property of the string, by the
//! comparisons on `fd.name`, `fd.filename` and `fd.directory` it came from,
//! and the engine derives the last two from `fd.name`. Tested against the
//! unguarded engine by the agent's prefilter property test.
//!
//! Shape: every term of a bucket (one event type) is a bit; an event's
//! admitted terms are computed once (two hash lookups and the suffixes),
//! and a rule runs when one of its terms is admitted.

use rustc_hash::FxHashMap as HashMap;

use crate::prefilter::{Term, split_path};

/// Terms one bucket can index (bits of [`Bits`]); a rule whose terms do
/// not fit runs unguarded.
const WORDS: usize = 4;

/// A set of terms.
pub type Bits = [u64; WORDS];

const NONE: Bits = [0; WORDS];
const ALL: Bits = [u64::MAX; WORDS];

/// The guards of one event type's rules.
#[derive(Debug, Default)]
pub struct Guards {
    terms: usize,
    /// Terms with no name constraint, no directory constraint.
    any_name: Bits,
    any_dir: Bits,
    /// Terms by the exact last component / the component before it.
    by_name: HashMap<Box<[u8]>, Bits>,
    by_dir: HashMap<Box<[u8]>, Bits>,
    /// Terms by a suffix the last component may end with.
    suffixes: Vec<(Box<[u8]>, Bits)>,
    /// Terms that need the call to have succeeded.
    success: Bits,
}

impl Guards {
    /// Indexes one rule's terms; returns them as bits, or `None` when they
    /// do not fit (the rule then runs unguarded).
    pub fn add(&mut self, terms: &[Term]) -> Option<Bits> {
        if self.terms + terms.len() > WORDS * 64 {
            return None;
        }
        let mut mine = NONE;
        for t in terms {
            let bit = self.terms;
            self.terms += 1;
            set(&mut mine, bit);
            if t.success {
                set(&mut self.success, bit);
            }
            match &t.name {
                None => set(&mut self.any_name, bit),
                Some(n) => {
                    for x in &n.exact {
                        set(self.by_name.entry(x.as_slice().into()).or_default(), bit);
                    }
                    for x in &n.suffix {
                        match self.suffixes.iter_mut().find(|(s, _)| **s == **x) {
                            Some((_, b)) => set(b, bit),
                            None => {
                                let mut b = NONE;
                                set(&mut b, bit);
                                self.suffixes.push((x.as_slice().into(), b));
                            }
                        }
                    }
                }
            }
            match &t.dir {
                None => set(&mut self.any_dir, bit),
                Some(d) => {
                    for x in d {
                        set(self.by_dir.entry(x.as_slice().into()).or_default(), bit);
                    }
                }
            }
        }
        Some(mine)
    }

    /// The terms an event admits: `ret` is its `evt.rawres`, `path` the
    /// engine's `fd.name` (`None`: unknown, which admits every name).
    pub fn admitted(&self, ret: i64, path: Option<&[u8]>) -> Bits {
        let mut ok = match path.and_then(split_path) {
            None => ALL,
            Some((name, dir)) => {
                let mut names = self.any_name;
                if let Some(b) = self.by_name.get(name) {
                    or(&mut names, b);
                }
                for (s, b) in &self.suffixes {
                    if name.ends_with(s) {
                        or(&mut names, b);
                    }
                }
                let mut dirs = self.any_dir;
                // At the root (`None`) no directory term holds.
                if let Some(b) = dir.and_then(|d| self.by_dir.get(d)) {
                    or(&mut dirs, b);
                }
                and(&mut names, &dirs);
                names
            }
        };
        if ret < 0 {
            for (o, s) in ok.iter_mut().zip(&self.success) {
                *o &= !s;
            }
        }
        ok
    }
}

/// Whether the sets meet.
#[inline]
pub fn meets(a: &Bits, b: &Bits) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

fn set(b: &mut Bits, bit: usize) {
    b[bit / 64] |= 1 << (bit % 64);
}

fn or(a: &mut Bits, b: &Bits) {
    for (x, y) in a.iter_mut().zip(b) {
        *x |= y;
    }
}

fn and(a: &mut Bits, b: &Bits) {
    for (x, y) in a.iter_mut().zip(b) {
        *x &= y;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::prefilter::Names;

    fn term(name: Option<Names>, dir: Option<&[&str]>, success: bool) -> Term {
        Term {
            name,
            dir: dir.map(|d| d.iter().map(|x| x.as_bytes().to_vec()).collect()),
            success,
            ..Term::ANY
        }
    }

    #[test]
    fn an_event_admits_the_terms_its_path_and_result_satisfy() {
        let exact = |n: &str| Names {
            exact: BTreeSet::from([n.as_bytes().to_vec()]),
            suffix: BTreeSet::new(),
        };
        let suffix = |n: &str| Names {
            exact: BTreeSet::new(),
            suffix: BTreeSet::from([n.as_bytes().to_vec()]),
        };
        let mut g = Guards::default();
        let shadow = g
            .add(&[term(Some(exact("shadow")), Some(&["etc"]), false)])
            .unwrap();
        let pem = g.add(&[term(Some(suffix(".pem")), None, true)]).unwrap();
        let in_ssh = g.add(&[term(None, Some(&[".ssh"]), false)]).unwrap();
        let at = |ret, p: &str| g.admitted(ret, Some(p.as_bytes()));
        assert!(meets(&shadow, &at(3, "/etc/shadow")));
        assert!(meets(&shadow, &at(-2, "/etc/shadow")), "no result needed");
        assert!(!meets(&shadow, &at(3, "/tmp/etc/shadowx")));
        assert!(
            !meets(&shadow, &at(3, "/shadow")),
            "at the root: no directory"
        );
        assert!(meets(&pem, &at(3, "/a/b/key.pem")));
        assert!(!meets(&pem, &at(-13, "/a/b/key.pem")), "needs a success");
        assert!(!meets(&pem, &at(3, "/a/b/key.pem.bak")));
        assert!(meets(&in_ssh, &at(3, "/root/.ssh/id_rsa")));
        assert!(!meets(&in_ssh, &at(3, "/root/.ssh")));
        // Unknown or relative paths admit every name.
        assert!(meets(&shadow, &g.admitted(3, None)));
        assert!(meets(&in_ssh, &at(3, "id_rsa")));
        assert!(
            !meets(&pem, &g.admitted(-1, None)),
            "the result still counts"
        );
    }

    #[test]
    fn rules_whose_terms_do_not_fit_run_unguarded() {
        let mut g = Guards::default();
        let many = vec![Term::ANY; WORDS * 64];
        assert!(g.add(&many).is_some());
        assert!(g.add(&[Term::ANY]).is_none());
    }
}
