//! A hand-written recursive-descent parser for Falco conditions.
//!
//! ```text
//! expr      = or
//! or        = and { "or" and }
//! and       = not { "and" not }
//! not       = "not" not | primary
//! primary   = "(" expr ")" | check | macro
//! check     = operand ( "exists" | cmp_op value | str_op [modifier] list
//!                     | list_op list | str_op value )
//! operand   = field | transformer "(" operand ")"
//! field     = name [ "[" arg "]" ]          ; name has at least one dot
//! list      = "(" [ value { "," value } ] ")" | identifier
//! value     = quoted | "val(" operand ")" | bare
//! bare      = 1*( any char but space, ( ) , = " ' )
//! ```
//!
//! Keywords `and`, `or`, `not` are lower case and end at a delimiter.
//! Operators need no surrounding spaces (`fd.num>=0`). Bare values may hold
//! brackets and colons (`runc:[0:PARENT]`). Nesting is bounded.

use super::ast::*;

/// Deepest nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 200;

/// Transformers that may wrap a field.
pub const TRANSFORMERS: &[&str] = &["tolower", "toupper", "b64", "basename", "len"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the condition.
    pub offset: usize,
    pub message: String,
}

pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        depth: 0,
    };
    p.ws();
    if p.at_end() {
        return Err(p.err("empty condition"));
    }
    let e = p.or()?;
    p.ws();
    if !p.at_end() {
        let found = p.peek_token();
        return Err(p.err(format!(
            "unexpected `{found}` after a complete condition (missing `and`/`or`?)"
        )));
    }
    Ok(e)
}

/// Reads `text` as one condition literal when it is entirely a quoted
/// string (list items are spliced into conditions as written, so an item
/// `"a b"` is the quoted value `a b`). `None` for anything else.
pub fn quoted_literal(text: &str) -> Option<Literal> {
    let t = text.trim();
    if !(t.starts_with('"') || t.starts_with('\'')) {
        return None;
    }
    let mut p = Parser {
        s: t.as_bytes(),
        text: t,
        pos: 0,
        depth: 0,
    };
    let lit = p.literal().ok()?;
    p.at_end().then_some(lit)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_field_char(c: u8) -> bool {
    is_word(c) || c == b'.' || c == b'-'
}

fn is_bare_stop(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'(' | b')' | b',' | b'=' | b'"' | b'\'')
}

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// A short view of what is at the cursor, for messages.
    fn peek_token(&self) -> String {
        let rest = &self.text[self.pos.min(self.text.len())..];
        let end = rest
            .char_indices()
            .find(|(i, c)| *i > 0 && (c.is_whitespace() || *c == '(' || *c == ')'))
            .map_or(rest.len(), |(i, _)| i);
        let mut cut = end.min(40);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        rest[..cut].to_owned()
    }

    /// Consumes keyword `kw` if it is at the cursor as a whole word.
    fn keyword(&mut self, kw: &str) -> bool {
        let end = self.pos + kw.len();
        if self.s.get(self.pos..end) == Some(kw.as_bytes())
            && !self.s.get(end).copied().is_some_and(is_field_char)
        {
            self.pos = end;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("condition nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.and()?];
        loop {
            self.ws();
            if self.keyword("or") {
                self.ws();
                items.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.not()?];
        loop {
            self.ws();
            if self.keyword("and") {
                self.ws();
                items.push(self.not()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        if self.keyword("not") {
            self.enter()?;
            self.ws();
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        match self.peek() {
            None => Err(self.err("condition ends where a check was expected")),
            Some(b'(') => {
                let open = self.pos;
                self.pos += 1;
                self.enter()?;
                let e = self.or()?;
                self.depth -= 1;
                self.ws();
                if self.peek() != Some(b')') {
                    return Err(ParseError {
                        offset: open,
                        message: if self.at_end() {
                            "unbalanced parenthesis: `(` is never closed".into()
                        } else {
                            format!("expected `)` but found `{}`", self.peek_token())
                        },
                    });
                }
                self.pos += 1;
                Ok(e)
            }
            Some(b')') => Err(self.err("unexpected `)`: a check or `(` was expected")),
            Some(c) if is_word(c) => self.check_or_macro(),
            Some(_) => Err(self.err(format!(
                "unexpected `{}`: a field, macro or `(` was expected",
                self.peek_token()
            ))),
        }
    }

    /// Reads `[A-Za-z0-9_.-]+`.
    fn name(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_field_char) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn check_or_macro(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        let word = self.name();
        let is_transformer = TRANSFORMERS.contains(&word) && self.peek() == Some(b'(');
        if !is_transformer && !word.contains('.') && self.peek() != Some(b'[') {
            // A macro, unless an operator follows (a field without a dot).
            let save = self.pos;
            self.ws();
            if self.at_operator() {
                return Err(ParseError {
                    offset: start,
                    message: format!(
                        "`{word}` is not a field name (fields look like `class.name`)"
                    ),
                });
            }
            self.pos = save;
            return Ok(Expr::Macro(
                word.to_owned(),
                Span {
                    start,
                    end: self.pos,
                },
            ));
        }
        self.pos = start;
        let lhs = self.operand()?;
        self.ws();
        let op_start = self.pos;
        let Some(op) = self.operator() else {
            return Err(self.err(if self.at_end() {
                "expected an operator after the field, but the condition ends".to_owned()
            } else {
                format!(
                    "expected an operator (=, !=, in, contains...) but found `{}`",
                    self.peek_token()
                )
            }));
        };
        let op_span = Span {
            start: op_start,
            end: self.pos,
        };
        self.ws();
        let modifier = self.modifier(op);
        let rhs = if op == Op::Exists {
            Rhs::None
        } else if op.takes_list() || modifier.is_some() {
            self.list()?
        } else if self.peek() == Some(b'(') {
            // `=` with a list is an error in Falco too; say so clearly.
            return Err(self.err(format!(
                "`{}` takes a single value, not a list",
                op.as_str()
            )));
        } else {
            self.value_or_field()?
        };
        Ok(Expr::Check(Box::new(Check {
            lhs,
            op,
            modifier,
            rhs,
            op_span,
        })))
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let start = self.pos;
        let word = self.name();
        if word.is_empty() {
            return Err(self.err("expected a field name"));
        }
        if TRANSFORMERS.contains(&word) && self.peek() == Some(b'(') {
            self.pos += 1;
            self.enter()?;
            self.ws();
            let inner = self.operand()?;
            self.depth -= 1;
            self.ws();
            if self.peek() != Some(b')') {
                return Err(self.err(format!("expected `)` to close `{word}(`")));
            }
            self.pos += 1;
            return Ok(Operand::Transform {
                name: word.to_owned(),
                inner: Box::new(inner),
                span: Span {
                    start,
                    end: self.pos,
                },
            });
        }
        let name = word.to_owned();
        let mut arg = None;
        if self.peek() == Some(b'[') {
            let open = self.pos;
            self.pos += 1;
            let arg_start = self.pos;
            while self.peek().is_some_and(|c| c != b']') {
                self.pos += 1;
            }
            if self.at_end() {
                return Err(ParseError {
                    offset: open,
                    message: format!("`[` after `{name}` is never closed"),
                });
            }
            arg = Some(self.text[arg_start..self.pos].to_owned());
            self.pos += 1;
        }
        Ok(Operand::Field {
            name,
            arg,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    fn at_operator(&mut self) -> bool {
        let save = self.pos;
        let found = self.operator().is_some();
        self.pos = save;
        found
    }

    fn operator(&mut self) -> Option<Op> {
        let two = self.s.get(self.pos..self.pos + 2);
        for (sym, op) in [
            (b"==", Op::Eq),
            (b"!=", Op::Ne),
            (b"<=", Op::Le),
            (b">=", Op::Ge),
        ] {
            if two == Some(sym) {
                self.pos += 2;
                return Some(op);
            }
        }
        match self.peek() {
            Some(b'=') => {
                self.pos += 1;
                return Some(Op::Eq);
            }
            Some(b'<') => {
                self.pos += 1;
                return Some(Op::Lt);
            }
            Some(b'>') => {
                self.pos += 1;
                return Some(Op::Gt);
            }
            _ => {}
        }
        Op::WORDS
            .iter()
            .find(|(w, _)| self.keyword(w))
            .map(|(_, op)| *op)
    }

    fn modifier(&mut self, op: Op) -> Option<Modifier> {
        if !matches!(
            op,
            Op::Eq
                | Op::Ne
                | Op::Contains
                | Op::IContains
                | Op::StartsWith
                | Op::EndsWith
                | Op::Glob
                | Op::IGlob
                | Op::Regex
        ) {
            return None;
        }
        for (w, m) in [
            ("anyof", Modifier::AnyOf),
            ("allof", Modifier::AllOf),
            ("oneof", Modifier::OneOf),
        ] {
            let save = self.pos;
            if self.keyword(w) {
                self.ws();
                if self.peek() == Some(b'(') {
                    return Some(m);
                }
                self.pos = save;
            }
        }
        None
    }

    fn list(&mut self) -> Result<Rhs, ParseError> {
        let start = self.pos;
        if self.peek() != Some(b'(') {
            // `in list_name`
            let word = self.name();
            if word.is_empty() {
                return Err(self.err("expected a list: `(a, b)` or a list name"));
            }
            return Ok(Rhs::ListRef(
                word.to_owned(),
                Span {
                    start,
                    end: self.pos,
                },
            ));
        }
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                None => {
                    return Err(ParseError {
                        offset: start,
                        message: "unbalanced parenthesis: the list is never closed".into(),
                    });
                }
                _ => {}
            }
            items.push(self.literal()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {}
                None => {
                    return Err(ParseError {
                        offset: start,
                        message: "unbalanced parenthesis: the list is never closed".into(),
                    });
                }
                Some(_) => {
                    return Err(self.err(format!(
                        "expected `,` or `)` in the list but found `{}`",
                        self.peek_token()
                    )));
                }
            }
        }
        Ok(Rhs::List(
            items,
            Span {
                start,
                end: self.pos,
            },
        ))
    }

    fn value_or_field(&mut self) -> Result<Rhs, ParseError> {
        if self.keyword("val") {
            self.ws();
            if self.peek() != Some(b'(') {
                return Err(self.err("expected `(` after val"));
            }
            self.pos += 1;
            self.ws();
            let f = self.operand()?;
            self.ws();
            if self.peek() != Some(b')') {
                return Err(self.err("expected `)` to close val("));
            }
            self.pos += 1;
            return Ok(Rhs::Field(f));
        }
        Ok(Rhs::Value(self.literal()?))
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let start = self.pos;
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                self.pos += 1;
                let mut out = Vec::new();
                loop {
                    match self.peek() {
                        None => {
                            return Err(ParseError {
                                offset: start,
                                message: "unterminated quoted string".into(),
                            });
                        }
                        Some(c) if c == q => {
                            self.pos += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let esc = self.s.get(self.pos + 1).copied();
                            let c = match esc {
                                Some(b'n') => b'\n',
                                Some(b't') => b'\t',
                                Some(b'r') => b'\r',
                                Some(b'\\') => b'\\',
                                Some(b'"') => b'"',
                                Some(b'\'') => b'\'',
                                _ => {
                                    out.push(b'\\');
                                    self.pos += 1;
                                    continue;
                                }
                            };
                            out.push(c);
                            self.pos += 2;
                        }
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                    }
                }
                Ok(Literal {
                    text: String::from_utf8_lossy(&out).into_owned(),
                    quoted: true,
                    span: Span {
                        start,
                        end: self.pos,
                    },
                })
            }
            Some(c) if !is_bare_stop(c) => {
                while self.peek().is_some_and(|c| !is_bare_stop(c)) {
                    self.pos += 1;
                }
                Ok(Literal {
                    text: self.text[start..self.pos].to_owned(),
                    quoted: false,
                    span: Span {
                        start,
                        end: self.pos,
                    },
                })
            }
            None => Err(self.err("expected a value, but the condition ends")),
            Some(_) => Err(self.err(format!(
                "expected a value but found `{}`",
                self.peek_token()
            ))),
        }
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
