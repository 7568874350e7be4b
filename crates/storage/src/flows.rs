//! Flow records: drafts with their diagnostics, immutable published versions, summaries.

use botflow_flow::{Diagnostic, FlowDocument, FlowId, ValidFlow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::topic::Topic;

/// What a draft is saved from: flow JSON text or an already parsed document.
#[derive(Debug, Clone)]
pub enum DraftSource {
    /// Flow JSON text; saved only if it parses.
    Text(String),
    /// A parsed document.
    Document(FlowDocument),
}

/// A saved draft of a flow and what validation found in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The document as saved (topics may still be referenced by name).
    pub document: FlowDocument,
    /// Validation diagnostics at the time of saving (errors and warnings).
    pub diagnostics: Vec<Diagnostic>,
    /// When it was saved.
    pub saved_ms: u64,
}

/// An immutable published version of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowVersion {
    /// The flow.
    pub flow: FlowId,
    /// The version number, from 1.
    pub version: u32,
    /// The document the runtime runs: every topic reference is by id.
    pub document: FlowDocument,
    /// The document as it was submitted (topic references by name kept).
    pub source: FlowDocument,
    /// When it was published.
    pub published_ms: u64,
    /// For a rollback: the older version whose content this version republished.
    #[serde(default)]
    pub republished_from: Option<u32>,
}

/// The outcome of a publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// The flow.
    pub flow: FlowId,
    /// The version now active.
    pub version: u32,
    /// Topics created inline by this publish (names not found on the Page).
    pub created_topics: Vec<Topic>,
    /// True when the document equalled the latest version's and no new version was made.
    pub unchanged: bool,
    /// Validation warnings of the published document.
    pub warnings: Vec<Diagnostic>,
}

/// The state of a flow's draft relative to its published versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DraftState {
    /// No draft is stored.
    None,
    /// The draft is the latest published version's source.
    Published,
    /// The draft differs from the latest published version.
    Unpublished {
        /// Validation errors in the draft (it cannot be published while > 0).
        errors: usize,
        /// Validation warnings in the draft.
        warnings: usize,
    },
}

/// One line of the flow list of a Page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlowSummary {
    /// The flow.
    pub id: FlowId,
    /// Its name (from the draft, else the latest version).
    pub name: String,
    /// Highest published version, if any.
    pub latest_version: Option<u32>,
    /// The version new runs start on (always the latest: rollback republishes).
    pub active_version: Option<u32>,
    /// The draft's state.
    pub draft: DraftState,
    /// Why the live version cannot run (its record cannot be read), if so; the Page's other
    /// flows keep running.
    pub broken: Option<String>,
}

/// The active version of a flow, ready to run (for trigger routing).
#[derive(Debug, Clone)]
pub struct ActiveFlow {
    /// The flow.
    pub flow: FlowId,
    /// Its active version.
    pub version: u32,
    /// The published document, indexed for the runtime.
    pub valid: Arc<ValidFlow>,
    /// How diagnostics name it ("its live version 3").
    pub label: String,
}

/// A published flow whose live version cannot run because its record cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenFlow {
    /// The flow.
    pub flow: FlowId,
    /// Its active version.
    pub version: u32,
    /// What is wrong, for logs and the flows list.
    pub reason: String,
}

/// The live flows of a Page: those that run, and those that are broken.
#[derive(Debug, Clone, Default)]
pub struct ActiveFlows {
    /// Flows whose live version runs.
    pub flows: Vec<ActiveFlow>,
    /// Flows whose live version cannot be read.
    pub broken: Vec<BrokenFlow>,
}

/// Builds a draft from its source, checked against the Page's topics (`topic_exists`: an id the
/// Page does not have is an `unknown-topic` error diagnostic); text that does not parse is
/// refused with its diagnostics. Both backends store what this returns.
pub(crate) fn checked_draft(
    source: DraftSource,
    topic_exists: &dyn botflow_flow::TopicLookup,
    now_ms: u64,
) -> Result<Draft, crate::error::StoreError> {
    let (document, diagnostics) = match source {
        DraftSource::Text(text) => {
            let report = botflow_flow::check_text_with_topics(&text, topic_exists);
            match report.document {
                Some(document) => (document, report.diagnostics),
                None => {
                    return Err(crate::error::StoreError::FlowParse {
                        diagnostics: report.diagnostics,
                    });
                }
            }
        }
        DraftSource::Document(document) => {
            let diagnostics = botflow_flow::validate_with_topics(&document, topic_exists);
            (document, diagnostics)
        }
    };
    Ok(Draft {
        diagnostics,
        document,
        saved_ms: now_ms,
    })
}
