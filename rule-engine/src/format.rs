//! Rule output formats: `%field`, `%field[arg]`, `%evt.arg.name`,
//! `%tolower(field)`. A missing value renders as `<NA>` in the text and as
//! `null` in the output fields, as in Falco.

use crate::{
    check::{Checker, Lhs},
    collect::Text,
    compile::{Operand, Slots},
    diag::Pos,
    eval::{Cache, Extract, operand},
    fields::{Field, FieldArg, FieldType},
    syntax::{self, Expr},
    value::Value,
};

/// A typed output field value.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputValue {
    Missing,
    Str(String),
    Int(i64),
    Bool(bool),
}

impl OutputValue {
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.render_to(&mut s);
        s
    }

    /// Appends the text form (`<NA>` when missing) to `out`.
    pub fn render_to(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            OutputValue::Missing => out.push_str("<NA>"),
            OutputValue::Str(s) => out.push_str(s),
            OutputValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            OutputValue::Bool(b) => {
                let _ = write!(out, "{b}");
            }
        }
    }
}

#[derive(Debug)]
enum Piece {
    Text(String),
    Field {
        name: String,
        operand: Operand,
        ty: FieldType,
        /// The first use of this field in the format: it goes in the
        /// output fields (later ones only in the text).
        first: bool,
    },
}

/// A compiled output format.
#[derive(Debug)]
pub struct Format {
    pieces: Vec<Piece>,
    /// Room for a typical rendered message, reserved up front.
    capacity: usize,
    fields: usize,
    /// `append_output`'s `extra_fields`: in the output fields only.
    extra: Vec<(String, Format)>,
}

/// A rendered output: the message and each field's value, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub message: String,
    pub fields: Vec<(String, OutputValue)>,
}

fn is_field_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

impl Format {
    /// Parses `text`; unknown fields are errors at their position.
    pub fn parse(
        text: &Text,
        checker: &mut Checker,
        slots: &mut Slots,
    ) -> Result<Self, (usize, Pos, String)> {
        let s = text.text.trim();
        // Falco's leading `*` (print even with missing values) means nothing here.
        let s = s.strip_prefix('*').unwrap_or(s);
        let base = text.text.find(s).unwrap_or(0);
        let b = s.as_bytes();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' || !b.get(i + 1).is_some_and(|&c| c.is_ascii_alphabetic()) {
                let ch = s[i..].chars().next().unwrap_or(' ');
                lit.push(ch);
                i += ch.len_utf8();
                continue;
            }
            let start = i + 1;
            let mut j = start;
            while j < b.len() && is_field_char(b[j]) {
                j += 1;
            }
            // A transformer call: `%tolower(proc.name)`.
            let closer = match b.get(j) {
                Some(b'(') => Some(')'),
                Some(b'[') => Some(']'),
                _ => None,
            };
            if let Some(c) = closer
                && let Some(close) = s[j..].find(c)
            {
                j += close + 1;
            }
            // A sentence-ending dot is not part of the field name.
            let mut end = j;
            while end > start && b[end - 1] == b'.' {
                end -= 1;
            }
            let spec = &s[start..end];
            let (operand, ty) = resolve(spec, checker, slots).map_err(|m| {
                let (file, pos) = text.locate(base + start);
                (file, pos, m)
            })?;
            if !lit.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Field {
                name: spec.to_owned(),
                operand,
                ty,
                first: false,
            });
            i = end;
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        let mut f = Self {
            pieces,
            capacity: 0,
            fields: 0,
            extra: Vec::new(),
        };
        f.measure();
        Ok(f)
    }

    /// Marks each field's first use and sizes the rendering.
    fn measure(&mut self) {
        let (mut capacity, mut fields) = (0, 0);
        let mut seen = std::collections::HashSet::new();
        for p in &mut self.pieces {
            match p {
                Piece::Text(t) => capacity += t.len(),
                Piece::Field { name, first, .. } => {
                    *first = seen.insert(name.clone());
                    capacity += 32;
                    fields += usize::from(*first);
                }
            }
        }
        self.capacity = capacity;
        self.fields = fields + self.extra.len();
    }

    /// The field of a format that is one field and nothing else.
    pub(crate) fn lone_field(&self) -> Option<(&Operand, FieldType)> {
        match self.pieces.as_slice() {
            [Piece::Field { operand, ty, .. }] => Some((operand, *ty)),
            _ => None,
        }
    }

    /// `append_output`: `text` after the message (a space between), and
    /// `fields` in the output fields only.
    pub(crate) fn append(&mut self, text: Option<Format>, fields: Vec<(String, Format)>) {
        if let Some(t) = text {
            self.pieces.push(Piece::Text(" ".into()));
            self.pieces.extend(t.pieces);
        }
        for (name, f) in fields {
            let shown = self
                .pieces
                .iter()
                .any(|p| matches!(p, Piece::Field { name: n, .. } if *n == name));
            if !shown && !self.extra.iter().any(|(n, _)| *n == name) {
                self.extra.push((name, f));
            }
        }
        self.measure();
    }

    /// The slots of the fields the format shows.
    pub(crate) fn slots(&self) -> Vec<u16> {
        let mut out: Vec<u16> = self
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Field { operand, .. } => Some(operand.slot),
                Piece::Text(_) => None,
            })
            .collect();
        out.extend(self.extra.iter().flat_map(|(_, f)| f.slots()));
        out
    }

    /// Renders with the event's values.
    pub fn render<'e, E: Extract + ?Sized>(
        &self,
        slots: &[(Field, FieldArg)],
        ex: &'e E,
        cache: &mut Cache<'e>,
    ) -> Rendered {
        let mut message = String::with_capacity(self.capacity);
        let mut fields: Vec<(String, OutputValue)> = Vec::with_capacity(self.fields);
        for p in &self.pieces {
            match p {
                Piece::Text(t) => message.push_str(t),
                Piece::Field {
                    name,
                    operand: o,
                    ty,
                    first,
                } => {
                    let v = operand(o, slots, ex, cache)
                        .map_or(OutputValue::Missing, |v| output_value(&v, *ty));
                    v.render_to(&mut message);
                    if *first {
                        fields.push((name.clone(), v));
                    }
                }
            }
        }
        for (name, f) in &self.extra {
            let v = match f.lone_field() {
                Some((o, ty)) => operand(o, slots, ex, cache)
                    .map_or(OutputValue::Missing, |v| output_value(&v, ty)),
                None => OutputValue::Str(f.render(slots, ex, cache).message),
            };
            fields.push((name.clone(), v));
        }
        // Falco trims the text; most formats need no copy for it.
        let trimmed = message.trim();
        if trimmed.len() != message.len() {
            message = trimmed.to_owned();
        }
        Rendered { message, fields }
    }
}

fn output_value(v: &Value, ty: FieldType) -> OutputValue {
    match (v, ty) {
        (Value::Int(i), _) => OutputValue::Int(*i),
        (Value::Bool(b), _) => OutputValue::Bool(*b),
        (other, _) => OutputValue::Str(other.display()),
    }
}

/// Resolves `proc.name`, `proc.aname[2]`, `tolower(proc.name)`.
fn resolve(
    spec: &str,
    checker: &mut Checker,
    slots: &mut Slots,
) -> Result<(Operand, FieldType), String> {
    let parsed = syntax::parse(&format!("{spec} exists"))
        .map_err(|_| format!("`%{spec}` is not a field"))?;
    let Expr::Check(c) = parsed else {
        return Err(format!("`%{spec}` is not a field"));
    };
    let lhs: Lhs = checker
        .output_lhs(&c.lhs)
        .map_err(|m| format!("output: {m}"))?;
    Ok((
        Operand {
            slot: slots.slot(lhs.field, &lhs.arg),
            transforms: lhs.transforms.clone().into_boxed_slice(),
        },
        lhs.ty,
    ))
}
