//! `POST /api/validate`: a flow in, every diagnostic out, nothing stored.

use crate::error::{ApiError, ApiJson};
use axum::Json;
use botflow_flow::{Diagnostic, parse_flow, validate};
use serde::Serialize;
use serde_json::Value;

/// The answer of `POST /api/validate`.
#[derive(Debug, Serialize)]
pub(crate) struct ValidationReport {
    /// Whether the flow has no errors (warnings allowed), i.e. could be published.
    pub(crate) valid: bool,
    /// Number of errors.
    pub(crate) errors: usize,
    /// Number of warnings.
    pub(crate) warnings: usize,
    /// Every problem found, errors and warnings.
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl ValidationReport {
    /// Summarises a list of diagnostics.
    pub(crate) fn new(diagnostics: Vec<Diagnostic>) -> Self {
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        Self {
            valid: errors == 0,
            errors,
            warnings: diagnostics.len() - errors,
            diagnostics,
        }
    }
}

/// Validates a flow document given as any JSON value; a document that does not even have the
/// flow's shape (unknown block type, missing field) yields diagnostics, not an HTTP error.
pub(crate) fn diagnose(document: &Value) -> Vec<Diagnostic> {
    match parse_flow(&document.to_string()) {
        Ok(flow) => validate(&flow),
        Err(diagnostics) => diagnostics,
    }
}

/// `POST /api/validate`: 200 with a [`ValidationReport`], 400 for a body that is not JSON.
pub(crate) async fn validate_flow(
    ApiJson(document): ApiJson<Value>,
) -> Result<Json<ValidationReport>, ApiError> {
    Ok(Json(ValidationReport::new(diagnose(&document))))
}
