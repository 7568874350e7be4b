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

/// The version pointers of a published flow (both backends store one per flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FlowHead {
    pub(crate) flow: FlowId,
    pub(crate) name: String,
    /// Highest version number.
    pub(crate) latest: u32,
    /// The version new runs start on (equal to `latest`: rollback republishes).
    pub(crate) active: u32,
}

/// Reads the source of a flow's version (`None`: no such version).
pub(crate) type LatestSource<'a> =
    dyn FnMut(&FlowId, u32) -> Result<Option<FlowDocument>, crate::error::StoreError> + 'a;

/// The Page's flow list from its published heads and its drafts: a flow's name is its draft's
/// when it has one, and the draft counts as published when it equals the latest version's
/// source (`latest_source`; a version record that cannot be read counts as different).
pub(crate) fn flow_summaries(
    heads: Vec<FlowHead>,
    drafts: Vec<Draft>,
    broken: &[BrokenFlow],
    latest_source: &mut LatestSource<'_>,
) -> Result<Vec<FlowSummary>, crate::error::StoreError> {
    use crate::error::StoreError;
    let mut flows: std::collections::BTreeMap<FlowId, FlowSummary> =
        std::collections::BTreeMap::new();
    for head in heads {
        flows.insert(
            head.flow.clone(),
            FlowSummary {
                broken: broken
                    .iter()
                    .find(|b| b.flow == head.flow)
                    .map(|b| b.reason.clone()),
                id: head.flow,
                name: head.name,
                latest_version: Some(head.latest),
                active_version: Some(head.active),
                draft: DraftState::None,
            },
        );
    }
    for draft in drafts {
        let id = draft.document.id.clone();
        let summary = flows.entry(id.clone()).or_insert_with(|| FlowSummary {
            broken: None,
            id: id.clone(),
            name: draft.document.name.clone(),
            latest_version: None,
            active_version: None,
            draft: DraftState::None,
        });
        summary.name = draft.document.name.clone();
        let latest = match summary.latest_version {
            // A broken live version (listed as such above) cannot equal the draft.
            Some(v) => match latest_source(&id, v) {
                Ok(source) => source,
                Err(StoreError::Corrupt { .. } | StoreError::UnsupportedRecordVersion { .. }) => {
                    None
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        summary.draft = if latest.as_ref() == Some(&draft.document) {
            DraftState::Published
        } else {
            DraftState::Unpublished {
                errors: draft.diagnostics.iter().filter(|d| d.is_error()).count(),
                warnings: draft.diagnostics.iter().filter(|d| !d.is_error()).count(),
            }
        };
    }
    Ok(flows.into_values().collect())
}
