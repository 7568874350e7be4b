//! The Messenger webhook: the GET subscribe handshake and signed POST deliveries.
//!
//! A POST is answered 200 only after every event of the batch for a served Page is in the
//! durable journal; a missing or wrong signature is a 401 and nothing is stored.

use crate::error::{ApiError, ErrorBody, body_bytes};
use crate::ingest::event_parties;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use botflow_messenger::signature::SIGNATURE_HEADER;
use botflow_messenger::{
    MessagingEvent, SubscriptionQuery, parse_webhook, verify_signature, verify_subscription,
};
use serde::Serialize;
use std::sync::Arc;
use utoipa::openapi::{ArrayBuilder, ObjectBuilder, RefOr, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// `GET /webhook`: answers Meta's subscribe handshake with the challenge, or 403; a query that
/// cannot be read (a parameter given twice) is a 400.
#[utoipa::path(
    get,
    path = "/webhook",
    operation_id = "webhookHandshake",
    tag = "webhook",
    params(
        ("hub.mode" = String, Query, description = "Must be `subscribe`."),
        ("hub.verify_token" = String, Query, description = "Must equal the configured verify token."),
        ("hub.challenge" = String, Query, description = "Echoed back on success."),
    ),
    responses(
        (status = 200, description = "The `hub.challenge`, echoed.", content_type = "text/plain", body = String),
        (status = 400, description = "A parameter is given more than once.", body = ErrorBody),
        (status = 403, description = "A parameter is missing, or the mode or verify token is wrong.", body = ErrorBody),
    )
)]
pub(crate) async fn handshake(
    State(state): State<Arc<AppState>>,
    Query(query): Query<SubscriptionQuery>,
) -> Result<String, ApiError> {
    verify_subscription(&query, &state.config.verify_token).map_err(|err| {
        tracing::warn!(%err, "webhook handshake refused");
        ApiError::Forbidden(err.to_string())
    })
}

/// The body of a delivery as [`parse_webhook`] reads it: an object with a string `object` and an
/// `entry` array; entries that are not objects are skipped, and every other part is lenient
/// (unknown event kinds are kept), so nothing else can make a signed delivery a 400.
pub(crate) struct WebhookEnvelope;

impl PartialSchema for WebhookEnvelope {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Messenger's `{\"object\": \"page\", \"entry\": [...]}` envelope; entries are \
                 `{\"id\", \"time\", \"messaging\": [...]}` objects (others are skipped).",
            ))
            .property("object", ObjectBuilder::new().schema_type(Type::String))
            .required("object")
            .property(
                "entry",
                // Any items: an entry that is not an object is skipped, not refused.
                ArrayBuilder::new().items(
                    ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::AnyValue),
                ),
            )
            .required("entry")
            .into()
    }
}

impl ToSchema for WebhookEnvelope {}

/// The JSON answer to an accepted delivery (Meta ignores it; operators and tests read it).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryReceipt {
    /// Events journaled for the first time by this delivery.
    received: usize,
    /// Events already journaled by an earlier delivery.
    duplicates: usize,
    /// Events skipped because they are for a Page botflow does not serve.
    ignored: usize,
}

/// `POST /webhook`: verifies the signature on the raw body, parses the envelope, journals the
/// events durably, hands the new ones to the runtime, then answers 200.
#[utoipa::path(
    post,
    path = "/webhook",
    operation_id = "webhookReceive",
    tag = "webhook",
    params(
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the body with the app secret."),
    ),
    request_body(content = WebhookEnvelope, description = "The delivery, signed as it is sent."),
    responses(
        (status = 200, description = "Every event is journaled; redeliveries are counted as duplicates.", body = DeliveryReceipt),
        (status = 400, description = "The body is not JSON, or has no string `object` or no `entry` array.", body = ErrorBody),
        (status = 401, description = "Missing or wrong signature; nothing stored.", body = ErrorBody),
        (status = 413, description = "The body is larger than the configured limit.", body = ErrorBody),
        (status = 503, description = "The PostgreSQL database is unreachable; nothing stored (Messenger redelivers).", body = ErrorBody),
    )
)]
pub(crate) async fn receive(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<impl IntoResponse, ApiError> {
    let signature = signature_header(request.headers());
    let body = body_bytes(request, &()).await?;
    if let Err(err) = verify_signature(
        state.config.app_secret.as_bytes(),
        &body,
        signature.as_deref(),
    ) {
        state.metrics.webhook_bad_signature.inc();
        tracing::warn!(%err, bytes = body.len(), "webhook refused");
        return Err(ApiError::Unauthorized(err.to_string()));
    }
    let delivery = parse_webhook(&body).map_err(|err| {
        state.metrics.webhook_malformed.inc();
        tracing::warn!(%err, "malformed webhook");
        ApiError::BadJson(err.to_string())
    })?;
    state.metrics.webhook_requests.inc();
    if !delivery.is_page() {
        tracing::info!(object = %delivery.object, "webhook for a non-page object ignored");
        return Ok(Json(DeliveryReceipt {
            received: 0,
            duplicates: 0,
            ignored: delivery.events().count(),
        }));
    }
    let (served, foreign): (Vec<MessagingEvent>, Vec<MessagingEvent>) = delivery
        .into_events()
        .into_iter()
        .partition(|event| state.serves_page(event_parties(event).0));
    for event in &foreign {
        tracing::warn!(page = %event_parties(event).0, "event for a Page botflow does not serve ignored");
    }
    // Journaling and the hand-off to the runtime run in their own task: Messenger hangs up on
    // slow answers, and a dropped request future must not leave journaled events behind.
    let ingesting = Arc::clone(&state);
    let outcome = tokio::spawn(async move { ingesting.ingest(served).await })
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(DeliveryReceipt {
        received: outcome.new_events,
        duplicates: outcome.duplicates,
        ignored: foreign.len(),
    }))
}

fn signature_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
