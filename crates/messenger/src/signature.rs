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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"app-secret";
    const BODY: &[u8] = br#"{"object":"page","entry":[]}"#;

    #[test]
    fn known_vector_matches() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign_body(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn accepts_own_signature_in_either_case() {
        let header = sign_body(SECRET, BODY);
        assert_eq!(verify_signature(SECRET, BODY, Some(&header)), Ok(()));
        let upper = format!("sha256={}", header["sha256=".len()..].to_uppercase());
        assert_eq!(verify_signature(SECRET, BODY, Some(&upper)), Ok(()));
    }

    #[test]
    fn rejects_wrong_secret_altered_body_and_missing_header() {
        let header = sign_body(SECRET, BODY);
        assert_eq!(
            verify_signature(b"other-secret", BODY, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        let altered = br#"{"object":"page","entry":[ ]}"#;
        assert_eq!(
            verify_signature(SECRET, altered, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, BODY, None),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        let digest = &sign_body(SECRET, BODY)["sha256=".len()..];
        for header in [
            "",
            digest,
            &format!("sha1={digest}"),
            &format!("sha256={}", &digest[..62]),
            &format!("sha256={}zz", &digest[..62]),
            "sha256=",
            "sha2",
        ] {
            assert!(
                matches!(
                    verify_signature(SECRET, BODY, Some(header)),
                    Err(SignatureError::Malformed { .. })
                ),
                "{header:?} should be malformed"
            );
        }
    }

    fn query(
        mode: Option<&str>,
        token: Option<&str>,
        challenge: Option<&str>,
    ) -> SubscriptionQuery {
        SubscriptionQuery {
            mode: mode.map(str::to_owned),
            verify_token: token.map(str::to_owned),
            challenge: challenge.map(str::to_owned),
        }
    }

    #[test]
    fn subscription_handshake() {
        assert_eq!(
            verify_subscription(&query(Some("subscribe"), Some("tok"), Some("123")), "tok"),
            Ok("123".to_owned())
        );
        assert_eq!(
            verify_subscription(&query(Some("subscribe"), Some("tOk"), Some("123")), "tok"),
            Err(SubscriptionError::TokenMismatch)
        );
        assert_eq!(
            verify_subscription(&query(Some("subscribe"), Some("tok2"), Some("1")), "tok"),
            Err(SubscriptionError::TokenMismatch)
        );
        assert_eq!(
            verify_subscription(&query(Some("unsubscribe"), Some("tok"), Some("1")), "tok"),
            Err(SubscriptionError::WrongMode("unsubscribe".to_owned()))
        );
        assert_eq!(
            verify_subscription(&query(None, Some("tok"), Some("1")), "tok"),
            Err(SubscriptionError::MissingParameter("hub.mode"))
        );
        assert_eq!(
            verify_subscription(&query(Some("subscribe"), Some("tok"), None), "tok"),
            Err(SubscriptionError::MissingParameter("hub.challenge"))
        );
    }

    #[test]
    fn subscription_query_reads_hub_parameters() {
        let parsed: SubscriptionQuery = serde_json::from_value(serde_json::json!({
            "hub.mode": "subscribe", "hub.verify_token": "t", "hub.challenge": "c"
        }))
        .unwrap();
        assert_eq!(parsed, query(Some("subscribe"), Some("t"), Some("c")));
    }
}
