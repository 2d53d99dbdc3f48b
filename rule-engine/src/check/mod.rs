//! Checking: macros inlined, lists expanded, fields resolved against the
//! field table, operators checked against field types, and literals
//! converted to the field's type. Produces [`CExpr`].

use std::{collections::HashMap, net::IpAddr};

use crate::{
    collect::{Collected, Text},
    diag::Pos,
    fields::{self, ArgKind, Field, FieldArg, FieldType},
    syntax::{self, Expr, Literal, Modifier, Op, Operand, Rhs, Span},
    value::{self, Net},
};

/// A checked condition.
#[derive(Clone, Debug, PartialEq)]
pub enum CExpr {
    And(Vec<CExpr>),
    Or(Vec<CExpr>),
    Not(Box<CExpr>),
    Const(bool),
    Cmp(Box<Cmp>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    ToLower,
    ToUpper,
    B64,
    Basename,
    Len,
}

/// A resolved field with its transformers (innermost first).
#[derive(Clone, Debug, PartialEq)]
pub struct Lhs {
    pub field: Field,
    pub arg: FieldArg,
    pub transforms: Vec<Transform>,
    /// Type after the transformers.
    pub ty: FieldType,
}

/// A literal converted to the type it is compared with.
#[derive(Clone, Debug, PartialEq)]
pub enum Typed {
    Str(Vec<u8>),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    Net(Net),
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum CRhs {
    None,
    Values(Vec<Typed>),
    Field(Lhs),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cmp {
    pub lhs: Lhs,
    pub op: Op,
    pub modifier: Option<Modifier>,
    pub rhs: CRhs,
}

/// Why a condition did not check.
#[derive(Clone, Debug)]
pub struct CheckError {
    pub file: usize,
    pub pos: Pos,
    pub message: String,
    /// The problem is a field mamori does not know (rules with
    /// `skip-if-unknown-filter` are then skipped, not refused).
    pub unknown_field: bool,
}

mod exception;

/// Deepest macro nesting.
const MAX_MACRO_DEPTH: usize = 64;

pub struct Checker<'a> {
    collected: &'a Collected,
    /// Parsed macro conditions (or the parse error).
    parsed_macros: HashMap<String, Result<Expr, CheckError>>,
    pub used_macros: HashMap<String, bool>,
    pub used_lists: HashMap<String, bool>,
}

/// Where errors of the expression being checked point.
#[derive(Clone, Copy)]
struct Loc<'t> {
    text: &'t Text,
}

impl Loc<'_> {
    fn at(&self, span: Span) -> (usize, Pos) {
        self.text.locate(span.start)
    }
}

impl<'a> Checker<'a> {
    pub fn new(collected: &'a Collected) -> Self {
        Self {
            collected,
            parsed_macros: HashMap::new(),
            used_macros: HashMap::new(),
            used_lists: HashMap::new(),
        }
    }

    /// Parses a condition text.
    pub fn parse(text: &Text) -> Result<Expr, CheckError> {
        syntax::parse(&text.text).map_err(|e| {
            let (file, pos) = text.locate(e.offset);
            CheckError {
                file,
                pos,
                message: e.message,
                unknown_field: false,
            }
        })
    }

    /// Parses every macro, so syntax errors are reported even when unused.
    pub fn parse_macros(&mut self) -> Vec<(String, CheckError)> {
        let mut errors = Vec::new();
        for m in &self.collected.macros {
            let r = Self::parse(&m.condition);
            if let Err(e) = &r {
                errors.push((m.name.clone(), e.clone()));
            }
            self.parsed_macros.insert(m.name.clone(), r);
        }
        errors
    }

    /// Checks a rule condition.
    pub fn check(&mut self, text: &Text) -> Result<CExpr, CheckError> {
        let expr = Self::parse(text)?;
        let mut stack = Vec::new();
        self.expr(&expr, Loc { text }, &mut stack)
    }

    /// A macro's definition.
    pub fn collected_macro(&self, name: &str) -> Option<&'a crate::collect::MacroDef> {
        self.collected.macro_def(name)
    }

    /// Checks one part of a parsed condition (`text` is the whole, for
    /// positions): how `explain` evaluates each part on its own.
    pub fn check_expr(&mut self, expr: &Expr, text: &Text) -> Result<CExpr, CheckError> {
        self.expr(expr, Loc { text }, &mut Vec::new())
    }

    fn err(loc: Loc, span: Span, message: impl Into<String>) -> CheckError {
        let (file, pos) = loc.at(span);
        CheckError {
            file,
            pos,
            message: message.into(),
            unknown_field: false,
        }
    }

    fn expr(&mut self, e: &Expr, loc: Loc, stack: &mut Vec<String>) -> Result<CExpr, CheckError> {
        Ok(match e {
            Expr::And(v) => CExpr::And(
                v.iter()
                    .map(|x| self.expr(x, loc, stack))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(v) => CExpr::Or(
                v.iter()
                    .map(|x| self.expr(x, loc, stack))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(x) => CExpr::Not(Box::new(self.expr(x, loc, stack)?)),
            Expr::Macro(name, span) => self.macro_ref(name, *span, loc, stack)?,
            Expr::Check(c) => CExpr::Cmp(Box::new(self.cmp(c, loc)?)),
        })
    }

    fn macro_ref(
        &mut self,
        name: &str,
        span: Span,
        loc: Loc,
        stack: &mut Vec<String>,
    ) -> Result<CExpr, CheckError> {
        let Some(def) = self.collected.macro_def(name) else {
            return Err(Self::err(loc, span, format!("undefined macro `{name}`")));
        };
        if stack.iter().any(|s| s == name) {
            stack.push(name.to_owned());
            return Err(Self::err(
                loc,
                span,
                format!("macro recursion: {}", stack.join(" -> ")),
            ));
        }
        if stack.len() >= MAX_MACRO_DEPTH {
            return Err(Self::err(
                loc,
                span,
                format!("macros nested deeper than {MAX_MACRO_DEPTH}"),
            ));
        }
        self.used_macros.insert(name.to_owned(), true);
        let parsed = match self.parsed_macros.get(name) {
            Some(Ok(e)) => e.clone(),
            Some(Err(e)) => return Err(e.clone()),
            None => Self::parse(&def.condition)?,
        };
        stack.push(name.to_owned());
        let r = self.expr(
            &parsed,
            Loc {
                text: &def.condition,
            },
            stack,
        );
        stack.pop();
        r
    }

    /// Resolves a field operand (with transformers).
    fn lhs(&mut self, o: &Operand, loc: Loc) -> Result<Lhs, CheckError> {
        match o {
            Operand::Transform { name, inner, span } => {
                let mut lhs = self.lhs(inner, loc)?;
                let t = match name.as_str() {
                    "tolower" => Transform::ToLower,
                    "toupper" => Transform::ToUpper,
                    "b64" => Transform::B64,
                    "basename" => Transform::Basename,
                    "len" => Transform::Len,
                    other => {
                        return Err(Self::err(
                            loc,
                            *span,
                            format!("unknown transformer `{other}`"),
                        ));
                    }
                };
                if !matches!(lhs.ty, FieldType::Str | FieldType::Bytes) {
                    return Err(Self::err(
                        loc,
                        *span,
                        format!("`{name}` applies to string fields only"),
                    ));
                }
                lhs.ty = if t == Transform::Len {
                    FieldType::Int
                } else {
                    FieldType::Str
                };
                lhs.transforms.push(t);
                Ok(lhs)
            }
            Operand::Field { name, arg, span } => {
                let Some((def, arg)) = fields::lookup(name, arg.as_deref()) else {
                    let (file, pos) = loc.at(*span);
                    return Err(CheckError {
                        file,
                        pos,
                        message: format!("unknown field `{name}` (see `mamori fields`)"),
                        unknown_field: true,
                    });
                };
                let arg = match (def.arg, arg) {
                    (ArgKind::None, None) => FieldArg::None,
                    (ArgKind::None, Some(_)) => {
                        return Err(Self::err(
                            loc,
                            *span,
                            format!("`{}` takes no argument", def.name),
                        ));
                    }
                    (ArgKind::OptionalIndex, None) | (ArgKind::OptionalKey, None) => FieldArg::None,
                    (ArgKind::Key | ArgKind::EventArg, None) => {
                        return Err(Self::err(
                            loc,
                            *span,
                            format!("`{}` needs an argument: {}[...]", def.name, def.name),
                        ));
                    }
                    (ArgKind::OptionalIndex, Some(a)) => match a.trim().parse::<u32>() {
                        Ok(n) => FieldArg::Index(n),
                        Err(_) => {
                            return Err(Self::err(
                                loc,
                                *span,
                                format!("`{}[{a}]`: the index must be a number", def.name),
                            ));
                        }
                    },
                    (ArgKind::EventArg, Some(a)) => match a.trim().parse::<u32>() {
                        Ok(n) => FieldArg::Index(n),
                        Err(_) => FieldArg::Key(a.trim().to_owned()),
                    },
                    (ArgKind::Key | ArgKind::OptionalKey, Some(a)) => FieldArg::Key(a.to_owned()),
                };
                Ok(Lhs {
                    field: def.id,
                    arg,
                    transforms: Vec::new(),
                    ty: def.ty,
                })
            }
        }
    }

    fn cmp(&mut self, c: &syntax::Check, loc: Loc) -> Result<Cmp, CheckError> {
        let lhs = self.lhs(&c.lhs, loc)?;
        let op = c.op;
        if !op_allowed(lhs.ty, op) {
            return Err(Self::err(
                loc,
                c.op_span,
                format!(
                    "`{}` cannot be used with a {} field",
                    op.as_str(),
                    type_name(lhs.ty)
                ),
            ));
        }
        let rhs = match &c.rhs {
            Rhs::None => CRhs::None,
            Rhs::Field(o) => {
                let other = self.lhs(o, loc)?;
                CRhs::Field(other)
            }
            Rhs::Value(lit) => CRhs::Values(vec![self.typed(&lhs, op, lit, loc)?]),
            Rhs::List(items, _) => {
                let mut out = Vec::new();
                for lit in items {
                    if !lit.quoted && self.collected.list(&lit.text).is_some() {
                        for item in self.expand_list(&lit.text, lit.span, loc, 0)? {
                            out.push(self.typed(&lhs, op, &item, loc)?);
                        }
                    } else {
                        out.push(self.typed(&lhs, op, lit, loc)?);
                    }
                }
                CRhs::Values(out)
            }
            Rhs::ListRef(name, span) => {
                if self.collected.list(name).is_none() {
                    return Err(Self::err(loc, *span, format!("undefined list `{name}`")));
                }
                let mut out = Vec::new();
                for item in self.expand_list(name, *span, loc, 0)? {
                    out.push(self.typed(&lhs, op, &item, loc)?);
                }
                CRhs::Values(out)
            }
        };
        Ok(Cmp {
            lhs,
            op,
            modifier: c.modifier,
            rhs,
        })
    }

    /// The items of list `name`, with nested list names expanded.
    fn expand_list(
        &mut self,
        name: &str,
        span: Span,
        loc: Loc,
        depth: usize,
    ) -> Result<Vec<Literal>, CheckError> {
        if depth > MAX_MACRO_DEPTH {
            return Err(Self::err(
                loc,
                span,
                format!("list `{name}` nests lists too deeply (a cycle?)"),
            ));
        }
        self.used_lists.insert(name.to_owned(), true);
        let Some(def) = self.collected.list(name) else {
            return Err(Self::err(loc, span, format!("undefined list `{name}`")));
        };
        let items = def.items.clone();
        let mut out = Vec::new();
        for item in items {
            if !item.quoted && item.text != name && self.collected.list(&item.text).is_some() {
                out.extend(self.expand_list(&item.text, span, loc, depth + 1)?);
            } else if let Some(lit) = syntax::quoted_literal(&item.text) {
                out.push(Literal { span, ..lit });
            } else {
                out.push(Literal {
                    text: item.text,
                    quoted: item.quoted,
                    span,
                });
            }
        }
        Ok(out)
    }

    /// Converts a literal to the type of `lhs` for `op`.
    fn typed(&self, lhs: &Lhs, op: Op, lit: &Literal, loc: Loc) -> Result<Typed, CheckError> {
        let text = lit.text.as_str();
        let bad = |what: &str| Self::err(loc, lit.span, format!("`{text}` is not {what}"));
        if matches!(op, Op::BContains | Op::BStartsWith) {
            return value::hex(text)
                .map(Typed::Bytes)
                .ok_or_else(|| bad("a hex byte string"));
        }
        Ok(match lhs.ty {
            FieldType::Str | FieldType::Bytes => Typed::Str(text.as_bytes().to_vec()),
            FieldType::Int => parse_int(text)
                .map(Typed::Int)
                .ok_or_else(|| bad("a number"))?,
            FieldType::Bool => match text.to_ascii_lowercase().as_str() {
                "true" => Typed::Bool(true),
                "false" => Typed::Bool(false),
                _ => return Err(bad("true or false")),
            },
            FieldType::Ip if !text.contains('/') => text
                .parse()
                .map(Typed::Ip)
                .map_err(|_| bad("an IP address"))?,
            FieldType::Ip | FieldType::Net => Net::parse(text)
                .map(Typed::Net)
                .ok_or_else(|| bad("an IP network (a.b.c.d/n)"))?,
        })
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let v = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

pub fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Str => "string",
        FieldType::Int => "numeric",
        FieldType::Bool => "boolean",
        FieldType::Ip => "IP address",
        FieldType::Net => "IP network",
        FieldType::Bytes => "byte buffer",
    }
}

/// Operators each field type accepts.
pub fn op_allowed(t: FieldType, op: Op) -> bool {
    use Op::*;
    match t {
        FieldType::Str => !matches!(op, Lt | Le | Gt | Ge),
        FieldType::Bytes => matches!(
            op,
            Eq | Ne | Contains | BContains | StartsWith | BStartsWith | Exists | In
        ),
        FieldType::Int => matches!(op, Eq | Ne | Lt | Le | Gt | Ge | In | Intersects | Exists),
        FieldType::Bool => matches!(op, Eq | Ne | In | Exists),
        FieldType::Ip | FieldType::Net => matches!(op, Eq | Ne | In | Intersects | Exists),
    }
}

impl Checker<'_> {
    /// Resolves a field named in an output format.
    pub fn output_lhs(&mut self, o: &Operand) -> Result<Lhs, String> {
        let none = Text::default();
        self.lhs(o, Loc { text: &none }).map_err(|e| e.message)
    }
}
