//! Topic notifications as resources: `GET /api/pages/{page}/notifications[?topic=]`,
//! `GET .../notifications/{id}` and `POST .../notifications/{id}/cancel`, each a notification's
//! state, totals, times and time left at the Page's pace.

use crate::api::PagePath;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use botflow_runtime::{NotificationProgress, RuntimeError};
use botflow_storage::{NotificationContent, NotificationId, NotificationState, NotificationTotals};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Path of routes under one notification.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct NotificationPath {
    /// Page id (one of `GET /api/pages`).
    page: String,
    /// Notification id (the `id` a notify answers); not a whole number is a 400.
    #[param(value_type = u64, minimum = 0)]
    id: u64,
}

/// Query of the notification list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only the notifications of this topic id.
    topic: Option<String>,
}

/// Where a notification stands: `queued` (nothing sent yet), `sending`, `done` (nothing left
/// pending) or `cancelled`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = NotificationState)]
pub(crate) enum StateView {
    /// Created; none of its messages started sending.
    Queued,
    /// Sending; some messages are pending.
    Sending,
    /// Every queued message is finished.
    Done,
    /// Cancelled: messages not yet sent were removed and their tokens are usable again.
    Cancelled,
}

impl From<NotificationState> for StateView {
    fn from(state: NotificationState) -> Self {
        match state {
            NotificationState::Queued => Self::Queued,
            NotificationState::Sending => Self::Sending,
            NotificationState::Done => Self::Done,
            NotificationState::Cancelled => Self::Cancelled,
        }
    }
}

/// A notification's counts. Every message in `queued` is `pending` or in exactly one of `sent`,
/// `failed`, `refused`, `unconfirmed` and `cancelled`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NotificationTotals)]
pub(crate) struct TotalsView {
    /// Messages queued, each paying with one token.
    queued: u64,
    /// Of `queued`, the messages paid for by recurring tokens (counted in the same totals).
    recurring: u64,
    /// Messages not finished yet.
    pending: u64,
    /// Messages the Send API accepted.
    sent: u64,
    /// Messages that failed for good (their tokens are invalid).
    failed: u64,
    /// Messages refused by policy before sending.
    refused: u64,
    /// Token sends that may have been delivered, unconfirmed (never retried).
    unconfirmed: u64,
    /// Subscribers listed as holders whose tokens were gone when their turn came.
    no_token: u64,
    /// Tokens found expired while notifying.
    expired: u64,
    /// Messages removed by a cancel before they were sent (their tokens are usable again).
    cancelled: u64,
}

impl From<NotificationTotals> for TotalsView {
    fn from(t: NotificationTotals) -> Self {
        Self {
            queued: t.queued,
            recurring: t.recurring,
            pending: t.pending(),
            sent: t.sent,
            failed: t.failed,
            refused: t.refused,
            unconfirmed: t.unconfirmed,
            no_token: t.no_token,
            expired: t.expired,
            cancelled: t.cancelled,
        }
    }
}

/// A flow notification's runs: one per subscriber, each counted when its step commits.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NotificationRuns)]
pub(crate) struct RunsView {
    /// Runs journaled (one per subscriber reached); null while they are being journaled.
    expected: Option<u64>,
    /// Runs committed (the notification is fully queued once every expected run is).
    done: u64,
    /// Of `done`, runs that failed (recorded without their effects; the server's log says why).
    failed: u64,
}

/// A topic notification: what it sends, where it stands, its counts and times.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Notification)]
pub(crate) struct NotificationView {
    /// Its id.
    id: u64,
    /// The topic whose tokens pay for it.
    topic: String,
    /// `text`, or `flow` (then `flow` names it).
    content: &'static str,
    /// The flow it runs, for `content: flow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<String>,
    /// Where it stands.
    state: StateView,
    /// Its counts.
    totals: TotalsView,
    /// For `content: flow`, how far its runs are (absent for a text).
    #[serde(skip_serializing_if = "Option::is_none")]
    runs: Option<RunsView>,
    /// When it was created (Unix ms).
    created_ms: u64,
    /// When its first message started sending (Unix ms).
    started_ms: Option<u64>,
    /// When it became done or cancelled (Unix ms).
    finished_ms: Option<u64>,
    /// Estimated time until its pending messages are sent, at the Page's pace (ms); null once
    /// done or cancelled.
    eta_ms: Option<u64>,
    /// The Page's pace the estimate uses (Send API calls per second).
    rate_per_sec: u64,
}

impl From<NotificationProgress> for NotificationView {
    fn from(progress: NotificationProgress) -> Self {
        let n = progress.notification;
        let (content, flow) = match n.content {
            NotificationContent::Text => ("text", None),
            NotificationContent::Flow { flow } => ("flow", Some(flow.0)),
        };
        let runs = flow.is_some().then_some(RunsView {
            expected: n.runs.expected,
            done: n.runs.done,
            failed: n.runs.failed,
        });
        Self {
            id: n.id.0,
            topic: n.topic.0,
            content,
            flow,
            state: n.state.into(),
            totals: n.totals.into(),
            runs,
            created_ms: n.created_ms,
            started_ms: n.started_ms,
            finished_ms: n.finished_ms,
            eta_ms: progress.eta_ms,
            rate_per_sec: progress.rate_per_sec,
        }
    }
}

/// What a cancel did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NotificationCancelled)]
pub(crate) struct CancelView {
    /// The notification after the cancel (`cancelled`).
    notification: NotificationView,
    /// Messages removed from the outbox (not sent).
    removed: u64,
    /// Tokens of removed messages usable again (the others had expired meanwhile).
    tokens_restored: u64,
}

fn runtime_error(err: RuntimeError) -> ApiError {
    match err {
        RuntimeError::Store(store) => store.into(),
        RuntimeError::ShuttingDown => ApiError::Unavailable("the server is shutting down".into()),
        other => ApiError::internal(other),
    }
}

fn not_found(path: &NotificationPath) -> ApiError {
    ApiError::NotFound(format!(
        "notification {} not found on page {}",
        path.id, path.page
    ))
}

/// The Page's notifications, newest first.
#[utoipa::path(
    get,
    path = "/pages/{page}/notifications",
    operation_id = "listNotifications",
    tag = "notifications",
    params(PagePath, ListQuery),
    responses(
        (status = 200, description = "The Page's notifications (of `topic` when given), newest first.", body = [NotificationView], links(
            ("show" = (operation_id = "getNotification", parameters(("page" = "$request.path.page"), ("id" = "$response.body#/0/id")), description = "The newest notification.")),
            ("cancel" = (operation_id = "cancelNotification", parameters(("page" = "$request.path.page"), ("id" = "$response.body#/0/id")), description = "Cancel the newest notification.")),
        )),
        (status = 404, description = "Unknown Page.", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Path(path): Path<PagePath>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    let page = state.page(&path.page)?;
    let topic = query.topic.map(botflow_flow::TopicId::from);
    let all = state
        .runtime
        .notifications(&page, topic)
        .await
        .map_err(runtime_error)?;
    Ok(Json(all.into_iter().map(NotificationView::from).collect()))
}

/// One notification with its progress.
#[utoipa::path(
    get,
    path = "/pages/{page}/notifications/{id}",
    operation_id = "getNotification",
    tag = "notifications",
    params(NotificationPath),
    responses(
        (status = 200, description = "The notification.", body = NotificationView),
        (status = 400, description = "The id is not a whole number.", body = ErrorBody),
        (status = 404, description = "Unknown Page or notification.", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Path(path): Path<NotificationPath>,
) -> Result<Json<NotificationView>, ApiError> {
    let page = state.page(&path.page)?;
    let found = state
        .runtime
        .notification(&page, NotificationId(path.id))
        .await
        .map_err(runtime_error)?;
    found
        .map(|n| Json(n.into()))
        .ok_or_else(|| not_found(&path))
}

/// Cancels a running notification: its messages not yet sent are removed and their tokens are
/// usable again; a message whose send already started finishes normally (and still counts).
#[utoipa::path(
    post,
    path = "/pages/{page}/notifications/{id}/cancel",
    operation_id = "cancelNotification",
    tag = "notifications",
    params(NotificationPath),
    responses(
        (status = 200, description = "Cancelled; how many messages were removed and tokens given back.", body = CancelView),
        (status = 400, description = "The id is not a whole number.", body = ErrorBody),
        (status = 404, description = "Unknown Page or notification.", body = ErrorBody),
        (status = 409, description = "The notification is done or cancelled already.", body = ErrorBody),
        (status = 503, description = "The server is shutting down.", body = ErrorBody),
    )
)]
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(path): Path<NotificationPath>,
) -> Result<Json<CancelView>, ApiError> {
    let page = state.page(&path.page)?;
    let id = NotificationId(path.id);
    let cancel = state
        .runtime
        .cancel_notification(&page, id)
        .await
        .map_err(runtime_error)?;
    tracing::info!(notification = %id, removed = cancel.removed, "notification cancelled");
    let notification = state
        .runtime
        .notification(&page, id)
        .await
        .map_err(runtime_error)?
        .ok_or_else(|| not_found(&path))?;
    Ok(Json(CancelView {
        notification: notification.into(),
        removed: cancel.removed,
        tokens_restored: cancel.tokens_restored,
    }))
}
