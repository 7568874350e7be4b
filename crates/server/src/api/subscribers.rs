//! A subscriber's view: session, fields, tags and usable OTN tokens by topic.

use crate::api::SubscriberPath;
use crate::error::{ApiError, ErrorBody};
use crate::ingest::now_ms;
use crate::openapi::SessionSchema;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use botflow_flow::TopicId;
use botflow_storage::{Psid, Session};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use utoipa::ToSchema;

/// One topic the subscriber holds usable tokens of.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenCount {
    /// The topic's id.
    #[schema(value_type = String)]
    topic: TopicId,
    /// Its name; null when the topic was deleted since.
    name: Option<String>,
    /// Usable tokens the subscriber holds for it.
    usable: u64,
}

/// The answer of `GET /api/pages/{page}/subscribers/{psid}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Subscriber)]
pub(crate) struct SubscriberView {
    /// The Page.
    page: String,
    /// The subscriber's page-scoped id.
    psid: String,
    /// Custom and profile fields.
    fields: BTreeMap<String, String>,
    /// Tags set by the flows.
    tags: BTreeSet<String>,
    /// Usable OTN tokens, by topic.
    tokens_by_topic: Vec<TokenCount>,
    /// The stored session (flow position, wait, fields, tags, timers), if any.
    #[schema(value_type = Option<SessionSchema>)]
    session: Option<Session>,
}

/// `GET /api/pages/{page}/subscribers/{psid}`: 404 for a PSID with neither session nor tokens.
#[utoipa::path(
    get,
    path = "/pages/{page}/subscribers/{psid}",
    operation_id = "getSubscriber",
    tag = "subscribers",
    params(SubscriberPath),
    responses(
        (status = 200, description = "The subscriber.", body = SubscriberView),
        (status = 404, description = "Unknown Page, or a PSID with neither session nor tokens.", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Path(path): Path<SubscriberPath>,
) -> Result<Json<SubscriberView>, ApiError> {
    let page = state.page(&path.page)?;
    let psid = Psid::from(path.psid.clone());
    let (session, counts, names) = state
        .with_store(move |store| {
            let session = store.load_session(&page, &psid)?;
            let counts = store.usable_token_counts(&page, &psid, now_ms())?;
            let names: BTreeMap<TopicId, String> = store
                .list_topics(&page, now_ms())?
                .into_iter()
                .map(|summary| (summary.topic.id, summary.topic.name))
                .collect();
            Ok((session, counts, names))
        })
        .await?;
    if session.is_none() && counts.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no subscriber {} on page {}",
            path.psid, path.page
        )));
    }
    let tokens_by_topic = counts
        .into_iter()
        .map(|(topic, usable)| TokenCount {
            name: names.get(&topic).cloned(),
            topic,
            usable,
        })
        .collect();
    let (fields, tags) = session
        .as_ref()
        .map(|s| (s.fields.clone(), s.tags.clone()))
        .unwrap_or_default();
    Ok(Json(SubscriberView {
        page: path.page,
        psid: path.psid,
        fields,
        tags,
        tokens_by_topic,
        session,
    }))
}
