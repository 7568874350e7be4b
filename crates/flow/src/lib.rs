//! The botflow flow model: serde types for the flow JSON (format 1), a petgraph graph built
//! from a flow, and validation that reports every problem with a stable code and a JSON Pointer.
//!
//! This crate does no I/O. Entry points:
//! - [`check_text`] reads and checks JSON text, returning a [`Report`] with every problem
//!   (syntax errors with line and column) and the document when all of it parsed;
//! - [`parse_flow`] reads JSON text into a [`FlowDocument`], or the structural diagnostics;
//! - [`validate`] / [`validate_with_topics`] check a typed document;
//! - [`check_trigger_conflicts`] compares the triggers of several files;
//! - [`ValidFlow::new`] turns a document without errors into the checked form the runtime runs;
//! - [`flow_schema`] is the JSON Schema of the format.
//!
//! ```
//! let report = botflow_flow::check_text(r#"{"format": 1, "id": "f", "name": "F", "start": "a",
//!     "blocks": [{"id": "a", "type": "send_message", "messages": [], "next": "b"}]}"#);
//! let codes: Vec<_> = report.diagnostics.iter().map(|d| (d.code.as_str(), d.pointer.as_str())).collect();
//! assert_eq!(codes, [("empty-messages", "/blocks/0/messages"), ("dangling-target", "/blocks/0/next")]);
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod block_index;
mod check;
pub mod codes;
mod diagnose;
pub mod diagnostic;
pub mod duration;
pub mod graph;
mod graph_rules;
pub mod ids;
pub mod model;
mod outline;
mod reader;
mod rules;
mod schema;
mod suggest;
pub mod template;
pub mod topics;
mod triggers;
mod valid;

pub use check::{
    Report, check_bytes, check_text, check_text_with_topics, parse_flow, validate,
    validate_with_topics,
};
pub use diagnostic::{Diagnostic, Severity, TextLocation, render_human};
pub use duration::FlowDuration;
pub use graph::{EdgeKind, FlowEdge, FlowGraph};
pub use graph_rules::WINDOW_SECS;
pub use ids::{BlockId, FieldName, FlowId, TopicId};
pub use model::*;
pub use rules::{
    MAX_BUTTON_TEXT_CHARS, MAX_BUTTONS, MAX_OTN_TITLE_CHARS, MAX_QUICK_REPLIES, MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
};
pub use schema::{flow_schema, flow_schema_text};
pub use template::{Template, TemplatePart};
pub use topics::{TopicLookup, visit_topic_refs};
pub use triggers::{FileDiagnostic, check_trigger_conflicts, trigger_conflicts_with_live};
pub use valid::ValidFlow;
