//! The rules' open prefilter (`mamori_rules::prefilter`) in the form the
//! kernel tests ([`KernelFilter`]: `mamori_common::OpenFilter` and its name
//! map), and the reference of that test: [`admits`] computes exactly what
//! `agent-ebpf/src/prefilter.rs` computes, so the property tests that hold
//! for it hold for the kernel.
//!
//! Encoding never narrows: a constraint the kernel cannot hold (a name
//! longer than a key, a fifth suffix length, more terms than bits) is
//! dropped from its term, which then admits more.

use std::collections::{BTreeMap, BTreeSet};

use mamori_common::{
    NameKey, NameKind, OpenFilter, PREFILTER_FLAGS, PREFILTER_SUFFIXES, PREFILTER_TERMS,
};
use mamori_rules::prefilter::{FLAG_NAMES, OpenFacts, OpenPrefilter, Parent, Term};

use crate::capture::KernelFilter;

/// The kernel form of `p`, for the open syscalls it covers (the others
/// stay unfiltered).
pub fn encode(p: &OpenPrefilter) -> KernelFilter {
    let mut terms: Vec<Term> = Vec::new();
    let mut f = OpenFilter::default();
    let mut per_slot: [Vec<usize>; 4] = Default::default();
    for (ty, list) in &p.types {
        let Some(slot) = slot_of(ty) else { continue };
        for t in list {
            let i = match terms.iter().position(|x| x == t) {
                Some(i) => i,
                None => {
                    terms.push(t.clone());
                    terms.len() - 1
                }
            };
            per_slot[slot].push(i);
        }
        f.active |= 1 << slot;
    }
    if terms.len() > PREFILTER_TERMS {
        // More than the kernel has bits: no filter rather than a wrong one.
        return KernelFilter::none();
    }
    for (slot, idx) in per_slot.iter().enumerate() {
        for i in idx {
            f.type_terms[slot] |= 1 << i;
        }
    }
    // Suffix lengths the kernel will look up: the most used first.
    let mut lens: BTreeMap<usize, usize> = BTreeMap::new();
    for t in &terms {
        for s in t.name.iter().flat_map(|n| &n.suffix) {
            *lens.entry(s.len()).or_default() += 1;
        }
    }
    let mut by_use: Vec<(usize, usize)> = lens.into_iter().collect();
    by_use.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let kept: BTreeSet<usize> = by_use
        .iter()
        .map(|(l, _)| *l)
        .filter(|l| *l <= mamori_common::NAME_KEY_LEN)
        .take(PREFILTER_SUFFIXES)
        .collect();
    for (i, l) in kept.iter().enumerate() {
        f.suffix_lens[i] = *l as u8;
    }
    for (i, (_, bit)) in FLAG_NAMES.iter().enumerate().take(PREFILTER_FLAGS) {
        f.flag_bits[i] = *bit;
    }
    let mut names: BTreeMap<NameKey, u64> = BTreeMap::new();
    for (i, t) in terms.iter().enumerate() {
        let bit = 1u64 << i;
        if t.success {
            f.success |= bit;
        }
        for m in 0..4 {
            if t.access & (1 << m) != 0 {
                f.access[m] |= bit;
            }
        }
        for (j, b) in f.flag_bits.iter().enumerate() {
            if t.flags & b != 0 {
                f.flag_terms[j] |= bit;
            }
        }
        if t.dotdot {
            f.dotdot |= bit;
        }
        if let Some(n) = &t.name {
            let mut keys = Vec::new();
            let whole = n.exact.iter().map(|x| NameKey::new(NameKind::Last, x));
            let ends = n.suffix.iter().map(|x| {
                kept.contains(&x.len())
                    .then(|| NameKey::new(NameKind::Suffix, x))
                    .flatten()
            });
            // One name the kernel cannot look up: the term names nothing.
            if whole.chain(ends).all(|k| k.map(|k| keys.push(k)).is_some()) {
                f.name |= bit;
                if !n.suffix.is_empty() {
                    f.suffix |= bit;
                }
                for k in keys {
                    *names.entry(k).or_default() |= bit;
                }
            }
        }
        if let Some(d) = &t.dir {
            let keys: Option<Vec<NameKey>> =
                d.iter().map(|x| NameKey::new(NameKind::Dir, x)).collect();
            if let Some(keys) = keys {
                f.dir |= bit;
                for k in keys {
                    *names.entry(k).or_default() |= bit;
                }
            }
        }
    }
    for k in names.keys() {
        let bit = 1u64 << (k.len & 63);
        if k.kind == NameKind::Last as u8 {
            f.last_lens |= bit;
        } else if k.kind == NameKind::Dir as u8 {
            f.dir_lens |= bit;
        }
    }
    KernelFilter {
        filter: f,
        names: names.into_iter().collect(),
        ..KernelFilter::none()
    }
}

/// Whether the kernel sends an open of syscall `nr` with these facts:
/// the same mask arithmetic as the kernel program.
pub fn admits(k: &KernelFilter, nr: u32, open: &OpenFacts) -> bool {
    let f = &k.filter;
    let Some(slot) = OpenFilter::slot(nr) else {
        return true;
    };
    if f.active & (1 << slot) == 0 {
        return true;
    }
    let mut cand = f.type_terms[slot];
    if open.ret < 0 {
        cand &= !f.success;
    }
    if let Some(fl) = open.flags {
        cand &= f.access[(fl & 3) as usize];
        for i in 0..PREFILTER_FLAGS {
            if fl & f.flag_bits[i] == 0 {
                cand &= !f.flag_terms[i];
            }
        }
    }
    if cand & f.dotdot != 0 {
        let dotdot = open
            .raw
            .as_deref()
            .is_none_or(|r| r.windows(3).any(|w| w == b"../"));
        if !dotdot {
            cand &= !f.dotdot;
        }
    }
    if cand != 0 && open.ret >= 0 && cand & (f.name | f.dir) != 0 {
        let name = match &open.name {
            Some(n) => {
                let mut m = lookup_len(k, f.last_lens, NameKind::Last, n);
                if cand & f.suffix != 0 {
                    for l in f.suffix_lens.iter().map(|l| *l as usize) {
                        if l != 0 && l <= n.len() {
                            m |= lookup(k, NameKind::Suffix, &n[n.len() - l..]);
                        }
                    }
                }
                m
            }
            None => u64::MAX,
        };
        let dir = match &open.dir {
            Parent::Unknown => u64::MAX,
            Parent::Root => 0,
            Parent::Named(d) => lookup_len(k, f.dir_lens, NameKind::Dir, d),
        };
        cand &= !f.name | name;
        cand &= !f.dir | dir;
    }
    cand != 0
}

/// [`lookup`] behind the length mask `lens`, as the kernel does it.
fn lookup_len(k: &KernelFilter, lens: u64, kind: NameKind, name: &[u8]) -> u64 {
    if name.len() >= 64 || lens & (1 << name.len()) == 0 {
        return 0;
    }
    lookup(k, kind, name)
}

/// The mask the name map holds for `name` (0 when none).
fn lookup(k: &KernelFilter, kind: NameKind, name: &[u8]) -> u64 {
    let Some(key) = NameKey::new(kind, name) else {
        return 0;
    };
    k.names
        .iter()
        .find(|(n, _)| *n == key)
        .map_or(0, |(_, m)| *m)
}

fn slot_of(ty: &str) -> Option<usize> {
    OpenFilter::slot(mamori_common::syscalls::by_name(ty)?.nr)
}

#[cfg(test)]
#[path = "prefilter_tests.rs"]
mod tests;
