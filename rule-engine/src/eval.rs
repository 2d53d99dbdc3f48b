//! Evaluating compiled conditions against one event.
//!
//! Fields come from an [`Extract`] implementation (the agent's view of the
//! event and its process, fd and container state). Each field is extracted
//! at most once per event: values are kept in a small fixed cache on the
//! stack, so evaluation does not allocate for borrowed values.

use std::{borrow::Cow, mem::MaybeUninit};

use crate::{
    check::Transform,
    compile::{Matcher, Node, Operand, StrMatch, Test},
    fields::{Field, FieldArg},
    syntax::{Modifier, Op},
    value::{Value, glob},
};

/// The agent's side of evaluation: a field's value for the current event,
/// or `None` when it has none (Falco's `<NA>`).
pub trait Extract {
    fn extract(&self, field: Field, arg: &FieldArg) -> Option<Value<'_>>;
}

/// Values extracted for one event, indexed by slot.
///
/// Invariant: `vals[i]` is initialised exactly when bit `i` of `filled` is
/// set. Nothing is written up front, so starting an event costs nothing;
/// slots past `CACHE` are extracted on each use.
pub struct Cache<'e> {
    vals: [MaybeUninit<Option<Value<'e>>>; CACHE],
    filled: u128,
    overflow: Option<Value<'e>>,
    /// Test results by test id: bit set in `tested` once known, result in `passed`.
    tested: [u64; TESTS / 64],
    passed: [u64; TESTS / 64],
}

/// Test ids whose results are remembered per event.
const TESTS: usize = 1024;

const CACHE: usize = 128;

impl<'e> Cache<'e> {
    pub fn new() -> Self {
        Self {
            vals: [const { MaybeUninit::uninit() }; CACHE],
            filled: 0,
            overflow: None,
            tested: [0; TESTS / 64],
            passed: [0; TESTS / 64],
        }
    }

    /// The value of `slot`, extracted on first use and borrowed after.
    #[inline]
    pub fn get<E: Extract + ?Sized>(
        &mut self,
        slot: u16,
        slots: &[(Field, FieldArg)],
        ex: &'e E,
    ) -> Option<&Value<'e>> {
        let i = slot as usize;
        if i < CACHE && self.filled & (1u128 << i) != 0 {
            // SAFETY: bit i is set, so vals[i] is initialised (invariant).
            return unsafe { self.vals[i].assume_init_ref() }.as_ref();
        }
        self.fill(i, slots, ex)
    }

    /// First use of `slot` in this event: extract it.
    #[inline(never)]
    fn fill<E: Extract + ?Sized>(
        &mut self,
        i: usize,
        slots: &[(Field, FieldArg)],
        ex: &'e E,
    ) -> Option<&Value<'e>> {
        let (field, arg) = slots.get(i)?;
        if i >= CACHE {
            self.overflow = ex.extract(*field, arg);
            return self.overflow.as_ref();
        }
        let v = ex.extract(*field, arg);
        self.filled |= 1u128 << i;
        self.vals[i].write(v).as_ref()
    }
}

impl Drop for Cache<'_> {
    fn drop(&mut self) {
        let mut f = self.filled;
        while f != 0 {
            let i = f.trailing_zeros() as usize;
            // SAFETY: bit i is set: vals[i] is initialised, and dropped once.
            unsafe { self.vals[i].assume_init_drop() };
            f &= f - 1;
        }
    }
}

impl Default for Cache<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// Evaluates `node`.
pub fn eval<'e, E: Extract + ?Sized>(
    node: &Node,
    slots: &[(Field, FieldArg)],
    ex: &'e E,
    cache: &mut Cache<'e>,
) -> bool {
    match node {
        Node::Const(b) => *b,
        Node::Not(x) => !eval(x, slots, ex, cache),
        Node::And(v) => v.iter().all(|n| eval(n, slots, ex, cache)),
        Node::Or(v) => v.iter().any(|n| eval(n, slots, ex, cache)),
        Node::Except(x) => {
            // A missing value has no exceptions: `f = v` is false.
            let cases = match cache.get(x.slot, slots, ex) {
                Some(v) => x.cases_for(v),
                None => return true,
            };
            !cases
                .iter()
                .any(|&i| eval(&x.bodies[i as usize], slots, ex, cache))
        }
        Node::Test(t) => {
            let id = t.id as usize;
            if id >= TESTS {
                return test(t, slots, ex, cache);
            }
            let (word, bit) = (id / 64, 1u64 << (id % 64));
            if cache.tested[word] & bit != 0 {
                return cache.passed[word] & bit != 0;
            }
            let r = test(t, slots, ex, cache);
            cache.tested[word] |= bit;
            if r {
                cache.passed[word] |= bit;
            }
            r
        }
    }
}

/// A field's value with its transformers applied: borrowed from the cache
/// when there are none.
pub fn operand<'c, 'e, E: Extract + ?Sized>(
    o: &Operand,
    slots: &[(Field, FieldArg)],
    ex: &'e E,
    cache: &'c mut Cache<'e>,
) -> Option<Cow<'c, Value<'e>>> {
    let v = cache.get(o.slot, slots, ex)?;
    if o.transforms.is_empty() {
        return Some(Cow::Borrowed(v));
    }
    let mut v = v.clone();
    for t in o.transforms.iter() {
        v = transform(*t, v)?;
    }
    Some(Cow::Owned(v))
}

fn transform(t: Transform, v: Value<'_>) -> Option<Value<'_>> {
    Some(match v {
        Value::Many(vs) => Value::Many(vs.into_iter().filter_map(|x| transform(t, x)).collect()),
        Value::Str(s) => match t {
            Transform::ToLower => Value::owned(s.to_ascii_lowercase()),
            Transform::ToUpper => Value::owned(s.to_ascii_uppercase()),
            Transform::Basename => {
                let trimmed = s.strip_suffix(b"/").unwrap_or(&s);
                let base = trimmed.rsplit(|&c| c == b'/').next().unwrap_or(trimmed);
                Value::owned(base.to_vec())
            }
            Transform::Len => Value::Int(s.len() as i64),
            Transform::B64 => Value::owned(b64_decode(&s)?),
        },
        other if t == Transform::Len => Value::Int(other.render().len() as i64),
        other => other,
    })
}

fn test<'e, E: Extract + ?Sized>(
    t: &Test,
    slots: &[(Field, FieldArg)],
    ex: &'e E,
    cache: &mut Cache<'e>,
) -> bool {
    // The common case, a field without transformers: compare in place.
    if t.lhs.transforms.is_empty() && !matches!(t.matcher, Matcher::Field(..)) {
        return match cache.get(t.lhs.slot, slots, ex) {
            Some(v) => holds(t, v),
            None => false, // a missing value fails every comparison, `!=` included
        };
    }
    if let Matcher::Field(op, other) = &t.matcher {
        let Some(w) = operand(other, slots, ex, cache).map(Cow::into_owned) else {
            return false;
        };
        let Some(v) = operand(&t.lhs, slots, ex, cache) else {
            return false;
        };
        return compare_values(*op, &v, &w);
    }
    match operand(&t.lhs, slots, ex, cache) {
        Some(v) => holds(t, &v),
        None => false,
    }
}

/// Whether `v` passes `t` (any of several values).
#[inline]
fn holds(t: &Test, v: &Value) -> bool {
    match v {
        Value::Many(vs) => vs.iter().any(|x| matches(&t.matcher, x) != t.negate),
        one => matches(&t.matcher, one) != t.negate,
    }
}

#[inline]
fn matches(m: &Matcher, v: &Value) -> bool {
    match (m, v) {
        (Matcher::Exists, _) => true,
        (Matcher::Str(s), Value::Str(b)) => str_match(s, b),
        (Matcher::Str(s), other) => str_match(s, other.render().as_bytes()),
        (Matcher::Modified(mode, items), _) => {
            let text: Cow<[u8]> = match v {
                Value::Str(b) => Cow::Borrowed(b.as_ref()),
                other => Cow::Owned(other.render().into_bytes()),
            };
            let n = items.iter().filter(|m| str_match(m, &text)).count();
            match mode {
                Modifier::AnyOf => n >= 1,
                Modifier::AllOf => n == items.len(),
                Modifier::OneOf => n == 1,
            }
        }
        (Matcher::IntCmp(op, want), Value::Int(i)) => int_cmp(*op, *i, *want),
        (Matcher::IntIn(set), Value::Int(i)) => set.contains(i),
        (Matcher::Bool(want), Value::Bool(b)) => b == want,
        (Matcher::Ip(ips), Value::Ip(ip)) => ips.contains(ip),
        (Matcher::Net(nets), Value::Ip(ip)) => nets.iter().any(|n| n.contains(ip)),
        _ => false,
    }
}

fn int_cmp(op: Op, a: i64, b: i64) -> bool {
    match op {
        Op::Eq | Op::In => a == b,
        Op::Ne => a != b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        _ => false,
    }
}

#[inline]
fn str_match(m: &StrMatch, b: &[u8]) -> bool {
    match m {
        StrMatch::Eq(want) => b == want.as_ref(),
        StrMatch::In(set) => set.contains(b),
        StrMatch::Contains(f) => f.find(b).is_some(),
        StrMatch::IContains(needle) => icontains(b, needle),
        StrMatch::StartsWith(p) => b.starts_with(p),
        StrMatch::EndsWith(p) => b.ends_with(p),
        StrMatch::PMatch(set) => {
            // The path and each of its ancestors.
            let mut cur = b;
            loop {
                if set.contains(cur) {
                    return true;
                }
                match cur.iter().rposition(|&c| c == b'/') {
                    Some(0) if cur.len() > 1 => cur = b"/",
                    Some(i) if i > 0 => cur = &cur[..i],
                    _ => return false,
                }
            }
        }
        StrMatch::Glob(p, ci) => glob(p, b, *ci),
        StrMatch::Regex(re) => re.is_match(b),
    }
}

fn icontains(hay: &[u8], needle_lower: &[u8]) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    hay.windows(needle_lower.len())
        .any(|w| w.eq_ignore_ascii_case(needle_lower))
}

/// `val()` comparisons: equal types compare directly, others by text.
fn compare_values(op: Op, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_cmp(op, *x, *y),
        _ => {
            let (x, y) = (a.render(), b.render());
            match op {
                Op::Eq => x == y,
                Op::Ne => x != y,
                Op::Contains => x.contains(&y),
                Op::StartsWith => x.starts_with(&y),
                Op::EndsWith => x.ends_with(&y),
                Op::Lt => x < y,
                Op::Le => x <= y,
                Op::Gt => x > y,
                Op::Ge => x >= y,
                _ => false,
            }
        }
    }
}

fn b64_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let s: Vec<u8> = s
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::b64_decode;

    #[test]
    fn base64() {
        assert_eq!(b64_decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(b64_decode(b"aGk").unwrap(), b"hi");
        assert!(b64_decode(b"!!").is_none());
    }
}
