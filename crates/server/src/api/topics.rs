//! Topics of a Page: list with usable-token counts, create, rename, delete.

use crate::api::{PagePath, TopicPath};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::ingest::now_ms;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use botflow_flow::{FlowId, TopicId};
use botflow_storage::{Topic, TopicSummary};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// What `clean_topic_name` accepts, as an ECMA-262 regular expression: optional surrounding
/// white space (Rust's `trim` set), then 1 to 65 characters without control characters that do
/// not start or end with white space.
const TOPIC_NAME_PATTERN: &str = concat!(
    r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"[^\x00-\x1f\x7f-\x9f \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
    r"(?:[^\x00-\x1f\x7f-\x9f]{0,63}",
    r"[^\x00-\x1f\x7f-\x9f \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?",
    r"[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
);

/// The schema of a topic name: a string matching [`TOPIC_NAME_PATTERN`].
fn topic_name_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(TOPIC_NAME_PATTERN))
        .build()
}

/// Body of topic create and rename.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicName {
    /// Unique per Page (compared trimmed and case-insensitively); trimmed, 1 to 65 characters
    /// and no control characters.
    #[schema(schema_with = topic_name_schema)]
    name: String,
}

/// A topic as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Topic)]
pub(crate) struct TopicView {
    /// The topic's id: what rename, delete and notify take in the path.
    #[schema(value_type = String)]
    id: TopicId,
    /// Its name, unique per Page.
    name: String,
    /// Opt-ins waiting to be used (not spent, not expired).
    usable_tokens: u64,
    /// When it was created (Unix milliseconds).
    created_ms: u64,
    /// The flows whose live version uses the topic (by flow id).
    #[schema(value_type = Vec<String>)]
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
#[utoipa::path(
    get,
    path = "/pages/{page}/topics",
    operation_id = "listTopics",
    tag = "topics",
    params(PagePath),
    responses(
        (status = 200, description = "Topics, by name.", body = Vec<TopicView>, links(
            ("rename" = (operation_id = "renameTopic", parameters(("page" = "$request.path.page"), ("topic" = "$response.body#/0/id")), description = "Rename the first topic.")),
            ("notify" = (operation_id = "notifyTopic", parameters(("page" = "$request.path.page"), ("topic" = "$response.body#/0/id")), description = "Notify the subscribers waiting on the first topic.")),
        )),
        (status = 404, description = "Unknown Page.", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    post,
    path = "/pages/{page}/topics",
    operation_id = "createTopic",
    tag = "topics",
    params(PagePath),
    request_body = TopicName,
    responses(
        (status = 201, description = "The new topic.", body = TopicView, links(
            ("rename" = (operation_id = "renameTopic", parameters(("page" = "$request.path.page"), ("topic" = "$response.body#/id")), description = "Rename the new topic.")),
            ("delete" = (operation_id = "deleteTopic", parameters(("page" = "$request.path.page"), ("topic" = "$response.body#/id")), description = "Delete the new topic.")),
            ("notify" = (operation_id = "notifyTopic", parameters(("page" = "$request.path.page"), ("topic" = "$response.body#/id")), description = "Notify the subscribers waiting on the new topic.")),
            ("ledger" = (operation_id = "topicLedger", parameters(("page" = "$request.path.page"), ("topic" = "$response.body#/id")), description = "The new topic's token ledger.")),
        )),
        (status = 400, description = "The body is not JSON.", body = ErrorBody),
        (status = 404, description = "Unknown Page.", body = ErrorBody),
        (status = 409, description = "The name is taken on this Page.", body = ErrorBody),
        (status = 422, description = "A field is missing or unknown, or the name is empty or too long.", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    patch,
    path = "/pages/{page}/topics/{topic}",
    operation_id = "renameTopic",
    tag = "topics",
    params(TopicPath),
    request_body = TopicName,
    responses(
        (status = 200, description = "The renamed topic.", body = TopicView),
        (status = 400, description = "The body is not JSON.", body = ErrorBody),
        (status = 404, description = "Unknown Page or topic.", body = ErrorBody),
        (status = 409, description = "The name is taken on this Page.", body = ErrorBody),
        (status = 422, description = "A field is missing or unknown, or the name is empty or too long.", body = ErrorBody),
    )
)]
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
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Delete even while live flows use the topic.
    #[serde(default)]
    #[param(default = false)]
    force: bool,
}

/// What a delete did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeletedTopic)]
pub(crate) struct DeletedView {
    /// The topic as it was.
    deleted: TopicView,
    /// Its unused tokens, which no longer count.
    invalidated_tokens: u64,
}

/// `DELETE /api/pages/{page}/topics/{topic}[?force=true]`: 409 naming the flows that use the
/// topic unless forced; its unused tokens are invalidated.
#[utoipa::path(
    delete,
    path = "/pages/{page}/topics/{topic}",
    operation_id = "deleteTopic",
    tag = "topics",
    params(TopicPath, DeleteQuery),
    responses(
        (status = 200, description = "Deleted; the count of unused tokens invalidated.", body = DeletedView),
        (status = 400, description = "`force` is neither true nor false.", body = ErrorBody),
        (status = 404, description = "Unknown Page or topic.", body = ErrorBody),
        (status = 409, description = "Live flows use the topic (named in the message); `force=true` deletes anyway.", body = ErrorBody),
    )
)]
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
