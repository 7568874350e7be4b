//! `POST /api/validate[?page=…]`: a flow in, every diagnostic out, nothing stored.

use crate::api::conflicts::live_trigger_conflicts;
use crate::error::{ApiError, ErrorBody, body_bytes, parse_json};
use crate::openapi::DiagnosticSchema;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, Request, State};
use botflow_flow::{Diagnostic, TopicId, check_text, check_text_with_topics};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The answer of `POST /api/validate`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ValidationReport {
    /// Whether the flow has no errors (warnings allowed), i.e. could be published.
    pub(crate) valid: bool,
    /// Number of errors.
    pub(crate) errors: usize,
    /// Number of warnings.
    pub(crate) warnings: usize,
    /// Every problem found, errors and warnings.
    #[schema(value_type = Vec<DiagnosticSchema>)]
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

/// Query of `POST /api/validate`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ValidateQuery {
    /// When given, topic ids are also checked against this Page's topics (`unknown-topic`).
    page: Option<String>,
}

/// `POST /api/validate`: 200 with a [`ValidationReport`] (a document that is not even a flow
/// yields diagnostics, not an HTTP error); 400 for a body that is not JSON; 404 for an unknown
/// `page`. With `page`, topic ids and the triggers of the Page's live flows are checked too.
#[utoipa::path(
    post,
    path = "/validate",
    operation_id = "validateFlow",
    tag = "flows",
    params(ValidateQuery),
    request_body(content = Value, description = "Any JSON: a flow, or something meant as one; what is wrong with it is the answer, not an error."),
    responses(
        (status = 200, description = "Every diagnostic.", body = ValidationReport),
        (status = 400, description = "The body is not JSON.", body = ErrorBody),
        (status = 404, description = "Unknown `page`.", body = ErrorBody),
    )
)]
pub(crate) async fn validate_flow(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ValidateQuery>,
    request: Request,
) -> Result<Json<ValidationReport>, ApiError> {
    let bytes = body_bytes(request, &()).await?;
    // Refuse non-JSON with the API's 400 before handing the text to the flow checker.
    parse_json::<Value>(&bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let report = match query.page {
        Some(page) => {
            let page = state.page(&page)?;
            state
                .with_store(move |store| {
                    let known = |id: &TopicId| matches!(store.get_topic(&page, id), Ok(Some(_)));
                    let mut report = check_text_with_topics(&text, &known);
                    if let Some(document) = &report.document {
                        let conflicts = live_trigger_conflicts(store, &page, document)?;
                        report.diagnostics.extend(conflicts);
                    }
                    Ok(report)
                })
                .await?
        }
        None => check_text(&text),
    };
    Ok(Json(ValidationReport::new(report.diagnostics)))
}
