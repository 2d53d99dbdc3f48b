//! Condition syntax tree. Spans are byte ranges of the condition text.

/// A byte range of the condition text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A bare identifier: a macro reference.
    Macro(String, Span),
    Check(Box<Check>),
}

/// `lhs op rhs`, or `lhs exists`.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub lhs: Operand,
    pub op: Op,
    pub modifier: Option<Modifier>,
    pub rhs: Rhs,
    /// Where the operator is.
    pub op_span: Span,
}

/// A field, possibly under transformers: `tolower(proc.name)`.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Field {
        /// As written, e.g. `proc.aname`, `evt.arg.flags`.
        name: String,
        /// The text inside `[...]`, if any.
        arg: Option<String>,
        span: Span,
    },
    Transform {
        name: String,
        inner: Box<Operand>,
        span: Span,
    },
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Field { span, .. } | Operand::Transform { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Rhs {
    /// `exists` takes nothing.
    None,
    Value(Literal),
    /// `(a, b, c)`; elements may name lists.
    List(Vec<Literal>, Span),
    /// `in list_name` without parentheses.
    ListRef(String, Span),
    /// `val(field)`: compare with another field.
    Field(Operand),
}

/// A value as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub text: String,
    pub quoted: bool,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    In,
    Intersects,
    PMatch,
    Glob,
    IGlob,
    Regex,
    Exists,
}

impl Op {
    pub const WORDS: &'static [(&'static str, Op)] = &[
        ("contains", Op::Contains),
        ("icontains", Op::IContains),
        ("bcontains", Op::BContains),
        ("startswith", Op::StartsWith),
        ("bstartswith", Op::BStartsWith),
        ("endswith", Op::EndsWith),
        ("intersects", Op::Intersects),
        ("in", Op::In),
        ("pmatch", Op::PMatch),
        ("glob", Op::Glob),
        ("iglob", Op::IGlob),
        ("regex", Op::Regex),
        ("exists", Op::Exists),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            _ => Self::WORDS
                .iter()
                .find(|(_, o)| *o == self)
                .map_or("?", |(w, _)| w),
        }
    }

    /// Takes a list on the right.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

/// `anyof`/`allof`/`oneof` after a string operator: the right side is a
/// list and at least one / all / exactly one element must satisfy it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modifier {
    AnyOf,
    AllOf,
    OneOf,
}
