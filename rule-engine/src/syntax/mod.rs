//! The condition language: AST and parser.

pub mod ast;
pub mod parser;

pub use ast::*;
pub use parser::{ParseError, parse, quoted_literal};
