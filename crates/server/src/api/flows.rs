//! Flows of a Page: save a draft, publish, list, read a version, roll back.

use crate::api::conflicts::live_trigger_conflicts;
use crate::api::validate::ValidationReport;
use crate::api::{FlowPath, PagePath, VersionPath};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::ingest::now_ms;
use crate::openapi::{DiagnosticSchema, FlowDocumentSchema, FlowSummarySchema};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use botflow_flow::{Diagnostic, FlowDocument, FlowId};
use botflow_storage::{DraftSource, FlowSummary, Published};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// `GET /api/pages/{page}/flows`: every flow with its draft state and versions.
#[utoipa::path(
    get,
    path = "/pages/{page}/flows",
    operation_id = "listFlows",
    tag = "flows",
    params(PagePath),
    responses(
        (status = 200, description = "Flows, by id.", body = Vec<FlowSummarySchema>, links(
            ("getDraft" = (operation_id = "getDraft", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/0/id")), description = "Read the first flow's draft.")),
            ("publish" = (operation_id = "publishFlow", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/0/id")), description = "Publish the first flow's draft.")),
            ("version" = (operation_id = "getFlowVersion", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/0/id"), ("n" = "$response.body#/0/latest_version")), description = "Read the first flow's latest version.")),
        )),
        (status = 404, description = "Unknown Page.", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Path(path): Path<PagePath>,
) -> Result<Json<Vec<FlowSummary>>, ApiError> {
    let page = state.page(&path.page)?;
    Ok(Json(
        state
            .with_store(move |store| store.list_flows(&page))
            .await?,
    ))
}

/// The answer to a draft save.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DraftReport)]
pub(crate) struct DraftView {
    /// The flow saved: what publish and the draft read take in the path.
    #[schema(value_type = String)]
    flow: FlowId,
    /// When it was saved (Unix milliseconds).
    saved_ms: u64,
    #[serde(flatten)]
    report: ValidationReport,
}

/// `PUT /api/pages/{page}/flows/{flow}`: stores the draft (even with validation errors) and
/// returns its diagnostics; a body that is not a flow at all is a 422 with diagnostics, and a
/// flow whose `id` is not the one in the path a 409 (RFC 9110 §9.3.4: a PUT representation
/// inconsistent with the target resource).
#[utoipa::path(
    put,
    path = "/pages/{page}/flows/{flow}",
    operation_id = "saveDraft",
    tag = "flows",
    params(FlowPath),
    request_body(content = FlowDocumentSchema, description = "The flow; its `id` must be the one in the path. Unknown fields are kept and warned about (`unknown-field`)."),
    responses(
        (status = 200, description = "Draft saved, with what validation found in it.", body = DraftView, links(
            ("getDraft" = (operation_id = "getDraft", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/flow")), description = "Read the saved draft.")),
            ("publish" = (operation_id = "publishFlow", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/flow")), description = "Publish the saved draft.")),
        )),
        (status = 400, description = "The body is not JSON.", body = ErrorBody),
        (status = 404, description = "Unknown Page.", body = ErrorBody),
        (status = 409, description = "The flow's `id` is not the one in the path.", body = ErrorBody),
        (status = 422, description = "The body is not a flow (`invalid_flow`, with diagnostics).", body = ErrorBody),
    )
)]
pub(crate) async fn save_draft(
    State(state): State<Arc<AppState>>,
    Path(path): Path<FlowPath>,
    ApiJson(document): ApiJson<Value>,
) -> Result<Json<DraftView>, ApiError> {
    let page = state.page(&path.page)?;
    match document.get("id").and_then(Value::as_str) {
        Some(id) if id == path.flow => {}
        Some(id) => {
            return Err(ApiError::Conflict(format!(
                "the flow's id {id:?} differs from {:?} in the path",
                path.flow
            )));
        }
        None => {
            return Err(ApiError::Unprocessable(
                "the flow has no string \"id\"".to_owned(),
            ));
        }
    }
    let text = document.to_string();
    let draft = state
        .with_store(move |store| {
            let mut draft = store.save_draft(&page, DraftSource::Text(text), now_ms())?;
            let conflicts = live_trigger_conflicts(store, &page, &draft.document)?;
            draft.diagnostics.extend(conflicts);
            Ok(draft)
        })
        .await?;
    Ok(Json(DraftView {
        flow: draft.document.id.clone(),
        saved_ms: draft.saved_ms,
        report: ValidationReport::new(draft.diagnostics),
    }))
}

/// A saved draft as the API shows it: the document as saved and its diagnostics.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Draft)]
pub(crate) struct DraftDocumentView {
    /// The flow.
    #[schema(value_type = String)]
    flow: FlowId,
    /// When it was saved (Unix milliseconds).
    saved_ms: u64,
    /// The document as saved (topics as written, by id or by name).
    #[schema(value_type = FlowDocumentSchema)]
    document: FlowDocument,
    #[serde(flatten)]
    report: ValidationReport,
}

/// `GET /api/pages/{page}/flows/{flow}`: the saved draft (topics as written, by id or by name)
/// with the diagnostics found when it was saved; 404 when the flow has no draft.
#[utoipa::path(
    get,
    path = "/pages/{page}/flows/{flow}",
    operation_id = "getDraft",
    tag = "flows",
    params(FlowPath),
    responses(
        (status = 200, description = "The saved draft.", body = DraftDocumentView, links(
            ("save" = (operation_id = "saveDraft", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/flow")), request_body = "$response.body#/document", description = "Save the draft back, as the builder does after an edit.")),
        )),
        (status = 404, description = "Unknown Page, or the flow has no draft.", body = ErrorBody),
    )
)]
pub(crate) async fn draft(
    State(state): State<Arc<AppState>>,
    Path(path): Path<FlowPath>,
) -> Result<Json<DraftDocumentView>, ApiError> {
    let page = state.page(&path.page)?;
    let flow = FlowId::from(path.flow.clone());
    let draft = state
        .with_store(move |store| store.draft(&page, &flow))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "flow {} not found on page {}",
                path.flow, path.page
            ))
        })?;
    Ok(Json(DraftDocumentView {
        flow: draft.document.id.clone(),
        saved_ms: draft.saved_ms,
        document: draft.document,
        report: ValidationReport::new(draft.diagnostics),
    }))
}

/// A topic created inline by a publish.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedTopic {
    /// The new topic's id.
    id: String,
    /// Its name, as the flow referenced it.
    name: String,
}

/// The answer to a publish or rollback.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PublishReport)]
pub(crate) struct PublishView {
    /// The flow.
    #[schema(value_type = String)]
    flow: FlowId,
    /// The live version now.
    version: u32,
    /// True when the draft equalled the live version and no version was made.
    unchanged: bool,
    /// Topics the flow referenced by name that did not exist yet.
    topics_created: Vec<CreatedTopic>,
    /// Validation warnings of the published document.
    #[schema(value_type = Vec<DiagnosticSchema>)]
    warnings: Vec<Diagnostic>,
}

impl From<Published> for PublishView {
    fn from(published: Published) -> Self {
        Self {
            flow: published.flow,
            version: published.version,
            unchanged: published.unchanged,
            topics_created: published
                .created_topics
                .into_iter()
                .map(|topic| CreatedTopic {
                    id: topic.id.0,
                    name: topic.name,
                })
                .collect(),
            warnings: published.warnings,
        }
    }
}

/// `POST /api/pages/{page}/flows/{flow}/publish`: 201 with the new version and the topics created
/// inline; 422 with the diagnostics when the draft has errors; 404 without a draft.
#[utoipa::path(
    post,
    path = "/pages/{page}/flows/{flow}/publish",
    operation_id = "publishFlow",
    tag = "flows",
    params(FlowPath),
    responses(
        (status = 201, description = "A new version was published.", body = PublishView, links(
            ("version" = (operation_id = "getFlowVersion", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/flow"), ("n" = "$response.body#/version")), description = "Read the live version.")),
            ("rollback" = (operation_id = "rollbackFlow", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/flow"), ("n" = "$response.body#/version")), description = "Make this version live again later.")),
        )),
        (status = 200, description = "The draft equals the live version; nothing new was published.", body = PublishView, links(
            ("version" = (operation_id = "getFlowVersion", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/flow"), ("n" = "$response.body#/version")), description = "Read the live version.")),
            ("rollback" = (operation_id = "rollbackFlow", parameters(("page" = "$request.path.page"), ("flow" = "$response.body#/flow"), ("n" = "$response.body#/version")), description = "Make this version live again later.")),
        )),
        (status = 404, description = "Unknown Page, or the flow has no draft.", body = ErrorBody),
        (status = 422, description = "The draft has validation errors, or claims a trigger of another live flow of the Page (listed in `error.diagnostics`).", body = ErrorBody),
    )
)]
pub(crate) async fn publish(
    State(state): State<Arc<AppState>>,
    Path(path): Path<FlowPath>,
) -> Result<(StatusCode, Json<PublishView>), ApiError> {
    let page = state.page(&path.page)?;
    let flow = FlowId::from(path.flow);
    // The store checks the draft, and its triggers against the other live flows, inside the
    // publish transaction (422 with the diagnostics).
    let published = state
        .with_store(move |store| store.publish(&page, &flow, now_ms()))
        .await?;
    tracing::info!(flow = %published.flow, version = published.version, "flow published");
    state.flows_changed();
    let status = match published.unchanged {
        true => StatusCode::OK,
        false => StatusCode::CREATED,
    };
    Ok((status, Json(published.into())))
}

/// A published version as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FlowVersion)]
pub(crate) struct VersionView {
    /// The flow.
    #[schema(value_type = String)]
    flow: FlowId,
    /// The version number, from 1.
    version: u32,
    /// Whether new runs start on this version.
    live: bool,
    /// When it was published (Unix milliseconds).
    published_ms: u64,
    /// For a rollback: the older version whose content this version republished.
    republished_from: Option<u32>,
    /// The document the runtime runs: every topic reference is by id.
    #[schema(value_type = FlowDocumentSchema)]
    document: FlowDocument,
    /// The document as it was submitted (topic references by name kept).
    #[schema(value_type = FlowDocumentSchema)]
    source: FlowDocument,
}

/// `GET /api/pages/{page}/flows/{flow}/versions/{n}`: the stored version (topics by id).
#[utoipa::path(
    get,
    path = "/pages/{page}/flows/{flow}/versions/{n}",
    operation_id = "getFlowVersion",
    tag = "flows",
    params(VersionPath),
    responses(
        (status = 200, description = "The version.", body = VersionView),
        (status = 400, description = "`n` is not a whole number from 0 to 4294967295.", body = ErrorBody),
        (status = 404, description = "Unknown Page, flow or version.", body = ErrorBody),
    )
)]
pub(crate) async fn version(
    State(state): State<Arc<AppState>>,
    Path(path): Path<VersionPath>,
) -> Result<Json<VersionView>, ApiError> {
    let page = state.page(&path.page)?;
    let flow = FlowId::from(path.flow.clone());
    let n = path.n;
    let (version, active) = state
        .with_store(move |store| {
            let version = store.flow_version(&page, &flow, n)?;
            let active = store.active_version(&page, &flow)?;
            Ok((version, active))
        })
        .await?;
    let version = version.ok_or_else(|| {
        ApiError::NotFound(format!("flow {} has no published version {n}", path.flow))
    })?;
    Ok(Json(VersionView {
        live: active == Some(version.version),
        flow: version.flow,
        version: version.version,
        published_ms: version.published_ms,
        republished_from: version.republished_from,
        document: version.document,
        source: version.source,
    }))
}

/// `POST /api/pages/{page}/flows/{flow}/rollback/{n}`: republishes version n as the new live version.
#[utoipa::path(
    post,
    path = "/pages/{page}/flows/{flow}/rollback/{n}",
    operation_id = "rollbackFlow",
    tag = "flows",
    params(VersionPath),
    responses(
        (status = 200, description = "The live version now.", body = PublishView),
        (status = 400, description = "`n` is not a whole number from 0 to 4294967295.", body = ErrorBody),
        (status = 404, description = "Unknown Page, flow or version.", body = ErrorBody),
        (status = 422, description = "Version n cannot be published again, e.g. a topic it uses was deleted since, or another live flow claims its trigger (listed in `error.diagnostics`).", body = ErrorBody),
    )
)]
pub(crate) async fn rollback(
    State(state): State<Arc<AppState>>,
    Path(path): Path<VersionPath>,
) -> Result<Json<PublishView>, ApiError> {
    let page = state.page(&path.page)?;
    let flow = FlowId::from(path.flow);
    let n = path.n;
    let published = state
        .with_store(move |store| store.rollback(&page, &flow, n, now_ms()))
        .await?;
    tracing::info!(flow = %published.flow, version = published.version, from = n, "flow rolled back");
    state.flows_changed();
    Ok(Json(published.into()))
}
