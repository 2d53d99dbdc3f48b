//! Why a rule did or did not match an event: its condition, as written,
//! split into its parts (macros opened up, exceptions last), each evaluated
//! on its own against the event, with the field values it compared.

use crate::{
    check::{CExpr, Checker},
    collect::{Collected, Text},
    compile::{self, Slots},
    eval::{Cache, Extract, eval},
    syntax::{Expr, Rhs, Span},
    types,
};

/// One part of a condition and whether it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// The part as written (a macro by its name).
    pub text: String,
    pub held: bool,
    /// `field = value` of each field the part compares (leaves only).
    pub values: Vec<String>,
    pub children: Vec<Explained>,
}

/// Macros opened up to this depth; deeper ones show as one line.
const MAX_DEPTH: usize = 8;

/// Explains rule `name` of `collected` on the event behind `ex`.
pub fn explain<E: Extract + ?Sized>(
    collected: &Collected,
    name: &str,
    ex: &E,
) -> Result<Explained, String> {
    let def = collected
        .rules
        .iter()
        .rev()
        .find(|r| r.name == name)
        .ok_or_else(|| format!("no rule named `{name}`"))?;
    let mut checker = Checker::new(collected);
    let _ = checker.parse_macros();
    let expr = Checker::parse(&def.condition).map_err(|e| e.message)?;
    let mut root = part(&mut checker, &expr, &def.condition, ex, 0)?;
    root.text = format!("rule `{name}`");
    let mut held = root.held;
    let mut cond = Explained {
        text: "condition".into(),
        held: root.held,
        values: Vec::new(),
        children: vec![],
    };
    std::mem::swap(&mut cond.children, &mut root.children);
    if cond.children.is_empty() {
        cond.text = root_text(&expr, &def.condition);
        cond.values = std::mem::take(&mut root.values);
    }
    root.children = vec![cond];
    for (exc, file) in &def.exceptions {
        let Some(x) = checker.exception(exc, *file).map_err(|e| e.message)? else {
            continue;
        };
        let hit = run(&x, ex)?;
        held &= !hit;
        root.children.push(Explained {
            text: format!("not exception `{}`", exc.name.text),
            held: !hit,
            values: Vec::new(),
            children: Vec::new(),
        });
    }
    root.held = held;
    Ok(root)
}

/// The whole condition's text, for a condition that is one test.
fn root_text(e: &Expr, t: &Text) -> String {
    span(e).map_or_else(|| t.text.trim().to_owned(), |s| slice(t, s))
}

fn part<E: Extract + ?Sized>(
    checker: &mut Checker,
    e: &Expr,
    text: &Text,
    ex: &E,
    depth: usize,
) -> Result<Explained, String> {
    let checked = checker.check_expr(e, text).map_err(|e| e.message)?;
    let held = run(&checked, ex)?;
    let label = span(e).map_or_else(String::new, |s| slice(text, s));
    let mut out = Explained {
        text: label,
        held,
        values: Vec::new(),
        children: Vec::new(),
    };
    match e {
        Expr::And(v) | Expr::Or(v) => {
            for x in v {
                out.children.push(part(checker, x, text, ex, depth)?);
            }
        }
        Expr::Not(x) => {
            let inner = part(checker, x, text, ex, depth)?;
            out.text = format!("not {}", inner.text);
            out.values = inner.values;
            out.children = inner.children;
        }
        Expr::Macro(name, _) if depth < MAX_DEPTH => {
            if let Some(def) = checker.collected_macro(name) {
                let body = Checker::parse(&def.condition).map_err(|e| e.message)?;
                let inner = part(checker, &body, &def.condition, ex, depth + 1)?;
                out.children = if inner.children.is_empty() {
                    vec![inner]
                } else {
                    inner.children
                };
            }
        }
        Expr::Macro(..) => {}
        Expr::Check(_) => out.values = values(&checked, ex),
    }
    Ok(out)
}

/// Evaluates a checked condition alone.
fn run<E: Extract + ?Sized>(c: &CExpr, ex: &E) -> Result<bool, String> {
    let mut slots = Slots::default();
    let node = compile::compile(&types::fold(c.clone()), &mut slots).map_err(|e| e.0)?;
    let mut cache = Cache::new();
    Ok(eval(&node, &slots.list, ex, &mut cache))
}

/// `field = value` of the fields a test compares.
fn values<E: Extract + ?Sized>(c: &CExpr, ex: &E) -> Vec<String> {
    let CExpr::Cmp(cmp) = c else {
        return Vec::new();
    };
    let name = crate::fields::FieldDef::get(cmp.lhs.field).name;
    let arg = match &cmp.lhs.arg {
        crate::fields::FieldArg::None => String::new(),
        crate::fields::FieldArg::Index(i) => format!("[{i}]"),
        crate::fields::FieldArg::Key(k) => format!("[{k}]"),
    };
    let value = ex
        .extract(cmp.lhs.field, &cmp.lhs.arg)
        .map_or_else(|| "<NA>".into(), |v| v.display());
    vec![format!("{name}{arg} = {value}")]
}

/// The source range of a part.
fn span(e: &Expr) -> Option<Span> {
    let join = |a: Option<Span>, b: Option<Span>| match (a, b) {
        (Some(a), Some(b)) => Some(Span {
            start: a.start.min(b.start),
            end: a.end.max(b.end),
        }),
        (a, b) => a.or(b),
    };
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().map(span).fold(None, join),
        Expr::Not(x) => span(x),
        Expr::Macro(_, s) => Some(*s),
        Expr::Check(c) => {
            let rhs = match &c.rhs {
                Rhs::None => None,
                Rhs::Value(l) => Some(l.span),
                Rhs::List(_, s) | Rhs::ListRef(_, s) => Some(*s),
                Rhs::Field(o) => Some(o.span()),
            };
            join(join(Some(c.lhs.span()), Some(c.op_span)), rhs)
        }
    }
}

fn slice(t: &Text, s: Span) -> String {
    let text = t.text.get(s.start..s.end).unwrap_or_default();
    // A quoted value's span may stop before its closing quote.
    let quote = t.text[s.end.min(t.text.len())..].chars().next();
    let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(q @ ('"' | '\'')) = quote
        && out.matches(q).count() % 2 == 1
    {
        out.push(q);
    }
    // A part's span stops at its last token: close what it opened.
    let open = out.matches('(').count();
    let close = out.matches(')').count();
    if open > close {
        out.push_str(&")".repeat(open - close));
    } else if close > open {
        out = format!("{}{out}", "(".repeat(close - open));
    }
    out
}
