//! Rule exceptions as checked expressions: built directly from the YAML
//! values (no condition text), so values with spaces or quotes need no
//! quoting.

use super::{CExpr, CRhs, CheckError, Checker, Cmp, Loc, op_allowed, type_name};
use crate::{
    collect::Text,
    syntax::{self, Expr, Literal, Modifier, Op, Span},
};

impl Checker<'_> {
    /// An exception as a checked expression that matches the excepted
    /// events: values ORed, each tuple's fields ANDed. `None` when it has no
    /// values (it excepts nothing).
    pub fn exception(
        &mut self,
        exc: &crate::spec::ExceptionSpec,
        file: usize,
    ) -> Result<Option<CExpr>, CheckError> {
        use crate::spec::{OneOrMany, ValueElem};
        let text = Text::new(&exc.name, file);
        let loc = Loc { text: &text };
        let at = Span::default();
        let name = &exc.name.text;
        let fail = |m: String| Self::err(loc, at, format!("exception `{name}`: {m}"));
        let Some(fields) = &exc.fields else {
            return Err(fail("`fields` is required".into()));
        };
        match fields {
            OneOrMany::One(field) => {
                let comp = match &exc.comps {
                    None => "in".to_owned(),
                    Some(OneOrMany::One(c)) => c.text.clone(),
                    Some(OneOrMany::Many(_)) => {
                        return Err(fail("a single field takes a single comp".into()));
                    }
                };
                let (op, modifier) =
                    parse_comp(&comp).ok_or_else(|| fail(format!("unknown comp `{comp}`")))?;
                if !(op.takes_list() || modifier.is_some()) {
                    return Err(fail(format!(
                        "with a single field, comp must be in, pmatch, intersects or take a modifier, not `{comp}`"
                    )));
                }
                let mut lits = Vec::new();
                for v in &exc.values {
                    for el in v {
                        match el {
                            ValueElem::One(s) => lits.push(literal(s)),
                            ValueElem::List(l, _) => lits.extend(l.iter().map(literal)),
                        }
                    }
                }
                if lits.is_empty() {
                    return Ok(None);
                }
                let cmp = self.exception_cmp(&field.text, op, modifier, &lits, loc, &fail)?;
                Ok(Some(CExpr::Cmp(Box::new(cmp))))
            }
            OneOrMany::Many(fields) => {
                let comps: Vec<String> = match &exc.comps {
                    None => vec!["=".to_owned(); fields.len()],
                    Some(OneOrMany::Many(c)) => c.iter().map(|s| s.text.clone()).collect(),
                    Some(OneOrMany::One(_)) => {
                        return Err(fail("a list of fields takes a list of comps".into()));
                    }
                };
                if comps.len() != fields.len() {
                    return Err(fail(format!(
                        "{} fields but {} comps",
                        fields.len(),
                        comps.len()
                    )));
                }
                let mut ors = Vec::new();
                for (i, tuple) in exc.values.iter().enumerate() {
                    if tuple.len() != fields.len() {
                        return Err(fail(format!(
                            "value {} has {} elements for {} fields",
                            i + 1,
                            tuple.len(),
                            fields.len()
                        )));
                    }
                    let mut ands = Vec::new();
                    for ((field, comp), el) in fields.iter().zip(&comps).zip(tuple) {
                        let (op, modifier) = parse_comp(comp)
                            .ok_or_else(|| fail(format!("unknown comp `{comp}`")))?;
                        let lits: Vec<Literal> = match el {
                            ValueElem::One(s) => vec![literal(s)],
                            ValueElem::List(l, _) => l.iter().map(literal).collect(),
                        };
                        ands.push(CExpr::Cmp(Box::new(self.exception_cmp(
                            &field.text,
                            op,
                            modifier,
                            &lits,
                            loc,
                            &fail,
                        )?)));
                    }
                    ors.push(CExpr::And(ands));
                }
                Ok(if ors.is_empty() {
                    None
                } else {
                    Some(CExpr::Or(ors))
                })
            }
        }
    }

    fn exception_cmp(
        &mut self,
        field: &str,
        op: Op,
        modifier: Option<Modifier>,
        lits: &[Literal],
        loc: Loc,
        fail: &dyn Fn(String) -> CheckError,
    ) -> Result<Cmp, CheckError> {
        let parsed = syntax::parse(&format!("{field} exists"))
            .map_err(|_| fail(format!("`{field}` is not a field")))?;
        let Expr::Check(c) = parsed else {
            return Err(fail(format!("`{field}` is not a field")));
        };
        let lhs = self.lhs(&c.lhs, loc).map_err(|e| CheckError {
            message: fail(e.message).message,
            ..e
        })?;
        if !op_allowed(lhs.ty, op) {
            return Err(fail(format!(
                "`{}` cannot be used with a {} field",
                op.as_str(),
                type_name(lhs.ty)
            )));
        }
        let mut values = Vec::new();
        for lit in lits {
            if (op.takes_list() || modifier.is_some())
                && !lit.quoted
                && self.collected.list(&lit.text).is_some()
            {
                for item in self.expand_list(&lit.text, lit.span, loc, 0)? {
                    values.push(self.typed(&lhs, op, &item, loc)?);
                }
            } else {
                values.push(self.typed(&lhs, op, lit, loc)?);
            }
        }
        Ok(Cmp {
            lhs,
            op,
            modifier,
            rhs: if op == Op::Exists {
                CRhs::None
            } else {
                CRhs::Values(values)
            },
        })
    }
}

/// An exception value: spliced into the condition as written, like list
/// items, so `'"a b"'` is the quoted value `a b`.
fn literal(s: &crate::yaml::Scalar) -> Literal {
    match syntax::quoted_literal(&s.text) {
        Some(lit) => Literal {
            span: Span::default(),
            ..lit
        },
        None => Literal {
            text: s.text.clone(),
            quoted: s.quoted,
            span: Span::default(),
        },
    }
}

/// `=`, `in`, `startswith`, `startswith anyof`...
fn parse_comp(comp: &str) -> Option<(Op, Option<Modifier>)> {
    let mut words = comp.split_whitespace();
    let op_text = words.next()?;
    let op = match op_text {
        "=" | "==" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        w => Op::WORDS
            .iter()
            .find(|(name, _)| *name == w)
            .map(|(_, o)| *o)?,
    };
    let modifier = match words.next() {
        None => None,
        Some("anyof") => Some(Modifier::AnyOf),
        Some("allof") => Some(Modifier::AllOf),
        Some("oneof") => Some(Modifier::OneOf),
        Some(_) => return None,
    };
    Some((op, modifier))
}
