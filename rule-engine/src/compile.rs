//! Lowering checked conditions to evaluable nodes: string sets as hash
//! sets, `pmatch` prefixes as a set probed by path ancestors, regexes
//! compiled once (anchored: Falco's regex is a full match), field slots
//! shared across the ruleset so each field is extracted at most once per
//! event, and the cheapest tests of an `and`/`or` first.

use std::{collections::HashMap, net::IpAddr};

use rustc_hash::FxHashSet as HashSet;

use memchr::memmem;

use crate::{
    check::{CExpr, CRhs, Cmp, Lhs, Transform, Typed},
    fields::{Field, FieldArg},
    syntax::{Modifier, Op},
    value::Net,
};

/// Field slots: one per distinct (field, argument) in the ruleset; and test
/// ids: one per distinct comparison, so a test shared by many rules (through
/// their common macros) is evaluated once per event.
#[derive(Debug, Default)]
pub struct Slots {
    map: HashMap<(Field, FieldArg), u16>,
    pub list: Vec<(Field, FieldArg)>,
    tests: HashMap<String, u16>,
}

impl Slots {
    /// The id of a comparison (identical comparisons share one).
    fn test_id(&mut self, c: &Cmp) -> u16 {
        let key = format!("{c:?}");
        let next = self.tests.len() as u16;
        *self.tests.entry(key).or_insert(next)
    }

    /// The slots of a compiled ruleset, to add more (`append_output`).
    pub fn from_list(list: Vec<(Field, FieldArg)>) -> Self {
        let map = list
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u16))
            .collect();
        Self {
            map,
            list,
            tests: HashMap::default(),
        }
    }

    pub fn slot(&mut self, field: Field, arg: &FieldArg) -> u16 {
        if let Some(&s) = self.map.get(&(field, arg.clone())) {
            return s;
        }
        let s = self.list.len() as u16;
        self.list.push((field, arg.clone()));
        self.map.insert((field, arg.clone()), s);
        s
    }
}

/// An evaluable condition.
#[derive(Debug)]
pub enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Const(bool),
    Test(Box<Test>),
    /// Negated conjunctions keyed on one field (see [`crate::except`]).
    Except(Box<crate::except::Except>),
}

/// A field and the transformers applied to it.
#[derive(Debug, Clone)]
pub struct Operand {
    pub slot: u16,
    pub transforms: Box<[Transform]>,
}

#[derive(Debug)]
pub struct Test {
    /// Identical comparisons share an id (see [`Slots`]).
    pub id: u16,
    pub lhs: Operand,
    pub matcher: Matcher,
    /// `!=`: true when the field has a value that does not match.
    pub negate: bool,
}

#[derive(Debug)]
pub enum Matcher {
    Exists,
    Str(StrMatch),
    /// `anyof`/`allof`/`oneof`: how many of the matchers must hold.
    Modified(Modifier, Vec<StrMatch>),
    IntCmp(Op, i64),
    IntIn(HashSet<i64>),
    Bool(bool),
    Ip(Box<[IpAddr]>),
    Net(Box<[Net]>),
    /// `val(other)`: compare with another field's value.
    Field(Op, Operand),
}

#[derive(Debug)]
pub enum StrMatch {
    Eq(Box<[u8]>),
    In(ByteSet),
    Contains(Box<memmem::Finder<'static>>),
    IContains(Box<[u8]>),
    StartsWith(Box<[u8]>),
    EndsWith(Box<[u8]>),
    PMatch(ByteSet),
    Glob(Box<[u8]>, bool),
    Regex(Box<regex::bytes::Regex>),
}

/// Byte strings (each with a value) that know their lengths: most probes
/// miss (a path is not a sensitive file, an ancestor is not a listed
/// tool), and most misses are decided by length, without hashing.
#[derive(Debug)]
pub struct ByteMap<V> {
    /// Bit `min(len, 63)` for each key's length.
    lens: u64,
    map: rustc_hash::FxHashMap<Box<[u8]>, V>,
}

/// A [`ByteMap`] without values: `in` and `pmatch` lists.
pub type ByteSet = ByteMap<()>;

impl<V> Default for ByteMap<V> {
    fn default() -> Self {
        Self {
            lens: 0,
            map: Default::default(),
        }
    }
}

impl<V> ByteMap<V> {
    fn len_bit(len: usize) -> u64 {
        1 << len.min(63)
    }

    #[inline]
    pub fn get(&self, b: &[u8]) -> Option<&V> {
        if self.lens & Self::len_bit(b.len()) == 0 {
            return None;
        }
        self.map.get(b)
    }

    /// The value of `key`, inserted as the default when new.
    pub fn get_or_default(&mut self, key: Box<[u8]>) -> &mut V
    where
        V: Default,
    {
        self.lens |= Self::len_bit(key.len());
        self.map.entry(key).or_default()
    }

    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.map.keys().map(AsRef::as_ref)
    }
}

impl ByteSet {
    #[inline]
    pub fn contains(&self, b: &[u8]) -> bool {
        self.get(b).is_some()
    }
}

impl FromIterator<Box<[u8]>> for ByteSet {
    fn from_iter<I: IntoIterator<Item = Box<[u8]>>>(items: I) -> Self {
        let mut out = Self::default();
        for b in items {
            out.get_or_default(b);
        }
        out
    }
}

/// Compilation failures (invalid regex).
#[derive(Debug, Clone)]
pub struct CompileError(pub String);

pub fn compile(e: &CExpr, slots: &mut Slots) -> Result<Node, CompileError> {
    Ok(match e {
        CExpr::Const(b) => Node::Const(*b),
        CExpr::Not(x) => Node::Not(Box::new(compile(x, slots)?)),
        CExpr::And(v) => Node::And(ordered(v, slots, true)?),
        CExpr::Or(v) => Node::Or(ordered(v, slots, false)?),
        CExpr::Cmp(c) => {
            let mut t = test(c, slots)?;
            t.id = slots.test_id(c);
            Node::Test(Box::new(t))
        }
    })
}

fn ordered(v: &[CExpr], slots: &mut Slots, and: bool) -> Result<Box<[Node]>, CompileError> {
    let mut nodes: Vec<Node> = v
        .iter()
        .map(|x| compile(x, slots))
        .collect::<Result<_, _>>()?;
    if and {
        nodes = crate::except::group(nodes);
    }
    // An `and` stops at the first false child, an `or` at the first true
    // one: evaluate first what most likely stops it, at the lowest cost.
    nodes.sort_by_key(|n| {
        let p = p_true(n, &slots.list);
        let p = if and { p } else { 100 - p };
        p * 4 + cost(n)
    });
    Ok(nodes.into_boxed_slice())
}

/// A rough chance, in percent, that a node is true for an event of its
/// type. String equality and set membership are rarely true, except on
/// fields with a handful of values; numeric bounds, `!=` and negations
/// usually are.
fn p_true(n: &Node, slots: &[(Field, FieldArg)]) -> u32 {
    match n {
        Node::Const(true) => 100,
        Node::Const(false) => 0,
        Node::Not(x) => 100 - p_true(x, slots),
        Node::And(v) => v.iter().map(|x| p_true(x, slots)).min().unwrap_or(100),
        Node::Or(v) => v.iter().map(|x| p_true(x, slots)).max().unwrap_or(0),
        // An exception rarely applies.
        Node::Except(_) => 95,
        Node::Test(t) if t.negate => 90,
        Node::Test(t) => match &t.matcher {
            Matcher::Str(StrMatch::Eq(_) | StrMatch::In(_))
                if slots
                    .get(t.lhs.slot as usize)
                    .is_some_and(|(f, _)| few_values(*f)) =>
            {
                50
            }
            Matcher::Str(StrMatch::Eq(_) | StrMatch::In(_))
            | Matcher::Ip(_)
            | Matcher::IntIn(_) => 5,
            Matcher::Str(StrMatch::StartsWith(_) | StrMatch::EndsWith(_) | StrMatch::PMatch(_)) => {
                10
            }
            Matcher::Str(_) | Matcher::Modified(..) | Matcher::Field(..) => 15,
            Matcher::Net(_) => 30,
            Matcher::IntCmp(Op::Eq, _) => 20,
            Matcher::Bool(_) => 50,
            Matcher::IntCmp(..) | Matcher::Exists => 80,
        },
    }
}

/// Fields with a handful of values: `fd.typechar = f` holds for most
/// opens, unlike an equality on a name or a path.
fn few_values(f: Field) -> bool {
    matches!(
        f,
        Field::FdTypechar
            | Field::FdType
            | Field::FdL4proto
            | Field::FdSockfamily
            | Field::EvtDir
            | Field::EvtRes
            | Field::SyscallType
            | Field::ContainerId
            | Field::ContainerType
    )
}

/// A rough cost: cheap integer tests first, regexes and deep trees last.
fn cost(n: &Node) -> u32 {
    match n {
        Node::Const(_) => 0,
        Node::Not(x) => cost(x),
        Node::And(v) | Node::Or(v) => v.iter().map(cost).sum::<u32>() + 1,
        Node::Except(_) => 3,
        Node::Test(t) => {
            let base = match &t.matcher {
                Matcher::Exists | Matcher::Bool(_) | Matcher::IntCmp(..) | Matcher::IntIn(_) => 1,
                Matcher::Ip(_) | Matcher::Net(_) => 2,
                Matcher::Str(StrMatch::Eq(_) | StrMatch::In(_)) => 3,
                Matcher::Str(
                    StrMatch::StartsWith(_) | StrMatch::EndsWith(_) | StrMatch::PMatch(_),
                ) => 4,
                Matcher::Str(
                    StrMatch::Contains(_) | StrMatch::IContains(_) | StrMatch::Glob(..),
                ) => 6,
                Matcher::Field(..) => 6,
                Matcher::Modified(_, v) => 4 + v.len() as u32,
                Matcher::Str(StrMatch::Regex(_)) => 20,
            };
            base + t.lhs.transforms.len() as u32 * 2
        }
    }
}

fn operand(l: &Lhs, slots: &mut Slots) -> Operand {
    Operand {
        slot: slots.slot(l.field, &l.arg),
        transforms: l.transforms.clone().into_boxed_slice(),
    }
}

fn test(c: &Cmp, slots: &mut Slots) -> Result<Test, CompileError> {
    let lhs = operand(&c.lhs, slots);
    let negate = c.op == Op::Ne;
    let values: &[Typed] = match &c.rhs {
        CRhs::Values(v) => v,
        CRhs::None => &[],
        CRhs::Field(other) => {
            return Ok(Test {
                lhs,
                matcher: Matcher::Field(c.op, operand(other, slots)),
                negate: false,
                id: 0,
            });
        }
    };
    let op = if negate { Op::Eq } else { c.op };
    if op == Op::Exists {
        return Ok(Test {
            lhs,
            matcher: Matcher::Exists,
            negate: false,
            id: 0,
        });
    }
    if let Some(m) = c.modifier {
        let items = values
            .iter()
            .map(|v| str_match(op, std::slice::from_ref(v)))
            .collect::<Result<_, _>>()?;
        return Ok(Test {
            lhs,
            matcher: Matcher::Modified(m, items),
            negate,
            id: 0,
        });
    }
    let matcher = match values.first() {
        Some(Typed::Int(_)) => {
            let ints: HashSet<i64> = values
                .iter()
                .filter_map(|v| {
                    if let Typed::Int(i) = v {
                        Some(*i)
                    } else {
                        None
                    }
                })
                .collect();
            match op {
                Op::In | Op::Intersects => Matcher::IntIn(ints),
                _ => Matcher::IntCmp(op, ints.into_iter().next().unwrap_or_default()),
            }
        }
        Some(Typed::Bool(b)) => Matcher::Bool(*b),
        Some(Typed::Ip(_) | Typed::Net(_)) => {
            let ips: Vec<IpAddr> = values
                .iter()
                .filter_map(|v| if let Typed::Ip(i) = v { Some(*i) } else { None })
                .collect();
            let nets: Vec<Net> = values
                .iter()
                .map(|v| match v {
                    Typed::Ip(i) => Net {
                        addr: *i,
                        prefix: if i.is_ipv4() { 32 } else { 128 },
                    },
                    Typed::Net(n) => *n,
                    _ => Net {
                        addr: IpAddr::from([0, 0, 0, 0]),
                        prefix: 32,
                    },
                })
                .collect();
            if ips.len() == values.len() {
                Matcher::Ip(ips.into_boxed_slice())
            } else {
                Matcher::Net(nets.into_boxed_slice())
            }
        }
        // An empty list matches nothing.
        None => Matcher::Str(StrMatch::In(ByteSet::default())),
        Some(Typed::Str(_) | Typed::Bytes(_)) => Matcher::Str(str_match(op, values)?),
    };
    Ok(Test {
        lhs,
        matcher,
        negate,
        id: 0,
    })
}

fn bytes(v: &Typed) -> Box<[u8]> {
    match v {
        Typed::Str(s) | Typed::Bytes(s) => s.clone().into_boxed_slice(),
        Typed::Int(i) => i.to_string().into_bytes().into_boxed_slice(),
        Typed::Bool(b) => b.to_string().into_bytes().into_boxed_slice(),
        Typed::Ip(i) => i.to_string().into_bytes().into_boxed_slice(),
        Typed::Net(n) => format!("{}/{}", n.addr, n.prefix)
            .into_bytes()
            .into_boxed_slice(),
    }
}

fn str_match(op: Op, values: &[Typed]) -> Result<StrMatch, CompileError> {
    let first = values.first().map(bytes).unwrap_or_default();
    Ok(match op {
        Op::In | Op::Intersects => StrMatch::In(values.iter().map(bytes).collect()),
        Op::PMatch => StrMatch::PMatch(
            values
                .iter()
                .map(|v| {
                    let b = bytes(v);
                    match b.strip_suffix(b"/") {
                        Some(s) if !s.is_empty() => s.to_vec().into_boxed_slice(),
                        _ => b,
                    }
                })
                .collect(),
        ),
        Op::Contains | Op::BContains => {
            StrMatch::Contains(Box::new(memmem::Finder::new(&first).into_owned()))
        }
        Op::IContains => StrMatch::IContains(first.to_ascii_lowercase().into_boxed_slice()),
        Op::StartsWith | Op::BStartsWith => StrMatch::StartsWith(first),
        Op::EndsWith => StrMatch::EndsWith(first),
        Op::Glob => StrMatch::Glob(first, false),
        Op::IGlob => StrMatch::Glob(first, true),
        Op::Regex => {
            let pattern = String::from_utf8_lossy(&first);
            let re = regex::bytes::Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| CompileError(format!("invalid regex `{pattern}`: {e}")))?;
            StrMatch::Regex(Box::new(re))
        }
        _ => StrMatch::Eq(first),
    })
}
