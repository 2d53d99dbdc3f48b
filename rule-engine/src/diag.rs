//! Diagnostics: errors and warnings with file, line and column, and the
//! offending source line for display.

use std::fmt;

use serde::Serialize;

/// A position in a rules file. Lines and columns count from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found while loading rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    #[serde(skip)]
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    /// The item it concerns (`rule 'x'`, `macro 'y'`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The source line, for display.
    #[serde(skip)]
    pub snippet: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {kind}: ", self.file, self.line, self.column)?;
        if let Some(item) = &self.item {
            write!(f, "{item}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(line) = &self.snippet {
            let caret = " ".repeat(self.column.saturating_sub(1) as usize);
            write!(f, "\n    {line}\n    {caret}^")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one load.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub fn push(
        &mut self,
        severity: Severity,
        src: &SourceFile,
        pos: Pos,
        item: Option<String>,
        message: impl Into<String>,
    ) {
        self.list.push(Diagnostic {
            severity,
            file: src.name.clone(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
            item,
            snippet: src.line(pos.line).map(str::to_owned),
        });
    }

    pub fn error(
        &mut self,
        src: &SourceFile,
        pos: Pos,
        item: Option<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, src, pos, item, message);
    }

    pub fn warn(
        &mut self,
        src: &SourceFile,
        pos: Pos,
        item: Option<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, src, pos, item, message);
    }
}

/// A rules file's name and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The 1-based `line`, without its newline.
    pub fn line(&self, line: u32) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)? as usize)
    }
}
