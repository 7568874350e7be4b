//! Webhook authentication: the `X-Hub-Signature-256` check and the GET subscribe handshake.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Name of the HTTP header that carries the body signature.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

const SIGNATURE_PREFIX: &str = "sha256=";

/// Why a webhook body's signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The request carried no `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("malformed X-Hub-Signature-256 header: {reason}")]
    Malformed {
        /// What is wrong with the header value.
        reason: &'static str,
    },
    /// The signature does not match the body under the app secret.
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature-256` value) against HMAC-SHA256 of the raw `body`
/// under `app_secret`, comparing in constant time.
pub fn verify_signature(
    app_secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex_digest = header
        .get(..SIGNATURE_PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(SIGNATURE_PREFIX))
        .and_then(|_| header.get(SIGNATURE_PREFIX.len()..))
        .ok_or(SignatureError::Malformed {
            reason: "expected a \"sha256=\" prefix",
        })?;
    if hex_digest.len() != 64 {
        return Err(SignatureError::Malformed {
            reason: "expected 64 hex digits",
        });
    }
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed {
        reason: "not hexadecimal",
    })?;
    body_mac(app_secret, body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The `X-Hub-Signature-256` header value (`sha256=<hex>`) for `body` under `app_secret`.
pub fn sign_body(app_secret: &[u8], body: &[u8]) -> String {
    let digest = body_mac(app_secret, body).finalize().into_bytes();
    format!("{SIGNATURE_PREFIX}{}", hex::encode(digest))
}

fn body_mac(app_secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this constructor cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(app_secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac
}

/// The query parameters of the GET subscribe handshake; deserializable from a query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionQuery {
    /// `hub.mode`; must be `subscribe`.
    #[serde(rename = "hub.mode")]
    pub mode: Option<String>,
    /// `hub.verify_token`; must equal the configured verify token.
    #[serde(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// `hub.challenge`; echoed back as the response body on success.
    #[serde(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// Why a subscribe handshake was refused (answer 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// A required `hub.*` parameter is missing.
    #[error("missing query parameter {0}")]
    MissingParameter(&'static str),
    /// `hub.mode` is not `subscribe`.
    #[error("hub.mode is {0:?}, expected \"subscribe\"")]
    WrongMode(String),
    /// `hub.verify_token` does not match the configured verify token.
    #[error("hub.verify_token does not match")]
    TokenMismatch,
}

/// Checks a subscribe handshake and returns the challenge to answer with (HTTP 200), or why to
/// answer 403. The verify token is compared in constant time.
pub fn verify_subscription(
    query: &SubscriptionQuery,
    verify_token: &str,
) -> Result<String, SubscriptionError> {
    let mode = query
        .mode
        .as_deref()
        .ok_or(SubscriptionError::MissingParameter("hub.mode"))?;
    if mode != "subscribe" {
        return Err(SubscriptionError::WrongMode(mode.to_owned()));
    }
    let given = query
        .verify_token
        .as_deref()
        .ok_or(SubscriptionError::MissingParameter("hub.verify_token"))?;
    let challenge = query
        .challenge
        .clone()
        .ok_or(SubscriptionError::MissingParameter("hub.challenge"))?;
    if !constant_time_eq(given.as_bytes(), verify_token.as_bytes()) {
        return Err(SubscriptionError::TokenMismatch);
    }
    Ok(challenge)
}

/// Compares two byte strings without an early exit on the first difference.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}
