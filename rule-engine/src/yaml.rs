//! YAML documents as a small tree that keeps positions: every scalar knows
//! where each of its characters came from, so an error inside a condition
//! (even a folded multi-line one) points at the right line and column.
//! libyaml-safer parses; the tree is built here because serde-based YAML
//! crates keep no per-character positions, which rules errors need.

use libyaml_safer::{EventData, Mark, Parser, ScalarStyle};

use crate::diag::Pos;

/// A scalar: its text and where it came from.
#[derive(Clone, Debug)]
pub struct Scalar {
    pub text: String,
    pub pos: Pos,
    /// Quoted in the source (so `true`, `1` are strings, not bool/int).
    pub quoted: bool,
    /// `(byte offset in text, position)` at the start of each source line.
    segments: Vec<(usize, Pos)>,
}

impl Scalar {
    /// Position of byte `offset` of the text.
    pub fn pos_at(&self, offset: usize) -> Pos {
        let Some(&(start, pos)) = self.segments.iter().rev().find(|(s, _)| *s <= offset) else {
            return self.pos;
        };
        let chars = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(0, |s| s.chars().count());
        Pos {
            line: pos.line,
            column: pos.column + chars as u32,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Node {
    Scalar(Scalar),
    Seq(Vec<Node>, Pos),
    Map(Vec<(Scalar, Node)>, Pos),
}

impl Node {
    pub fn pos(&self) -> Pos {
        match self {
            Node::Scalar(s) => s.pos,
            Node::Seq(_, p) | Node::Map(_, p) => *p,
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// A human name of the node's kind, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Scalar(_) => "a scalar",
            Node::Seq(..) => "a list",
            Node::Map(..) => "a mapping",
        }
    }
}

/// A YAML syntax error.
#[derive(Debug)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses every document of `text` with libyaml (the same leniency as the
/// YAML parsers Falco's ecosystem uses).
///
/// NB: libyaml-safer 0.3 panics on some malformed tags (`[!a,b]` reaches a
/// `panic!("TODO")` in its scanner). A rules file is untrusted input, so
/// the parse is isolated: a panic becomes an error at the last position
/// parsed, and the agent keeps running.
pub fn parse(text: &str) -> Result<Vec<Node>, YamlError> {
    let last = std::cell::Cell::new(Pos { line: 1, column: 1 });
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_events(text, &last)));
    result.unwrap_or_else(|_| {
        Err(YamlError {
            pos: last.get(),
            message: "the YAML parser failed on this input (a malformed tag?)".into(),
        })
    })
}

fn parse_events(text: &str, last: &std::cell::Cell<Pos>) -> Result<Vec<Node>, YamlError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let mut docs = Vec::new();
    // Open collections: (node being built, pending key of a mapping).
    let mut stack: Vec<(Node, Option<Scalar>)> = Vec::new();
    loop {
        let event = parser.parse().map_err(|e| YamlError {
            pos: e
                .problem_mark()
                .map_or(Pos { line: 1, column: 1 }, |m| mark_pos(&m)),
            message: match e.context() {
                Some(c) => format!("{} {}", e.problem(), c),
                None => e.problem().to_owned(),
            },
        })?;
        let pos = mark_pos(&event.start_mark);
        last.set(pos);
        let done = match event.data {
            EventData::StreamEnd => break,
            EventData::StreamStart { .. }
            | EventData::DocumentStart { .. }
            | EventData::DocumentEnd { .. } => None,
            EventData::Alias { .. } => {
                return Err(YamlError {
                    pos,
                    message: "YAML aliases are not supported in rules files".into(),
                });
            }
            EventData::Scalar { value, style, .. } => Some(Node::Scalar(scalar(
                value,
                style,
                &event.start_mark,
                &event.end_mark,
                &lines,
            ))),
            EventData::SequenceStart { .. } | EventData::MappingStart { .. } => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: format!("nested more than {MAX_DEPTH} levels"),
                    });
                }
                let node = if matches!(event.data, EventData::SequenceStart { .. }) {
                    Node::Seq(Vec::new(), pos)
                } else {
                    Node::Map(Vec::new(), pos)
                };
                stack.push((node, None));
                None
            }
            EventData::SequenceEnd | EventData::MappingEnd => stack.pop().map(|(n, _)| n),
        };
        let Some(node) = done else { continue };
        match stack.last_mut() {
            None => docs.push(node),
            Some((Node::Seq(items, _), _)) => items.push(node),
            Some((Node::Map(entries, _), key)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => match node {
                    Node::Scalar(s) => *key = Some(s),
                    other => {
                        return Err(YamlError {
                            pos: other.pos(),
                            message: "mapping keys must be plain strings".into(),
                        });
                    }
                },
            },
            Some((Node::Scalar(_), _)) => {}
        }
    }
    Ok(docs)
}

/// Bound on nesting, so a hostile file cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

fn mark_pos(m: &Mark) -> Pos {
    Pos {
        line: m.line as u32 + 1,
        column: m.column as u32 + 1,
    }
}

/// Builds the line map of a scalar: each source line's content is found in
/// the text in order (folding joins lines and may keep extra indentation,
/// so offsets are searched, not computed).
fn scalar(text: String, style: ScalarStyle, start: &Mark, end: &Mark, lines: &[&str]) -> Scalar {
    let quoted = matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted);
    let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
    let first_line = start.line as u32 + 1;
    let start_pos = Pos {
        line: first_line,
        column: start.column as u32 + 1 + u32::from(quoted),
    };
    let mut segments = Vec::new();
    let mut offset = 0usize;
    if !block {
        segments.push((0, start_pos));
    }
    let last_line = end.line as u32 + 1;
    for line in (first_line + 1)..=last_line {
        let src = lines.get(line as usize - 1).copied().unwrap_or_default();
        let indent = src.len() - src.trim_start().len();
        let mut content = src.trim();
        if let Some(i) = content.find(" #") {
            content = &content[..i];
        }
        if quoted {
            content = content.trim_end_matches(['\'', '"']);
        }
        if content.is_empty() {
            continue;
        }
        if let Some(k) = text.get(offset..).and_then(|t| t.find(content)) {
            segments.push((
                offset + k,
                Pos {
                    line,
                    column: indent as u32 + 1,
                },
            ));
            offset += k + content.len();
        }
    }
    if segments.is_empty() {
        segments.push((0, start_pos));
    }
    Scalar {
        text,
        pos: segments[0].1,
        quoted,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_map(text: &str) -> Vec<(Scalar, Node)> {
        let docs = parse(text).unwrap();
        let Node::Seq(items, _) = &docs[0] else {
            panic!()
        };
        let Node::Map(m, _) = &items[0] else { panic!() };
        m.clone()
    }

    fn value<'a>(m: &'a [(Scalar, Node)], key: &str) -> &'a Scalar {
        m.iter()
            .find(|(k, _)| k.text == key)
            .unwrap()
            .1
            .as_scalar()
            .unwrap()
    }

    #[test]
    fn plain_scalar_positions() {
        let m = first_map("- macro: m\n  condition: proc.name = bash\n");
        let c = value(&m, "condition");
        assert_eq!(
            c.pos,
            Pos {
                line: 2,
                column: 14
            }
        );
        let off = c.text.find("bash").unwrap();
        assert_eq!(
            c.pos_at(off),
            Pos {
                line: 2,
                column: 26
            }
        );
    }

    #[test]
    fn folded_scalar_positions_follow_source_lines() {
        let text = "- rule: r\n  condition: >\n    evt.type = open\n      and proc.name = bash\n";
        let m = first_map(text);
        let c = value(&m, "condition");
        assert_eq!(c.text, "evt.type = open\n  and proc.name = bash\n");
        let off = c.text.find("bash").unwrap();
        let p = c.pos_at(off);
        assert_eq!(p.line, 4);
        assert_eq!(
            &text.lines().nth(3).unwrap()[p.column as usize - 1..],
            "bash"
        );
    }

    #[test]
    fn quoted_scalars_are_marked() {
        let m = first_map("- list: l\n  items: ['a b', \"c\", d]\n  x: 'true'\n");
        assert!(value(&m, "x").quoted);
        let Node::Seq(items, _) = &m.iter().find(|(k, _)| k.text == "items").unwrap().1 else {
            panic!()
        };
        assert_eq!(items[0].as_scalar().unwrap().text, "a b");
    }

    #[test]
    fn a_parser_panic_is_an_error() {
        let e = parse("- rule: r\n  tags: [!a,b]\n").unwrap_err();
        assert!(e.message.contains("parser failed"), "{e:?}");
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("- rule: x\n  desc: [unclosed\n").unwrap_err();
        assert!(e.pos.line >= 2, "{e:?}");
    }
}
