//! What an open must look like for some enabled rule to match it: a
//! condition the kernel can test before it builds a record, derived from
//! the rules themselves (after macros, lists and exceptions).
//!
//! Invariant: it over-approximates. Every open some rule matches satisfies
//! it; the kernel may drop an open that does not. Only what the kernel can
//! test cheaply and exactly as the engine sees it is kept: the result
//! (success), the access mode and a few open flags from the arguments,
//! whether the path as passed holds "../" (`fd.nameraw`), and the last two
//! components of the opened file's path (`fd.filename` and the last
//! component of `fd.directory`). Every other test counts as true, and so
//! does any negation: exceptions never narrow it.
//!
//! The shape is a disjunction of [`Term`]s per open syscall; a term is a
//! conjunction. Too many terms are merged into their least upper bound,
//! which is still an over-approximation.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    check::{CExpr, CRhs, Cmp, Typed},
    fields::{Field, FieldArg},
    syntax::Op,
};

/// The syscalls the prefilter covers.
pub const OPEN_TYPES: [&str; 4] = ["open", "openat", "openat2", "creat"];

/// Allowed `flags & O_ACCMODE` values, one bit each (0 read-only, 1
/// write-only, 2 read-write, 3 neither).
pub const ACCESS_ALL: u8 = 0b1111;
const ACCESS_READ: u8 = 0b0101;
const ACCESS_WRITE: u8 = 0b0110;

/// Open flags a term may require, by the name `evt.arg.flags` renders.
pub const FLAG_NAMES: [(&str, u32); 4] = [
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
];

/// Terms kept per syscall before they are merged.
pub const MAX_TERMS: usize = 16;

/// A set of names: exact names, and suffixes a name may end with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub exact: BTreeSet<Vec<u8>>,
    pub suffix: BTreeSet<Vec<u8>>,
}

impl Names {
    fn exact(v: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self {
            exact: v.into_iter().collect(),
            suffix: BTreeSet::new(),
        }
    }

    pub fn matches(&self, name: &[u8]) -> bool {
        self.exact.contains(name) || self.suffix.iter().any(|s| name.ends_with(s))
    }

    fn union(mut self, other: Names) -> Names {
        self.exact.extend(other.exact);
        self.suffix.extend(other.suffix);
        self
    }

    /// Names in both (exact: a name is in both when each side matches it;
    /// a name ends with two suffixes only when one ends with the other).
    fn intersect(&self, other: &Names) -> Names {
        let mut exact: BTreeSet<Vec<u8>> = self
            .exact
            .iter()
            .filter(|x| other.matches(x))
            .cloned()
            .collect();
        exact.extend(other.exact.iter().filter(|x| self.matches(x)).cloned());
        let mut suffix = BTreeSet::new();
        for a in &self.suffix {
            for b in &other.suffix {
                if a.ends_with(b) {
                    suffix.insert(a.clone());
                } else if b.ends_with(a) {
                    suffix.insert(b.clone());
                }
            }
        }
        Names { exact, suffix }
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffix.is_empty()
    }
}

/// One conjunction: every constraint must hold. `None` means unconstrained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// The open must have succeeded (`ret >= 0`).
    pub success: bool,
    /// Allowed access modes (bits of [`ACCESS_ALL`]).
    pub access: u8,
    /// Open flags that must all be set.
    pub flags: u32,
    /// The path as passed must contain "../".
    pub dotdot: bool,
    /// The last path component (`fd.filename`).
    pub name: Option<Names>,
    /// The component before it (the last one of `fd.directory`).
    pub dir: Option<BTreeSet<Vec<u8>>>,
}

impl Term {
    pub const ANY: Term = Term {
        success: false,
        access: ACCESS_ALL,
        flags: 0,
        dotdot: false,
        name: None,
        dir: None,
    };

    /// Both terms at once; `None` when no open can satisfy both.
    fn and(&self, o: &Term) -> Option<Term> {
        let access = self.access & o.access;
        let name = match (&self.name, &o.name) {
            (Some(a), Some(b)) => Some(a.intersect(b)),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let dir = match (&self.dir, &o.dir) {
            (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        if access == 0
            || name.as_ref().is_some_and(Names::is_empty)
            || dir.as_ref().is_some_and(BTreeSet::is_empty)
        {
            return None;
        }
        Some(Term {
            success: self.success || o.success,
            access,
            flags: self.flags | o.flags,
            dotdot: self.dotdot || o.dotdot,
            name,
            dir,
        })
    }

    /// How much a term admits, roughly: an unnamed file dominates, then
    /// an unnamed directory, the access modes, the names' count.
    fn width(&self) -> u64 {
        let names = self.name.as_ref().map_or(1 << 40, |n| {
            n.exact.len() as u64 + 16 * n.suffix.len() as u64
        });
        let dirs = self.dir.as_ref().map_or(1 << 30, |d| d.len() as u64);
        let access = u64::from(self.access.count_ones()) << 20;
        let loose =
            u64::from(!self.success) + u64::from(self.flags == 0) + 4 * u64::from(!self.dotdot);
        // A name or directory constraint alone narrows; both narrow more.
        names.min(dirs) * 4 + names.max(dirs) / 1024 + access + (loose << 10)
    }

    /// The least term that both imply.
    fn lub(&self, o: &Term) -> Term {
        Term {
            success: self.success && o.success,
            access: self.access | o.access,
            flags: self.flags & o.flags,
            dotdot: self.dotdot && o.dotdot,
            name: match (&self.name, &o.name) {
                (Some(a), Some(b)) => Some(a.clone().union(b.clone())),
                _ => None,
            },
            dir: match (&self.dir, &o.dir) {
                (Some(a), Some(b)) => Some(a.union(b).cloned().collect()),
                _ => None,
            },
        }
    }

    /// Whether an open with these facts satisfies the term (the reference
    /// the kernel's test must agree with).
    pub fn admits(&self, open: &OpenFacts) -> bool {
        if self.success && open.ret < 0 {
            return false;
        }
        if let Some(flags) = open.flags
            && (self.access & (1 << (flags & 3)) == 0 || flags & self.flags != self.flags)
        {
            return false;
        }
        if self.dotdot
            && open
                .raw
                .as_deref()
                .is_some_and(|r| !r.windows(3).any(|w| w == b"../"))
        {
            return false;
        }
        // A failed open has no file: names cannot be tested. An unknown
        // name admits: the kernel could not read it.
        if open.ret < 0 {
            return true;
        }
        let name_ok = match (&self.name, &open.name) {
            (Some(n), Some(x)) => n.matches(x),
            _ => true,
        };
        let dir_ok = match (&self.dir, &open.dir) {
            (Some(d), Parent::Named(x)) => d.contains(x),
            (Some(_), Parent::Root) => false,
            _ => true,
        };
        name_ok && dir_ok
    }

    /// Whether only the result, the name and the directory decide this
    /// term (a guard of such terms alone can skip a rule).
    pub(crate) fn decided_by_path(&self) -> bool {
        self.success || self.name.is_some() || self.dir.is_some()
    }
}

/// The terms one rule's condition, specialised for open syscall `ty`,
/// implies, when every one of them constrains the result, the name or the
/// directory (what [`crate::guard::Guards`] tests): the rule can then be
/// skipped for an event no term admits, before its condition is
/// evaluated. `None` when some term does not (the rule is always
/// evaluated).
pub fn rule_guard(ty: &str, cond: &CExpr) -> Option<Vec<Term>> {
    if !OPEN_TYPES.contains(&ty) {
        return None;
    }
    let mut terms = dnf(cond, ty);
    bound(&mut terms);
    terms.iter().all(Term::decided_by_path).then_some(terms)
}

/// Whether a condition, specialised for syscall `ty`, may hold for a call
/// that failed: false only when every way it can hold tests the result for
/// success (`evt.res = SUCCESS`, `evt.rawres >= 0`...). The kernel drops
/// the failed calls of a syscall no rule matches this way.
pub fn admits_failure(ty: &str, cond: &CExpr) -> bool {
    dnf(cond, ty).iter().any(|t| !t.success)
}

/// What the kernel knows of an open when it decides.
#[derive(Clone, Debug, Default)]
pub struct OpenFacts {
    pub ret: i64,
    /// The open flags; `None` when not known (openat2's are in user memory).
    pub flags: Option<u32>,
    /// The path as passed; `None` when it could not be read whole.
    pub raw: Option<Vec<u8>>,
    /// Last component of the opened file's path; `None` when unknown.
    pub name: Option<Vec<u8>>,
    /// The component before it.
    pub dir: Parent,
}

/// The path component before the last one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Parent {
    /// Not read (no file, or the read failed).
    #[default]
    Unknown,
    /// The file sits at the root: `fd.directory` is "/".
    Root,
    Named(Vec<u8>),
}

/// The prefilter of a ruleset: for each open syscall some rule looks at,
/// the terms one of which every matching open satisfies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenPrefilter {
    pub types: BTreeMap<&'static str, Vec<Term>>,
}

impl OpenPrefilter {
    /// Adds the condition of one rule, specialised for `ty`.
    pub fn add(&mut self, ty: &'static str, cond: &CExpr) {
        if !OPEN_TYPES.contains(&ty) {
            return;
        }
        let terms = self.types.entry(ty).or_default();
        terms.extend(dnf(cond, ty));
        bound(terms);
    }

    /// Whether an open of type `ty` with these facts may match some rule.
    pub fn admits(&self, ty: &str, open: &OpenFacts) -> bool {
        self.types
            .get(ty)
            .is_none_or(|terms| terms.iter().any(|t| t.admits(open)))
    }
}

/// Merges terms into their least upper bound until at most [`MAX_TERMS`]
/// remain; identical terms are kept once.
fn bound(terms: &mut Vec<Term>) {
    let mut unique: Vec<Term> = Vec::with_capacity(terms.len());
    for t in terms.drain(..) {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    *terms = unique;
    while terms.len() > MAX_TERMS {
        // Merge the pair whose bound admits least: merging blindly (the
        // last two) can join a term that names only files with one that
        // names only directories, which then names neither and admits
        // every open.
        let mut best: Option<(u64, usize, usize)> = None;
        for i in 0..terms.len() {
            for j in i + 1..terms.len() {
                let w = terms[i].lub(&terms[j]).width();
                if best.is_none_or(|(bw, _, _)| w < bw) {
                    best = Some((w, i, j));
                }
            }
        }
        let Some((_, i, j)) = best else { break };
        let b = terms.swap_remove(j);
        terms[i] = terms[i].lub(&b);
    }
}

/// The condition as a disjunction of terms (over-approximated).
fn dnf(e: &CExpr, ty: &str) -> Vec<Term> {
    match e {
        CExpr::Const(true) => vec![Term::ANY],
        CExpr::Const(false) => Vec::new(),
        // A negation may hold for any open: exceptions never narrow.
        CExpr::Not(_) => vec![Term::ANY],
        CExpr::Or(v) => {
            let mut out = Vec::new();
            for x in v {
                out.extend(dnf(x, ty));
                bound(&mut out);
            }
            out
        }
        CExpr::And(v) => {
            let mut acc = vec![Term::ANY];
            for x in v {
                let rhs = dnf(x, ty);
                let mut next = Vec::new();
                for a in &acc {
                    for b in &rhs {
                        next.extend(a.and(b));
                    }
                }
                bound(&mut next);
                acc = next;
            }
            acc
        }
        CExpr::Cmp(c) => atom(c, ty).map_or_else(|| vec![Term::ANY], |t| vec![t]),
    }
}

/// The term one comparison implies, if it implies anything, on an event
/// of type `ty`.
fn atom(c: &Cmp, ty: &str) -> Option<Term> {
    if !c.lhs.transforms.is_empty() || c.modifier.is_some() {
        return None;
    }
    let CRhs::Values(values) = &c.rhs else {
        return None;
    };
    let strs = || -> Option<Vec<&[u8]>> {
        values
            .iter()
            .map(|v| match v {
                Typed::Str(s) => Some(s.as_slice()),
                _ => None,
            })
            .collect()
    };
    let one_of = matches!(c.op, Op::Eq | Op::In);
    let mut t = Term::ANY;
    match c.lhs.field {
        // On an open, fd.num is the result too (elsewhere, an argument).
        Field::FdNum if !OPEN_TYPES.contains(&ty) => return None,
        Field::EvtRawRes | Field::FdNum => {
            let ints: Option<Vec<i64>> = values
                .iter()
                .map(|v| match v {
                    Typed::Int(i) => Some(*i),
                    _ => None,
                })
                .collect();
            let ints = ints?;
            t.success = match c.op {
                Op::Eq | Op::In => ints.iter().all(|i| *i >= 0),
                Op::Ge => ints.iter().all(|i| *i >= 0),
                Op::Gt => ints.iter().all(|i| *i >= -1),
                _ => false,
            };
        }
        Field::EvtRes if one_of => t.success = strs()?.iter().all(|s| *s == b"SUCCESS"),
        Field::EvtIsOpenRead | Field::EvtIsOpenWrite | Field::EvtIsOpenCreate if c.op == Op::Eq => {
            let [Typed::Bool(want)] = values.as_slice() else {
                return None;
            };
            match (c.lhs.field, want) {
                (Field::EvtIsOpenRead, true) => t.access = ACCESS_READ,
                (Field::EvtIsOpenRead, false) => t.access = ACCESS_ALL & !ACCESS_READ,
                (Field::EvtIsOpenWrite, true) => t.access = ACCESS_WRITE,
                (Field::EvtIsOpenWrite, false) => t.access = ACCESS_ALL & !ACCESS_WRITE,
                (Field::EvtIsOpenCreate, true) => t.flags = 0o100,
                _ => return None,
            }
        }
        Field::EvtArg if c.op == Op::Contains => {
            let FieldArg::Key(k) = &c.lhs.arg else {
                return None;
            };
            let [Typed::Str(s)] = values.as_slice() else {
                return None;
            };
            if k != "flags" {
                return None;
            }
            // `contains` on the rendered flags ("O_WRONLY|O_CREAT").
            match s.as_slice() {
                b"O_RDONLY" => t.access = 0b0001,
                b"O_WRONLY" => t.access = 0b0010,
                b"O_RDWR" => t.access = 0b0100,
                other => {
                    let (_, bit) = FLAG_NAMES.iter().find(|(n, _)| n.as_bytes() == other)?;
                    t.flags = *bit;
                }
            }
        }
        Field::FdName => match c.op {
            Op::Eq | Op::In => {
                let mut names = Names::default();
                let mut dirs = BTreeSet::new();
                let mut dir_known = true;
                for s in strs()? {
                    let (name, dir) = split_path(s)?;
                    names.exact.insert(name.to_vec());
                    match dir {
                        Some(d) => {
                            dirs.insert(d.to_vec());
                        }
                        None => dir_known = false,
                    }
                }
                t.name = Some(names);
                t.dir = dir_known.then_some(dirs);
            }
            Op::EndsWith => {
                let [s] = strs()?[..] else { return None };
                ends_with(&mut t, s)?;
            }
            Op::Glob => {
                let [p] = strs()?[..] else { return None };
                // The literal tail after the last wildcard ends every match.
                let start = p
                    .iter()
                    .rposition(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
                    .map_or(0, |i| i + 1);
                let tail = &p[start..];
                if start == 0 {
                    // No wildcard: the pattern is the whole path.
                    let (name, dir) = split_path(tail)?;
                    t.name = Some(Names::exact([name.to_vec()]));
                    t.dir = dir.map(|d| BTreeSet::from([d.to_vec()]));
                } else {
                    ends_with(&mut t, tail)?;
                }
            }
            _ => return None,
        },
        Field::FdNameraw => {
            let [Typed::Str(p)] = values.as_slice() else {
                return None;
            };
            // A literal run that holds "../" must be in the raw path.
            let literal_dotdot = match c.op {
                Op::Contains => p.windows(3).any(|w| w == b"../"),
                Op::Glob => p
                    .split(|b| matches!(b, b'*' | b'?' | b'[' | b']' | b'\\'))
                    .any(|run| run.windows(3).any(|w| w == b"../")),
                _ => false,
            };
            if !literal_dotdot {
                return None;
            }
            t.dotdot = true;
        }
        Field::FdFilename => match c.op {
            Op::Eq | Op::In => {
                let names = strs()?;
                if names.iter().any(|n| n.is_empty() || n.contains(&b'/')) {
                    return None;
                }
                t.name = Some(Names::exact(names.iter().map(|n| n.to_vec())));
            }
            Op::EndsWith => {
                let [s] = strs()?[..] else { return None };
                if s.is_empty() || s.contains(&b'/') {
                    return None;
                }
                t.name = Some(Names {
                    exact: BTreeSet::new(),
                    suffix: BTreeSet::from([s.to_vec()]),
                });
            }
            _ => return None,
        },
        Field::FdDirectory => match c.op {
            Op::Eq | Op::In => {
                let mut dirs = BTreeSet::new();
                for d in strs()? {
                    // "/a/b" ends in "b"; "/" and relative names say nothing.
                    let (last, _) = split_path(d)?;
                    dirs.insert(last.to_vec());
                }
                t.dir = Some(dirs);
            }
            Op::EndsWith => {
                let [s] = strs()?[..] else { return None };
                // "/.ssh": the last component is exactly ".ssh".
                let last = s.strip_prefix(b"/")?;
                if last.is_empty() || last.contains(&b'/') {
                    return None;
                }
                t.dir = Some(BTreeSet::from([last.to_vec()]));
            }
            _ => return None,
        },
        _ => return None,
    }
    Some(t)
}

/// `(last component, the one before)` of an absolute path; the one before
/// is `None` when the file sits at the root. `None` for "/", relative
/// paths and paths ending in "/".
pub(crate) fn split_path(p: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    if !p.starts_with(b"/") || p.ends_with(b"/") {
        return None;
    }
    let i = p.iter().rposition(|&b| b == b'/')?;
    let name = &p[i + 1..];
    if i == 0 {
        return Some((name, None));
    }
    let j = p[..i].iter().rposition(|&b| b == b'/')?;
    Some((name, Some(&p[j + 1..i])))
}

/// What `fd.name endswith s` says: with a slash, the last component
/// exactly (and the one before, when whole); without, a suffix of it.
fn ends_with(t: &mut Term, s: &[u8]) -> Option<()> {
    if s.is_empty() || s.ends_with(b"/") {
        return None;
    }
    match s.iter().rposition(|&b| b == b'/') {
        None => {
            t.name = Some(Names {
                exact: BTreeSet::new(),
                suffix: BTreeSet::from([s.to_vec()]),
            });
        }
        Some(i) => {
            t.name = Some(Names::exact([s[i + 1..].to_vec()]));
            let before = &s[..i];
            if let Some(j) = before.iter().rposition(|&b| b == b'/') {
                let dir = &before[j + 1..];
                if !dir.is_empty() {
                    t.dir = Some(BTreeSet::from([dir.to_vec()]));
                }
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests;
