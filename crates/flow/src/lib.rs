//! The botflow flow model: serde types for the flow JSON (format 1), a petgraph graph built
//! from a flow, and validation that reports every problem with a stable code and a JSON Pointer.
//!
//! This crate does no I/O. Entry points:
//! - [`parse_flow`] reads JSON text into a [`FlowDocument`], or diagnostics with line and column;
//! - [`validate`] checks a document and returns every [`Diagnostic`];
//! - [`ValidFlow::new`] turns a document without errors into the checked form the runtime runs.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod diagnostic;
pub mod duration;
pub mod ids;
pub mod model;
pub mod template;
mod valid;

pub use diagnostic::{Diagnostic, Severity, TextLocation};
pub use duration::FlowDuration;
pub use ids::{BlockId, FieldName, FlowId, TopicId};
pub use model::*;
pub use template::{Template, TemplatePart};
pub use valid::{ValidFlow, parse_flow, validate};
