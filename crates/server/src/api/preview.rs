//! `POST /api/pages/{page}/preview`: plays a draft through the real step function for the
//! builder's preview pane. Stateless: the client sends the session the server answered last time
//! (the steps played so far) and one new input; nothing is stored and nothing is sent.

use crate::api::PagePath;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use botflow_flow::{ValidFlow, check_text};
use botflow_runtime::simulate::{PreviewTurn, ScriptStep, preview};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// Most steps one preview session may hold (each request replays them all).
const MAX_PREVIEW_STEPS: usize = 200;

/// The body of a preview request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewRequest {
    /// The draft flow document, as the editor holds it.
    document: Value,
    /// The session the previous answer returned; `null` (or absent) starts a new conversation.
    #[serde(default)]
    session: Option<PreviewSession>,
    /// What the subscriber does next, as a step of a `botflow simulate` script; absent replays
    /// the session as it is.
    #[serde(default)]
    input: Option<Value>,
    /// Fields the subscriber starts with (default `first_name: "Preview"`).
    #[serde(default)]
    fields: Option<BTreeMap<String, String>>,
}

/// The conversation so far: the subscriber's steps, replayed on every request.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewSession {
    /// `{"user": "text"}`, `{"tap": "title"}`, `{"optin": true}`, `{"get_started": true}`, …
    /// in the format of `botflow simulate` scripts.
    steps: Vec<Value>,
}

/// The answer: every turn of the conversation so far, and the session to send next time.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PreviewReport {
    session: PreviewSession,
    turns: Vec<PreviewTurnView>,
}

/// One turn: what the subscriber did and the bot's answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PreviewTurn)]
pub(crate) struct PreviewTurnView {
    input: String,
    messages: Vec<PreviewMessageView>,
    notes: Vec<String>,
}

/// One bot message as the subscriber sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PreviewMessage)]
pub(crate) struct PreviewMessageView {
    /// `text`, `image`, `file`, `otn_request` or `other`.
    #[schema(value_type = String)]
    kind: &'static str,
    /// The text, the attachment URL or the OTN request's title.
    text: String,
    buttons: Vec<PreviewButtonView>,
    quick_replies: Vec<String>,
    /// `null` when delivered, else why not (`refused`: outside the 24-hour window;
    /// `not sent`: no usable OTN token).
    #[schema(value_type = Option<String>)]
    not_delivered: Option<&'static str>,
}

/// A button of a bot message.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PreviewButton)]
pub(crate) struct PreviewButtonView {
    title: String,
    url: Option<String>,
}

impl From<PreviewTurn> for PreviewTurnView {
    fn from(turn: PreviewTurn) -> Self {
        Self {
            input: turn.input,
            notes: turn.notes,
            messages: turn
                .messages
                .into_iter()
                .map(|m| PreviewMessageView {
                    kind: m.summary.kind,
                    text: m.summary.text,
                    buttons: m
                        .summary
                        .buttons
                        .into_iter()
                        .map(|b| PreviewButtonView {
                            title: b.title,
                            url: b.url,
                        })
                        .collect(),
                    quick_replies: m
                        .summary
                        .quick_replies
                        .into_iter()
                        .map(|(title, _)| title)
                        .collect(),
                    not_delivered: m.not_delivered,
                })
                .collect(),
        }
    }
}

/// 200 with the turns; 422 with the diagnostics when the draft has errors, or naming a step
/// that is not a preview input; 404 for an unknown Page.
#[utoipa::path(
    post,
    path = "/pages/{page}/preview",
    operation_id = "previewDraft",
    tag = "flows",
    params(PagePath),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "Every turn of the conversation so far, and the session to send next time.", body = PreviewReport),
        (status = 400, description = "The body is not JSON.", body = ErrorBody),
        (status = 404, description = "Unknown Page.", body = ErrorBody),
        (status = 422, description = "The draft has errors (listed in `diagnostics`), a step is not a preview input, an unknown field, or the session is over 200 steps.", body = ErrorBody),
    )
)]
pub(crate) async fn preview_draft(
    State(state): State<Arc<AppState>>,
    Path(path): Path<PagePath>,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> Result<Json<PreviewReport>, ApiError> {
    let page = state.page(&path.page)?;
    let report = check_text(&request.document.to_string());
    let errors: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::InvalidFlow(errors));
    }
    let document = report.document.ok_or_else(|| {
        ApiError::Unprocessable("the document could not be read as a flow".to_owned())
    })?;
    let draft = ValidFlow::new(document).map_err(ApiError::InvalidFlow)?;
    let mut session = request.session.unwrap_or_default();
    if let Some(input) = request.input {
        session.steps.push(input);
    }
    if session.steps.len() > MAX_PREVIEW_STEPS {
        return Err(ApiError::Unprocessable(format!(
            "a preview holds at most {MAX_PREVIEW_STEPS} steps; restart it"
        )));
    }
    let steps = session
        .steps
        .iter()
        .enumerate()
        .map(|(i, value)| parse_step(i, value))
        .collect::<Result<Vec<_>, _>>()?;
    let draft_id = draft.document().id.clone();
    let others = state
        .with_store(move |store| store.active_flows(&page))
        .await?;
    let mut flows = vec![draft];
    flows.extend(
        others
            .flows
            .into_iter()
            .filter(|active| active.flow != draft_id)
            .map(|active| active.valid.as_ref().clone()),
    );
    let fields = request
        .fields
        .unwrap_or_else(|| [("first_name".to_owned(), "Preview".to_owned())].into());
    let turns = tokio::task::spawn_blocking(move || preview(&flows, fields, &steps))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(PreviewReport {
        session,
        turns: turns.into_iter().map(PreviewTurnView::from).collect(),
    }))
}

fn parse_step(index: usize, value: &Value) -> Result<ScriptStep, ApiError> {
    let step: ScriptStep = serde_json::from_value(value.clone()).map_err(|err| {
        ApiError::Unprocessable(format!(
            "preview step {index} is not an input ({err}); use {{\"user\": TEXT}}, {{\"tap\": TITLE}}, \
             {{\"optin\": true}}, {{\"get_started\": true}}, {{\"referral\": REF}} or {{\"advance\": \"1h\"}}"
        ))
    })?;
    match step {
        ScriptStep::Expect(_) => Err(ApiError::Unprocessable(format!(
            "preview step {index}: `expect` belongs in simulate scripts, not in a preview"
        ))),
        step => Ok(step),
    }
}
