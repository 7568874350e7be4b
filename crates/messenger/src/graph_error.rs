//! Graph API error bodies and their classification into [`SendError`] kinds by code and subcode.
//!
//! | class | codes (code/subcode) | retried |
//! | --- | --- | --- |
//! | server (transient) | 1, 2, 1200, any HTTP 5xx | yes |
//! | throttled | 4, 17, 32, 613 (incl. 613/2534040), HTTP 429 | yes, honouring `Retry-After` |
//! | auth / Page config | 190, 10 (other subcodes), 10/1893063, 200–299, subcode 2018300, HTTP 401/403 | no |
//! | outside the window | 10/2018278, 10/2534022 | no |
//! | user unavailable | 551, 551/1545041, 200/1545041, 10/2018108, 100/2018001 | no |
//! | invalid request | 100, any other 4xx | no |
//!
//! On a send to a notification token, every permanent class except auth becomes
//! [`SendError::TokenUnusable`]: Meta documents no specific code for a used, expired or invalid token.

use crate::client::SendError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the Graph API (or the transport) said about a failed send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The HTTP status, when a response arrived.
    pub http_status: Option<u16>,
    /// `error.code`, when present.
    pub code: Option<i64>,
    /// `error.error_subcode`, when present.
    pub subcode: Option<i64>,
    /// `error.message`, or a description of the transport failure.
    pub message: String,
    /// `error.fbtrace_id`, for Meta support, when present.
    pub fbtrace_id: Option<String>,
    /// How many HTTP attempts the client made before giving up with this error (0: none, e.g. a limit error).
    pub attempts: u32,
    /// Whether this or an earlier attempt of the same send may have reached the platform without
    /// an answer (timeout, connection lost after sending, 5xx): the message may have been delivered.
    #[serde(default)]
    pub maybe_delivered: bool,
}

impl ErrorDetail {
    /// A detail for a failure with no Graph API error body (transport errors, limits).
    pub fn from_message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }
}

impl std::fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(status) = self.http_status {
            write!(f, " (HTTP {status}")?;
            if let Some(code) = self.code {
                write!(f, ", code {code}")?;
            }
            if let Some(subcode) = self.subcode {
                write!(f, "/{subcode}")?;
            }
            if let Some(trace) = &self.fbtrace_id {
                write!(f, ", fbtrace_id {trace}")?;
            }
            f.write_str(")")?;
        }
        write!(f, " after {} attempt(s)", self.attempts)
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphErrorBody,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

/// Reads a Graph API error response (`{"error": {...}}`) into an [`ErrorDetail`]; a body of
/// another shape keeps its first 300 characters as the message.
pub fn parse_error_body(http_status: u16, body: &[u8]) -> ErrorDetail {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(ErrorEnvelope { error }) => ErrorDetail {
            http_status: Some(http_status),
            code: error.code,
            subcode: error.error_subcode,
            message: error
                .message
                .unwrap_or_else(|| "Graph API error without a message".to_owned()),
            fbtrace_id: error.fbtrace_id,
            attempts: 0,
            maybe_delivered: false,
        },
        Err(_) => ErrorDetail {
            http_status: Some(http_status),
            message: String::from_utf8_lossy(body).chars().take(300).collect(),
            ..ErrorDetail::default()
        },
    }
}

/// Classifies an error response by code and subcode first, then by HTTP status (see the module table).
/// `to_token` says whether the request was addressed to a notification token.
pub fn classify(detail: ErrorDetail, retry_after: Option<Duration>, to_token: bool) -> SendError {
    let status = detail.http_status.unwrap_or(0);
    let error = match (detail.code, detail.subcode) {
        (Some(1 | 2 | 1200), _) => SendError::Server(detail),
        (Some(4 | 17 | 32 | 613), _) => SendError::Throttled {
            detail,
            retry_after,
        },
        (Some(10), Some(2018278 | 2534022)) => SendError::OutsideWindow(detail),
        (Some(551), _)
        | (Some(200), Some(1545041))
        | (Some(10), Some(2018108))
        | (Some(100), Some(2018001)) => SendError::UserUnavailable(detail),
        (_, Some(2018300)) | (Some(190 | 10), _) | (Some(200..=299), _) => SendError::Auth(detail),
        (Some(100), _) => SendError::InvalidRequest(detail),
        _ if status == 429 => SendError::Throttled {
            detail,
            retry_after,
        },
        _ if status >= 500 => SendError::Server(detail),
        _ if status == 401 || status == 403 => SendError::Auth(detail),
        _ => SendError::InvalidRequest(detail),
    };
    if to_token {
        match error {
            SendError::OutsideWindow(detail)
            | SendError::UserUnavailable(detail)
            | SendError::InvalidRequest(detail) => SendError::TokenUnusable(detail),
            other => other,
        }
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(
        status: u16,
        code: Option<i64>,
        subcode: Option<i64>,
        to_token: bool,
    ) -> &'static str {
        let detail = ErrorDetail {
            http_status: Some(status),
            code,
            subcode,
            ..ErrorDetail::default()
        };
        classify(detail, None, to_token).class()
    }

    #[test]
    fn classifies_documented_codes() {
        let cases: &[(u16, Option<i64>, Option<i64>, &str)] = &[
            (500, Some(1), None, "server"),
            (400, Some(2), None, "server"),
            (400, Some(1200), None, "server"),
            (503, None, None, "server"),
            (400, Some(4), None, "throttled"),
            (400, Some(17), None, "throttled"),
            (400, Some(32), None, "throttled"),
            (400, Some(613), Some(2534040), "throttled"),
            (429, None, None, "throttled"),
            (400, Some(190), None, "auth"),
            (400, Some(10), Some(1893063), "auth"),
            (403, Some(10), None, "auth"),
            (400, Some(200), None, "auth"),
            (400, Some(299), None, "auth"),
            (400, Some(10), Some(2018300), "auth"),
            (401, None, None, "auth"),
            (400, Some(10), Some(2018278), "outside_window"),
            (400, Some(10), Some(2534022), "outside_window"),
            (400, Some(551), None, "user_unavailable"),
            (400, Some(551), Some(1545041), "user_unavailable"),
            (400, Some(200), Some(1545041), "user_unavailable"),
            (400, Some(10), Some(2018108), "user_unavailable"),
            (400, Some(100), Some(2018001), "user_unavailable"),
            (400, Some(100), None, "invalid_request"),
            (404, None, None, "invalid_request"),
        ];
        for &(status, code, subcode, expected) in cases {
            assert_eq!(
                class_of(status, code, subcode, false),
                expected,
                "HTTP {status} code {code:?}/{subcode:?}"
            );
        }
    }

    #[test]
    fn permanent_errors_on_token_sends_mean_token_unusable() {
        assert_eq!(
            class_of(400, Some(100), Some(2018001), true),
            "token_unusable"
        );
        assert_eq!(class_of(400, Some(100), None, true), "token_unusable");
        assert_eq!(
            class_of(400, Some(10), Some(2018278), true),
            "token_unusable"
        );
        assert_eq!(class_of(400, Some(551), None, true), "token_unusable");
        // Page-level and transient problems say nothing about the token.
        assert_eq!(class_of(400, Some(190), None, true), "auth");
        assert_eq!(class_of(503, Some(2), None, true), "server");
        assert_eq!(class_of(400, Some(613), None, true), "throttled");
    }

    #[test]
    fn parses_graph_error_bodies() {
        let body = br#"{"error":{"message":"(#10) outside window","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"AbC"}}"#;
        let detail = parse_error_body(400, body);
        assert_eq!(detail.code, Some(10));
        assert_eq!(detail.subcode, Some(2018278));
        assert_eq!(detail.fbtrace_id.as_deref(), Some("AbC"));
        assert_eq!(detail.message, "(#10) outside window");
        let html = parse_error_body(502, b"<html>Bad gateway</html>");
        assert_eq!(html.code, None);
        assert_eq!(html.message, "<html>Bad gateway</html>");
    }
}
