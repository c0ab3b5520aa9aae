//! Problems found in desired state, each with the `path:line:col` it is about.

use std::fmt;
use std::io::{self, Write};

use serde::Serialize;

use crate::model::{SourceMap, Span};

/// How serious a problem is: errors stop everything, warnings are reported and allowed.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The desired state cannot be used.
    Error,
    /// Suspicious but usable.
    Warning,
}

/// One problem at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is.
    pub span: Span,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, lower case, no trailing period.
    pub message: String,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    /// Whether this is an error.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Most diagnostics printed as text in one run.
pub const MAX_TEXT_LINES: usize = 1000;

/// Diagnostics together with the files they point into, sorted by path, line and column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    sources: SourceMap,
    diagnostics: Vec<Diagnostic>,
}

/// `validate --format json`: whether the directory is valid, what it holds, and every
/// diagnostic, versioned (`schemas/validate.schema.json`).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ValidateDocument {
    /// Format version, 1.
    pub version: u32,
    /// Whether the directory loaded without errors (warnings allowed).
    pub valid: bool,
    /// Objects per kind; `null` when the directory is invalid.
    pub counts: Option<super::Counts>,
    /// Every error and warning, in file order.
    pub diagnostics: Vec<JsonDiagnostic>,
}

/// One diagnostic in machine-readable form (`validate --format json`).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct JsonDiagnostic {
    /// File path as given on the command line (joined with the file's place under it).
    pub path: Option<String>,
    /// 1-based line, 0 for whole-file problems.
    pub line: u32,
    /// 1-based column, 0 for whole-file problems.
    pub column: u32,
    /// `error` or `warning`.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
}

impl Report {
    /// Sorts the diagnostics and keeps them with their source map.
    #[must_use]
    pub fn new(sources: SourceMap, mut diagnostics: Vec<Diagnostic>) -> Report {
        diagnostics.sort_by(|a, b| {
            let pa = sources.path(a.span.file);
            let pb = sources.path(b.span.file);
            (pa, a.span.line, a.span.col, &a.message).cmp(&(
                pb,
                b.span.line,
                b.span.col,
                &b.message,
            ))
        });
        diagnostics.dedup();
        Report {
            sources,
            diagnostics,
        }
    }

    /// The diagnostics, sorted.
    #[must_use]
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The files the diagnostics point into.
    #[must_use]
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// Number of errors.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Number of distinct files with at least one error.
    #[must_use]
    pub fn files_with_errors(&self) -> usize {
        let mut files: Vec<_> = self
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.span.file)
            .collect();
        files.sort_unstable();
        files.dedup();
        files.len()
    }

    /// Writes one line per diagnostic: `path:line:col: message` for errors and
    /// `path:line:col: warning: message` for warnings. Past [`MAX_TEXT_LINES`] the rest is
    /// counted rather than printed (the JSON form always has everything).
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for d in self.diagnostics.iter().take(MAX_TEXT_LINES) {
            writeln!(out, "{}", self.line(d))?;
        }
        if self.diagnostics.len() > MAX_TEXT_LINES {
            let more = self.diagnostics.len() - MAX_TEXT_LINES;
            writeln!(
                out,
                "... and {more} more (`scimctl validate --format json` lists them all)"
            )?;
        }
        Ok(())
    }

    /// The text form of one diagnostic.
    #[must_use]
    pub fn line(&self, d: &Diagnostic) -> String {
        let location = self.sources.locate(d.span);
        let location = crate::model::escape(&location.to_string()).into_owned();
        let message = crate::model::escape_lines(&d.message);
        match d.severity {
            Severity::Error => format!("{location}: {message}"),
            Severity::Warning => format!("{location}: warning: {message}"),
        }
    }

    /// The diagnostics in machine-readable form.
    #[must_use]
    pub fn to_json(&self) -> Vec<JsonDiagnostic> {
        self.diagnostics
            .iter()
            .map(|d| JsonDiagnostic {
                path: self
                    .sources
                    .path(d.span.file)
                    .map(|p| p.display().to_string()),
                line: d.span.line,
                column: d.span.col,
                severity: d.severity,
                message: d.message.clone(),
            })
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{}", self.line(d))?;
        }
        Ok(())
    }
}
