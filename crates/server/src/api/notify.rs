//! `POST /api/pages/{page}/topics/{topic}/notify`: one message per usable token of a topic.

use crate::api::TopicPath;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::ingest::now_ms;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use botflow_flow::{FlowId, TopicId};
use botflow_runtime::NotifyContent;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::openapi::{ObjectBuilder, OneOfBuilder, RefOr, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use botflow_messenger::send::MAX_TEXT_CHARS;

/// A text with a character that is not white space (in Rust's `trim` sense), as ECMA-262.
const NOT_BLANK_PATTERN: &str =
    r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// What to send: `{"text": "..."}`, or `{"flow": "<flow id>"}` to run a published flow for each
/// subscriber waiting on the topic. Exactly one of the two is given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifyRequest {
    /// The message text.
    text: Option<String>,
    /// The flow to run.
    flow: Option<String>,
}

/// The two accepted shapes, each without other fields: the struct's two optional fields would
/// document `{}` and `{"text", "flow"}` too, which [`NotifyRequest::content`] refuses.
impl PartialSchema for NotifyRequest {
    fn schema() -> RefOr<Schema> {
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_TEXT_CHARS))
            .pattern(Some(NOT_BLANK_PATTERN))
            .description(Some(
                "The message text: 1 to 2000 characters, not only white space.",
            ));
        let flow = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Id of a published flow to start for each subscriber with a usable token.",
            ));
        let shape = |name: &str, property: ObjectBuilder| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(name, property)
                .required(name)
                .additional_properties(Some(
                    utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
                ))
                .build()
        };
        OneOfBuilder::new()
            .item(shape("text", text))
            .item(shape("flow", flow))
            .into()
    }
}

impl ToSchema for NotifyRequest {}

impl NotifyRequest {
    /// The content to send, or a 422 naming the accepted shapes.
    fn content(self) -> Result<NotifyContent, ApiError> {
        match (self.text, self.flow) {
            (Some(text), None) => {
                let chars = text.chars().count();
                if text.trim().is_empty() || chars > MAX_TEXT_CHARS {
                    return Err(ApiError::Unprocessable(format!(
                        "the text must have 1 to {MAX_TEXT_CHARS} characters (it has {chars})"
                    )));
                }
                Ok(NotifyContent::Text(text))
            }
            (None, Some(flow)) => Ok(NotifyContent::Flow(FlowId::from(flow))),
            _ => Err(ApiError::Unprocessable(
                "give exactly one of \"text\" (a message) or \"flow\" (a published flow id)"
                    .to_owned(),
            )),
        }
    }
}

/// The answer: the notification's id (follow it at `GET .../notifications/{id}`), the topic and
/// the counts of what was queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotifyReport {
    /// The notification's id.
    id: u64,
    /// The topic notified.
    #[schema(value_type = String)]
    topic: TopicId,
    /// Messages queued (text), or queued by the flows' `otn_send` blocks, each with one token.
    queued: u64,
    /// Subscribers listed as holders who had no usable token left when their turn came.
    no_token: u64,
    /// Tokens found expired while notifying.
    expired: u64,
    /// Messages queued paid for by recurring tokens (not spent), to holders the one-time tokens
    /// did not reach (a text, or a flow's `otn_send` blocks).
    recurring_queued: u64,
    /// Recurring holders skipped because their token paid less than a period (at least 48 hours) ago.
    recurring_not_due: u64,
    /// Recurring holders skipped because they stopped the notifications.
    recurring_stopped: u64,
    /// Recurring tokens found past their expiry (a text notification retires them).
    recurring_expired: u64,
}

/// 202 once every message is durably queued (the dispatcher drains them at the Page's pace);
/// 404 for an unknown topic (the path); 422 for an empty or too long text, or a flow without a
/// published version (the body: the topic exists, so a 404 would mislead).
#[utoipa::path(
    post,
    path = "/pages/{page}/topics/{topic}/notify",
    operation_id = "notifyTopic",
    tag = "topics",
    params(TopicPath),
    request_body = NotifyRequest,
    responses(
        (status = 202, description = "Every message is queued; the counts say how many and `id` names the notification, whose progress `GET /pages/{page}/notifications/{id}` shows.", body = NotifyReport, links(
            ("progress" = (operation_id = "getNotification", parameters(("page" = "$request.path.page"), ("id" = "$response.body#/id")), description = "The new notification's progress.")),
            ("cancel" = (operation_id = "cancelNotification", parameters(("page" = "$request.path.page"), ("id" = "$response.body#/id")), description = "Cancel the new notification.")),
        )),
        (status = 400, description = "The body is not JSON.", body = ErrorBody),
        (status = 404, description = "Unknown Page or topic.", body = ErrorBody),
        (status = 422, description = "Not exactly one of `text` and `flow`, an unknown field, a blank or too long text, or a `flow` without a published version on the Page.", body = ErrorBody),
        (status = 503, description = "The server is shutting down.", body = ErrorBody),
    )
)]
pub(crate) async fn notify(
    State(state): State<Arc<AppState>>,
    Path(path): Path<TopicPath>,
    ApiJson(request): ApiJson<NotifyRequest>,
) -> Result<(StatusCode, Json<NotifyReport>), ApiError> {
    let page = state.page(&path.page)?;
    let topic = TopicId::from(path.topic.clone());
    let content = request.content()?;
    let (lookup_page, lookup_topic) = (page.clone(), topic.clone());
    let flow = match &content {
        NotifyContent::Flow(flow) => Some(flow.clone()),
        NotifyContent::Text(_) => None,
    };
    let (topic_exists, flow_live) = state
        .with_store(move |store| {
            let topic_exists = store.get_topic(&lookup_page, &lookup_topic)?.is_some();
            let flow_live = match &flow {
                Some(flow) => store.active_version(&lookup_page, flow)?.is_some(),
                None => true,
            };
            Ok((topic_exists, flow_live))
        })
        .await?;
    if !topic_exists {
        return Err(ApiError::NotFound(format!(
            "topic {} not found on page {}",
            path.topic, path.page
        )));
    }
    if let (false, NotifyContent::Flow(flow)) = (flow_live, &content) {
        return Err(ApiError::Unprocessable(format!(
            "flow {flow} has no published version on page {}; publish it first",
            path.page
        )));
    }
    let counts = state
        .runtime
        .notify_topic(&page, &topic, content, now_ms())
        .await
        .map_err(|err| match err {
            botflow_runtime::RuntimeError::ShuttingDown => {
                ApiError::Unavailable("the server is shutting down".to_owned())
            }
            other => ApiError::internal(other),
        })?;
    tracing::info!(%topic, queued = counts.queued, no_token = counts.no_token, recurring = counts.recurring.queued, "topic notified");
    Ok((
        StatusCode::ACCEPTED,
        Json(NotifyReport {
            id: counts.notification.0,
            topic,
            queued: counts.queued,
            no_token: counts.no_token,
            expired: counts.expired,
            recurring_queued: counts.recurring.queued,
            recurring_not_due: counts.recurring.not_due,
            recurring_stopped: counts.recurring.stopped,
            recurring_expired: counts.recurring.expired,
        }),
    ))
}
