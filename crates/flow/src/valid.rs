//! The checked form of a flow ([`ValidFlow`]): a document without errors, indexed for the runtime.

use crate::check::validate;
use crate::diagnostic::Diagnostic;
use crate::graph::FlowGraph;
use crate::ids::BlockId;
use crate::model::{Block, FlowDocument};
use std::collections::HashMap;

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
        Ok(Self {
            warnings: diagnostics,
            ..Self::published(document)
        })
    }

    /// A document that passed validation when it was published, taken as it is: a published
    /// version is immutable and keeps running even when a later release's rules are stricter.
    /// Nothing is checked (the runtime treats a missing block as an error of that run).
    pub fn published(document: FlowDocument) -> Self {
        let index = document
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.clone(), i))
            .collect();
        Self {
            document,
            index,
            warnings: Vec::new(),
        }
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

    /// The flow's graph (built on demand; block `i` is node `i`).
    pub fn graph(&self) -> FlowGraph {
        FlowGraph::build(&self.document)
    }
}
