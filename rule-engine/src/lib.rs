//! mamori's rule engine: Falco's rules language, loaded, checked, compiled
//! and evaluated. Pure: no I/O, no kernel, no async; events arrive through
//! the [`Extract`] trait.
//!
//! Stages, each named by what it produces:
//! YAML text → [`yaml::Node`] → [`spec::Item`] → [`collect::Collected`]
//! (append/override applied) → [`check::CExpr`] (macros, lists, fields,
//! types resolved) → [`compile::Node`] (indexed by event type) → [`RuleSet`].

pub mod append;
pub mod check;
pub mod collect;
pub mod compile;
pub mod diag;
pub mod eval;
pub mod except;
pub mod explain;
pub mod fields;
pub mod fill;
pub mod format;
pub mod guard;
pub mod prefilter;
pub mod priority;
pub mod spec;
pub mod syntax;
pub mod types;
pub mod value;
pub mod yaml;

mod ruleset;

pub use append::{AppendOutput, ExtraField};
pub use diag::{Diagnostic, Severity, SourceFile};
pub use eval::{Cache, Extract};
pub use fields::{Field, FieldArg, FieldClass};
pub use format::{OutputValue, Rendered};
pub use priority::Priority;
pub use ruleset::{LoadResult, MatchMode, Rule, RuleSet, Stats, load};
pub use value::Value;
