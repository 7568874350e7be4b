//! Validation problems as values: a stable code, a severity, a JSON Pointer and a message.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How serious a problem is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The flow may run but probably not as meant.
    Warning,
    /// The flow cannot be published.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// One problem found in a flow document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Diagnostic {
    /// Stable code, e.g. `dangling-target`; see [`crate::codes`].
    pub code: String,
    /// Error or warning.
    pub severity: Severity,
    /// JSON Pointer (RFC 6901) of the value at fault, e.g. `/blocks/3/messages/1/title`.
    pub pointer: String,
    /// What is wrong, for a person.
    pub message: String,
    /// How to fix it, when there is a useful hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// 1-based line and column, for problems found while reading the JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<TextLocation>,
}

/// A 1-based line and column in the JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TextLocation {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl Diagnostic {
    /// A diagnostic with `code`'s severity from [`crate::codes::ALL`] (error for an unlisted code).
    pub fn new(code: &str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            severity: crate::codes::severity_of(code).unwrap_or(Severity::Error),
            pointer: pointer.into(),
            message: message.into(),
            hint: None,
            location: None,
        }
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this diagnostic blocks publishing.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Renders a diagnostic the way the CLI prints it, rustc-like:
/// `file:pointer: error[code]: message`, then `  = hint: ...` when there is a hint.
/// Syntax errors show `file:line:column` instead of the (empty) pointer.
pub fn render_human(file: &str, diagnostic: &Diagnostic) -> String {
    let place = match (&diagnostic.location, diagnostic.pointer.as_str()) {
        (Some(at), _) => format!("{file}:{}:{}", at.line, at.column),
        (None, "") => file.to_owned(),
        (None, pointer) => format!("{file}:{pointer}"),
    };
    let mut out = format!(
        "{place}: {}[{}]: {}",
        diagnostic.severity, diagnostic.code, diagnostic.message
    );
    if let Some(hint) = &diagnostic.hint {
        out.push_str("\n  = hint: ");
        out.push_str(hint);
    }
    out
}

/// Sorts diagnostics by where they point, in document order (array indices compared as numbers,
/// the root first); diagnostics at the same place keep the order the checks found them in.
pub fn sort_by_pointer(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| compare_pointers(&a.pointer, &b.pointer));
}

fn compare_pointers(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.split('/').skip(1), b.split('/').skip(1));
    loop {
        let (x, y) = match (a.next(), b.next()) {
            (Some(x), Some(y)) => (x, y),
            (x, y) => return x.is_some().cmp(&y.is_some()),
        };
        let order = match (x.parse::<usize>(), y.parse::<usize>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
}

/// Escapes one reference token of a JSON Pointer (`~` → `~0`, `/` → `~1`).
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
