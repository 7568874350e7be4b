//! Topics of a Page: list with usable-token counts, create, rename, delete.

use crate::api::{PagePath, TopicPath};
use crate::error::{ApiError, ApiJson};
use crate::ingest::now_ms;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use botflow_flow::{FlowId, TopicId};
use botflow_storage::{Topic, TopicSummary};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Body of topic create and rename.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicName {
    name: String,
}

/// A topic as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct TopicView {
    id: TopicId,
    name: String,
    usable_tokens: u64,
    created_ms: u64,
    /// The flows whose live version uses the topic.
    used_by: Vec<FlowId>,
}

impl TopicView {
    fn new(topic: Topic, usable_tokens: u64, used_by: Vec<FlowId>) -> Self {
        Self {
            id: topic.id,
            name: topic.name,
            usable_tokens,
            created_ms: topic.created_ms,
            used_by,
        }
    }
}

impl From<TopicSummary> for TopicView {
    fn from(summary: TopicSummary) -> Self {
        Self::new(summary.topic, summary.usable_tokens, summary.used_by)
    }
}

/// `GET /api/pages/{page}/topics`: every topic by name with its usable-token count.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Path(path): Path<PagePath>,
) -> Result<Json<Vec<TopicView>>, ApiError> {
    let page = state.page(&path.page)?;
    let topics = state
        .with_store(move |store| store.list_topics(&page, now_ms()))
        .await?;
    Ok(Json(topics.into_iter().map(TopicView::from).collect()))
}

/// `POST /api/pages/{page}/topics`: 201 with the new topic; 409 when the name is taken.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Path(path): Path<PagePath>,
    ApiJson(body): ApiJson<TopicName>,
) -> Result<(StatusCode, Json<TopicView>), ApiError> {
    let page = state.page(&path.page)?;
    let topic = state
        .with_store(move |store| store.create_topic(&page, &body.name, now_ms()))
        .await?;
    tracing::info!(topic = %topic.id, name = %topic.name, "topic created");
    Ok((
        StatusCode::CREATED,
        Json(TopicView::new(topic, 0, Vec::new())),
    ))
}

/// `PATCH /api/pages/{page}/topics/{topic}`: renames; id and tokens stay.
pub(crate) async fn rename(
    State(state): State<Arc<AppState>>,
    Path(path): Path<TopicPath>,
    ApiJson(body): ApiJson<TopicName>,
) -> Result<Json<TopicView>, ApiError> {
    let page = state.page(&path.page)?;
    let topic_id = TopicId::from(path.topic);
    let summary = state
        .with_store(move |store| {
            let topic = store.rename_topic(&page, &topic_id, &body.name)?;
            let listed = store
                .list_topics(&page, now_ms())?
                .into_iter()
                .find(|summary| summary.topic.id == topic.id);
            Ok(listed.unwrap_or(TopicSummary {
                topic,
                usable_tokens: 0,
                used_by: Vec::new(),
            }))
        })
        .await?;
    Ok(Json(summary.into()))
}

/// Query of topic delete.
#[derive(Debug, Deserialize)]
pub(crate) struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

/// What a delete did.
#[derive(Debug, Serialize)]
pub(crate) struct DeletedView {
    deleted: TopicView,
    invalidated_tokens: u64,
}

/// `DELETE /api/pages/{page}/topics/{topic}[?force=true]`: 409 naming the flows that use the
/// topic unless forced; its unused tokens are invalidated.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(path): Path<TopicPath>,
    Query(query): Query<DeleteQuery>,
) -> Result<Json<DeletedView>, ApiError> {
    let page = state.page(&path.page)?;
    let topic_id = TopicId::from(path.topic);
    let deleted = state
        .with_store(move |store| store.delete_topic(&page, &topic_id, query.force, now_ms()))
        .await?;
    tracing::info!(topic = %deleted.topic.id, invalidated = deleted.invalidated_tokens, "topic deleted");
    Ok(Json(DeletedView {
        deleted: TopicView::new(deleted.topic, 0, Vec::new()),
        invalidated_tokens: deleted.invalidated_tokens,
    }))
}
