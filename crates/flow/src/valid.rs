//! The checked form of a flow ([`ValidFlow`]) and the entry points that produce it.
//!
//! NOTE: parse_flow/validate are minimal placeholders until the validation work lands.

use crate::diagnostic::{Diagnostic, Severity, TextLocation};
use crate::ids::BlockId;
use crate::model::{Block, FlowDocument};
use std::collections::HashMap;

/// Reads flow JSON text. On failure returns diagnostics (with line and column for syntax errors).
pub fn parse_flow(text: &str) -> Result<FlowDocument, Vec<Diagnostic>> {
    serde_json::from_str(text).map_err(|err| {
        vec![Diagnostic {
            code: "invalid-json".into(),
            severity: Severity::Error,
            pointer: String::new(),
            message: err.to_string(),
            hint: None,
            location: Some(TextLocation {
                line: err.line(),
                column: err.column(),
            }),
        }]
    })
}

/// Checks a document against every validation rule and returns all problems found.
pub fn validate(_doc: &FlowDocument) -> Vec<Diagnostic> {
    Vec::new()
}

/// A flow document that passed validation without errors, indexed for the runtime.
#[derive(Debug, Clone)]
pub struct ValidFlow {
    document: FlowDocument,
    index: HashMap<BlockId, usize>,
    warnings: Vec<Diagnostic>,
}

impl ValidFlow {
    /// Validates `document`; returns the checked flow (keeping warnings) or every diagnostic
    /// when at least one is an error.
    pub fn new(document: FlowDocument) -> Result<Self, Vec<Diagnostic>> {
        let diagnostics = validate(&document);
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(diagnostics);
        }
        let index = document
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.clone(), i))
            .collect();
        Ok(Self {
            document,
            index,
            warnings: diagnostics,
        })
    }

    /// The document as written.
    pub fn document(&self) -> &FlowDocument {
        &self.document
    }

    /// The block with this id.
    pub fn block(&self, id: &BlockId) -> Option<&Block> {
        self.index
            .get(id)
            .and_then(|&i| self.document.blocks.get(i))
    }

    /// The start block (always present in a valid flow).
    pub fn start(&self) -> Option<&Block> {
        self.block(&self.document.start)
    }

    /// Warnings found by validation.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
}
