//! The one error type of the HTTP layer and its JSON form `{"error": {"code", "message"}}`.
//!
//! Every handler returns [`ApiError`]; [`ApiJson`] replaces axum's `Json` extractor so that a body
//! that is not JSON is a 400 in the same shape rather than axum's plain-text rejection.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use botflow_flow::Diagnostic;
use botflow_storage::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::openapi::DiagnosticSchema;

/// An error answered to an HTTP client; the variant fixes the status and the stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong bearer token, or a webhook without a valid signature (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The webhook verification handshake was refused (403).
    #[error("{0}")]
    Forbidden(String),
    /// The body is not valid JSON (400).
    #[error("{0}")]
    BadJson(String),
    /// A query or path parameter cannot be used (400).
    #[error("{0}")]
    BadRequest(String),
    /// The page, topic, flow, version, subscriber or route does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this route (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A name already taken, or a delete of something still in use (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the configured limit (413).
    #[error("request body larger than {limit_bytes} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit_bytes: usize,
    },
    /// Valid JSON that breaks a rule, such as an empty topic name or a missing field (422).
    #[error("{0}")]
    Unprocessable(String),
    /// A flow that cannot be published because validation found errors (422).
    #[error("the flow has {} validation error(s)", .0.iter().filter(|d| d.is_error()).count())]
    InvalidFlow(Vec<Diagnostic>),
    /// The server is shutting down or overloaded (503).
    #[error("{0}")]
    Unavailable(String),
    /// A failure on our side, such as storage I/O (500); the details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadJson(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable(_) | Self::InvalidFlow(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code put in the body.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::BadJson(_) => ErrorCode::BadJson,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::Unprocessable(_) => ErrorCode::Unprocessable,
            Self::InvalidFlow(_) => ErrorCode::InvalidFlow,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Shorthand for a 500 built from any displayable failure.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidTopicName { .. } | StoreError::UnknownTopic { .. } => {
                Self::Unprocessable(err.to_string())
            }
            StoreError::TopicNameTaken { .. }
            | StoreError::TopicInUse { .. }
            | StoreError::NotificationFinished { .. } => Self::Conflict(err.to_string()),
            StoreError::TopicNotFound { .. }
            | StoreError::FlowNotFound { .. }
            | StoreError::VersionNotFound { .. }
            | StoreError::TokenNotFound { .. }
            | StoreError::NotificationNotFound { .. }
            | StoreError::OutboundNotFound(_) => Self::NotFound(err.to_string()),
            StoreError::FlowParse { diagnostics } | StoreError::FlowInvalid { diagnostics, .. } => {
                Self::InvalidFlow(diagnostics)
            }
            other if other.is_transient() => Self::Unavailable(other.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// The stable machine-readable codes of [`ApiError`], as written in `error.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 400: the body is not JSON.
    BadJson,
    /// 400: a query or path parameter cannot be used.
    BadRequest,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 409.
    Conflict,
    /// 413.
    PayloadTooLarge,
    /// 422: JSON that breaks a rule.
    Unprocessable,
    /// 422: a flow with validation errors, listed in `diagnostics`.
    InvalidFlow,
    /// 503.
    Unavailable,
    /// 500.
    Internal,
}

/// Every error answer: `{"error": {"code", "message", "diagnostics"?}}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// The inside of an error answer.
#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// Stable, machine-readable.
    code: ErrorCode,
    /// What went wrong, for a person.
    message: String,
    /// The flow's problems, for `invalid_flow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<DiagnosticSchema>>)]
    diagnostics: Option<Vec<Diagnostic>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            // Storage paths and the like stay in the log, not in the answer.
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error; see the server log".to_owned()
            }
            other => other.to_string(),
        };
        let code = self.code();
        let diagnostics = match self {
            Self::InvalidFlow(diagnostics) => Some(diagnostics),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                diagnostics,
            },
        };
        (status, Json(body)).into_response()
    }
}

/// A JSON request body: a non-JSON body is an [`ApiError::BadJson`] (400), JSON of the wrong
/// shape an [`ApiError::Unprocessable`] (422).
///
/// Unlike axum's `Json`, a missing `Content-Type` is accepted (curl users forget it), but a
/// declared non-JSON content type is refused.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_non_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let essence = value.split(';').next().unwrap_or("").trim();
                !(essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json"))
            });
        if declared_non_json {
            return Err(ApiError::BadJson(
                "expected a body with Content-Type: application/json".to_owned(),
            ));
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Reads a whole request body, mapping a body over the limit to [`ApiError::PayloadTooLarge`].
pub(crate) async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<bytes::Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(0, |limit| limit.0);
    bytes::Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit_bytes: limit },
            _ => ApiError::BadRequest(format!("cannot read the request body: {rejection}")),
        })
}

/// Parses JSON text into `T`, describing the problem (with line and column) on failure.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        // Well-formed JSON of the wrong shape breaks a rule of the API: 422, as axum does.
        serde_json::error::Category::Data => {
            ApiError::Unprocessable(format!("JSON of the wrong shape: {err}"))
        }
        _ => ApiError::BadJson(format!("invalid JSON: {err}")),
    })
}

/// The configured body limit, put in request extensions so rejections can name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_error_is_a_json_body_with_code_and_message() {
        let cases = [
            (
                ApiError::Unauthorized("no token".into()),
                401,
                "unauthorized",
            ),
            (ApiError::BadJson("bad".into()), 400, "bad_json"),
            (ApiError::NotFound("no topic".into()), 404, "not_found"),
            (ApiError::Conflict("taken".into()), 409, "conflict"),
            (
                ApiError::Unprocessable("empty".into()),
                422,
                "unprocessable",
            ),
            (
                ApiError::PayloadTooLarge { limit_bytes: 10 },
                413,
                "payload_too_large",
            ),
        ];
        for (error, status, code) in cases {
            let message = error.to_string();
            let (actual_status, body) = body_of(error).await;
            assert_eq!(actual_status.as_u16(), status);
            assert_eq!(body["error"]["code"], code);
            assert_eq!(body["error"]["message"], message);
        }
    }

    #[tokio::test]
    async fn internal_details_stay_out_of_the_body() {
        let (status, body) = body_of(ApiError::internal("sled: /secret/path broken")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("/secret/path"));
    }

    #[test]
    fn parse_errors_tell_syntax_from_shape() {
        let err = parse_json::<serde_json::Value>(b"{oops").unwrap_err();
        assert!(matches!(err, ApiError::BadJson(_)), "{err}");
        let err = parse_json::<Vec<u32>>(b"{\"a\": 1}").unwrap_err();
        assert!(matches!(err, ApiError::Unprocessable(_)), "{err}");
    }
}
