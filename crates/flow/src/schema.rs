//! The JSON Schema (draft 2020-12) of the flow format, generated from the Rust model.

use crate::model::FlowDocument;

/// The JSON Schema of a flow document, generated from [`FlowDocument`] with schemars.
pub fn flow_schema() -> serde_json::Value {
    schemars::schema_for!(FlowDocument).to_value()
}

/// The schema as pretty-printed JSON text with a final newline, as stored in
/// `schemas/flow.schema.json`.
pub fn flow_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&flow_schema()).unwrap_or_default();
    text.push('\n');
    text
}
