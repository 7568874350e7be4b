//! Flows of a Page: save a draft, publish, list, read a version, roll back.

use crate::api::conflicts::live_trigger_conflicts;
use crate::api::validate::ValidationReport;
use crate::api::{FlowPath, PagePath, VersionPath};
use crate::error::{ApiError, ApiJson};
use crate::ingest::now_ms;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use botflow_flow::{Diagnostic, FlowDocument, FlowId};
use botflow_storage::{DraftSource, FlowSummary, Published};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// `GET /api/pages/{page}/flows`: every flow with its draft state and versions.
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
#[derive(Debug, Serialize)]
pub(crate) struct DraftView {
    flow: FlowId,
    saved_ms: u64,
    #[serde(flatten)]
    report: ValidationReport,
}

/// `PUT /api/pages/{page}/flows/{flow}`: stores the draft (even with validation errors) and
/// returns its diagnostics; a body that is not a flow at all is a 422 with diagnostics.
pub(crate) async fn save_draft(
    State(state): State<Arc<AppState>>,
    Path(path): Path<FlowPath>,
    ApiJson(document): ApiJson<Value>,
) -> Result<Json<DraftView>, ApiError> {
    let page = state.page(&path.page)?;
    match document.get("id").and_then(Value::as_str) {
        Some(id) if id == path.flow => {}
        Some(id) => {
            return Err(ApiError::Unprocessable(format!(
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
#[derive(Debug, Serialize)]
pub(crate) struct DraftDocumentView {
    flow: FlowId,
    saved_ms: u64,
    document: FlowDocument,
    #[serde(flatten)]
    report: ValidationReport,
}

/// `GET /api/pages/{page}/flows/{flow}`: the saved draft (topics as written, by id or by name)
/// with the diagnostics found when it was saved; 404 when the flow has no draft.
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
#[derive(Debug, Serialize)]
pub(crate) struct CreatedTopic {
    id: String,
    name: String,
}

/// The answer to a publish or rollback.
#[derive(Debug, Serialize)]
pub(crate) struct PublishView {
    flow: FlowId,
    version: u32,
    unchanged: bool,
    topics_created: Vec<CreatedTopic>,
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
#[derive(Debug, Serialize)]
pub(crate) struct VersionView {
    flow: FlowId,
    version: u32,
    live: bool,
    published_ms: u64,
    republished_from: Option<u32>,
    document: FlowDocument,
    source: FlowDocument,
}

/// `GET /api/pages/{page}/flows/{flow}/versions/{n}`: the stored version (topics by id).
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
