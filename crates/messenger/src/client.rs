//! The Send API client: pooled reqwest over rustls, retries with capped exponential backoff and
//! jitter on transient failures, and typed, classified errors; it also fetches User Profiles.

use crate::graph_error::{ErrorDetail, classify, parse_error_body};
use crate::send::{LimitError, SendRequest};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The Graph API version botflow is written against.
pub const DEFAULT_API_VERSION: &str = "v23.0";
/// The real Graph API; tests point [`ClientConfig::graph_base_url`] at a local fake instead.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.facebook.com";

/// How often and how patiently a send is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further attempt.
    pub base_delay: Duration,
    /// Upper bound of one delay; a `Retry-After` longer than this is not waited for in the client
    /// but returned as [`SendError::Throttled`] so the caller can reschedule.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1` after attempt `attempt` (1-based) failed: the capped
    /// exponential `base * 2^(attempt-1)` with "equal jitter" (uniform in its upper half), and at
    /// least `retry_after` when the platform gave one.
    pub fn delay_after(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let capped = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = capped / 2;
        let jittered = half + half.mul_f64(fastrand::f64());
        match retry_after {
            Some(hint) => jittered.max(hint),
            None => jittered,
        }
    }
}

/// Everything the client needs to reach the Send API; its `Debug` output hides the token.
#[derive(Clone)]
pub struct ClientConfig {
    /// Scheme and host of the Graph API, e.g. [`DEFAULT_GRAPH_BASE_URL`] or a fake's base URL.
    pub graph_base_url: String,
    /// The Graph API version path segment, e.g. [`DEFAULT_API_VERSION`].
    pub api_version: String,
    /// The Page access token, sent as the `access_token` query parameter; never logged.
    pub page_access_token: String,
    /// Timeout of one HTTP attempt (connect, send and read the response).
    pub timeout: Duration,
    /// Retry behaviour for transient failures.
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("graph_base_url", &self.graph_base_url)
            .field("api_version", &self.api_version)
            .field("page_access_token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl ClientConfig {
    /// A configuration for the real Graph API with default version, timeout (10 s) and retries.
    pub fn new(page_access_token: impl Into<String>) -> Self {
        Self {
            graph_base_url: DEFAULT_GRAPH_BASE_URL.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            page_access_token: page_access_token.into(),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

/// Why a [`SendClient`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL and version do not form a valid URL.
    #[error("invalid Graph API URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL that was formed.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The Page access token is empty.
    #[error("the Page access token is empty")]
    EmptyAccessToken,
    /// The retry policy allows no attempt.
    #[error("retry.max_attempts must be at least 1")]
    NoAttempts,
    /// reqwest could not build the HTTP client (TLS setup).
    #[error("could not build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// A message the Send API accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOk {
    /// `message_id` of the sent message.
    pub message_id: String,
    /// `recipient_id` (the PSID), when the platform returned it.
    pub recipient_id: Option<String>,
    /// How many HTTP attempts it took (1 when the first succeeded).
    pub attempts: u32,
}

/// A person's public profile from the User Profile API; a field the platform did not return is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Profile {
    /// `first_name`.
    #[serde(default)]
    pub first_name: String,
    /// `last_name`.
    #[serde(default)]
    pub last_name: String,
    /// `profile_pic`: a URL of the profile picture (it expires on the platform's side).
    #[serde(default)]
    pub profile_pic: String,
}

/// Why a send failed, classified from the Graph API error code and subcode (see [`crate::graph_error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The request broke a platform limit and was not sent.
    #[error("request not sent, it breaks a Messenger limit: {0}")]
    Limit(LimitError),
    /// A send to a notification token failed permanently: the token is used, expired or invalid.
    #[error("notification token not usable: {0}")]
    TokenUnusable(ErrorDetail),
    /// A token send timed out (or lost its connection) and a retry found the token already
    /// used or invalid: the message was most likely delivered. Never free the subscriber for another token.
    #[error("token send delivered, unconfirmed: {0}")]
    DeliveredUnconfirmed(ErrorDetail),
    /// The person is outside the 24-hour standard messaging window (10/2018278, 10/2534022).
    #[error("recipient is outside the 24-hour messaging window: {0}")]
    OutsideWindow(ErrorDetail),
    /// The person cannot be messaged (551, 200/1545041, 10/2018108, 100/2018001).
    #[error("recipient is unavailable: {0}")]
    UserUnavailable(ErrorDetail),
    /// The request was refused as invalid (100 and other 4xx).
    #[error("invalid Send API request: {0}")]
    InvalidRequest(ErrorDetail),
    /// The Page token or app lacks access (190, 10, 200–299, 2018300): stop sending for the Page.
    #[error("Page access refused: {0}")]
    Auth(ErrorDetail),
    /// Rate limited (4, 17, 32, 613, HTTP 429); retry after `retry_after` when given.
    #[error("throttled: {detail}")]
    Throttled {
        /// What the platform said.
        detail: ErrorDetail,
        /// The platform's `Retry-After` hint, when given.
        retry_after: Option<Duration>,
    },
    /// A transient platform failure (HTTP 5xx, codes 1, 2, 1200).
    #[error("Graph API server error: {0}")]
    Server(ErrorDetail),
    /// The last attempt timed out.
    #[error("Send API request timed out: {0}")]
    Timeout(ErrorDetail),
    /// The last attempt failed in the transport (connect, connection lost).
    #[error("network error: {0}")]
    Network(ErrorDetail),
    /// A success status with a body that is not a Send API answer; the message may have been sent.
    #[error("unexpected Send API response: {0}")]
    InvalidResponse(ErrorDetail),
}

impl SendError {
    /// Whether a later attempt may succeed (server errors, throttling, timeouts, network).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Server(_) | Self::Throttled { .. } | Self::Timeout(_) | Self::Network(_)
        )
    }

    /// Whether retrying this exact request can never succeed.
    pub fn is_permanent(&self) -> bool {
        !self.is_retryable()
    }

    /// Whether the message may have reached the recipient although this send failed: some attempt
    /// timed out, lost its connection after sending, got a 5xx or an unreadable success body.
    /// A caller that reschedules a token send after such an error must treat a later
    /// `TokenUnusable` for it as delivered, unconfirmed.
    pub fn may_have_been_delivered(&self) -> bool {
        matches!(self, Self::DeliveredUnconfirmed(_))
            || self.detail().is_some_and(|detail| detail.maybe_delivered)
    }

    /// The platform's details (code, subcode, message, fbtrace id, attempts), if any.
    pub fn detail(&self) -> Option<&ErrorDetail> {
        match self {
            Self::Limit(_) => None,
            Self::TokenUnusable(detail)
            | Self::DeliveredUnconfirmed(detail)
            | Self::OutsideWindow(detail)
            | Self::UserUnavailable(detail)
            | Self::InvalidRequest(detail)
            | Self::Auth(detail)
            | Self::Throttled { detail, .. }
            | Self::Server(detail)
            | Self::Timeout(detail)
            | Self::Network(detail)
            | Self::InvalidResponse(detail) => Some(detail),
        }
    }

    fn detail_mut(&mut self) -> Option<&mut ErrorDetail> {
        match self {
            Self::Limit(_) => None,
            Self::TokenUnusable(detail)
            | Self::DeliveredUnconfirmed(detail)
            | Self::OutsideWindow(detail)
            | Self::UserUnavailable(detail)
            | Self::InvalidRequest(detail)
            | Self::Auth(detail)
            | Self::Throttled { detail, .. }
            | Self::Server(detail)
            | Self::Timeout(detail)
            | Self::Network(detail)
            | Self::InvalidResponse(detail) => Some(detail),
        }
    }

    /// How many HTTP attempts were made (0 for a limit error).
    pub fn attempts(&self) -> u32 {
        self.detail().map_or(0, |detail| detail.attempts)
    }

    /// A short stable name of the class, for logs and metrics (e.g. `"token_unusable"`).
    pub fn class(&self) -> &'static str {
        match self {
            Self::Limit(_) => "limit",
            Self::TokenUnusable(_) => "token_unusable",
            Self::DeliveredUnconfirmed(_) => "delivered_unconfirmed",
            Self::OutsideWindow(_) => "outside_window",
            Self::UserUnavailable(_) => "user_unavailable",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Auth(_) => "auth",
            Self::Throttled { .. } => "throttled",
            Self::Server(_) => "server",
            Self::Timeout(_) => "timeout",
            Self::Network(_) => "network",
            Self::InvalidResponse(_) => "invalid_response",
        }
    }
}

/// A Send API client for one Page; cheap to clone (the connection pool is shared). Its `Debug`
/// output hides the access token.
#[derive(Clone)]
pub struct SendClient {
    http: reqwest::Client,
    messages_url: reqwest::Url,
    /// `{graph_base_url}/{api_version}`, the base of User Profile requests.
    version_url: reqwest::Url,
    retry: RetryPolicy,
}

impl std::fmt::Debug for SendClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut url = self.messages_url.clone();
        url.set_query(Some("access_token=<redacted>"));
        f.debug_struct("SendClient")
            .field("messages_url", &url.as_str())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SuccessBody {
    message_id: String,
    #[serde(default)]
    recipient_id: Option<String>,
}

/// The outcome of one HTTP attempt, before retry decisions.
struct AttemptFailure {
    error: SendError,
    /// Whether the request may have been processed although no answer arrived.
    ambiguous: bool,
}

impl SendClient {
    /// Builds a client posting to `{graph_base_url}/{api_version}/me/messages?access_token=…`.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        if config.page_access_token.is_empty() {
            return Err(ClientError::EmptyAccessToken);
        }
        if config.retry.max_attempts == 0 {
            return Err(ClientError::NoAttempts);
        }
        let url = format!(
            "{}/{}/me/messages",
            config.graph_base_url.trim_end_matches('/'),
            config.api_version.trim_matches('/')
        );
        let mut messages_url =
            reqwest::Url::parse(&url).map_err(|error| ClientError::InvalidUrl {
                url: url.clone(),
                reason: error.to_string(),
            })?;
        if !matches!(messages_url.scheme(), "http" | "https") {
            return Err(ClientError::InvalidUrl {
                url,
                reason: "the scheme must be http or https".to_owned(),
            });
        }
        let mut version_url = messages_url.clone();
        version_url
            .path_segments_mut()
            .map_err(|()| ClientError::InvalidUrl {
                url: url.clone(),
                reason: "the URL cannot have a path".to_owned(),
            })?
            .pop()
            .pop();
        version_url
            .query_pairs_mut()
            .append_pair("access_token", &config.page_access_token);
        messages_url
            .query_pairs_mut()
            .append_pair("access_token", &config.page_access_token);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .user_agent(concat!("botflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Http)?;
        Ok(Self {
            http,
            messages_url,
            version_url,
            retry: config.retry,
        })
    }

    /// Checks the request's limits, then sends it with retries; see [`SendClient::send_json`].
    pub async fn send(&self, request: &SendRequest) -> Result<SendOk, SendError> {
        request.check_limits().map_err(SendError::Limit)?;
        self.send_json(&request.to_json()).await
    }

    /// Sends a wire JSON body (as stored in an outbox) with retries on transient failures.
    /// For a body addressed to a notification token, a permanent token error after an earlier
    /// attempt that may have been delivered is reported as [`SendError::DeliveredUnconfirmed`].
    pub async fn send_json(&self, body: &Value) -> Result<SendOk, SendError> {
        let to_token = is_token_body(body);
        let mut maybe_delivered = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.attempt(body, to_token).await {
                Ok(mut ok) => {
                    ok.attempts = attempt;
                    return Ok(ok);
                }
                Err(failure) => failure,
            };
            let mut error = failure.error;
            if to_token && maybe_delivered {
                if let SendError::TokenUnusable(detail) = error {
                    error = SendError::DeliveredUnconfirmed(detail);
                }
            }
            maybe_delivered |= failure.ambiguous;
            if let Some(detail) = error.detail_mut() {
                detail.attempts = attempt;
                detail.maybe_delivered = maybe_delivered;
            }
            let Some(delay) = self.retry_delay(attempt, &error) else {
                return Err(error);
            };
            tracing::debug!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                class = error.class(),
                "retrying Send API request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// How long to wait before attempt `attempt + 1` after `error`, or `None` to give up: the
    /// error is permanent, the attempts are used up, or the platform asks for a pause longer than
    /// the client waits (the caller reschedules instead).
    fn retry_delay(&self, attempt: u32, error: &SendError) -> Option<Duration> {
        if !error.is_retryable() || attempt >= self.retry.max_attempts {
            return None;
        }
        let retry_after = match error {
            SendError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        };
        if retry_after.is_some_and(|hint| hint > self.retry.max_delay) {
            return None;
        }
        Some(self.retry.delay_after(attempt, retry_after))
    }

    /// Fetches `first_name`, `last_name` and `profile_pic` of `psid` from the User Profile API
    /// (`GET /{version}/{psid}?fields=…`), retrying transient failures like a send; errors are
    /// classified as for sends (a 4xx such as an unknown PSID is permanent and not retried).
    pub async fn fetch_profile(&self, psid: &str) -> Result<Profile, SendError> {
        let mut url = self.version_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(psid);
        }
        url.query_pairs_mut()
            .append_pair("fields", "first_name,last_name,profile_pic");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut error = match self.profile_attempt(&url).await {
                Ok(profile) => return Ok(profile),
                Err(failure) => failure.error,
            };
            if let Some(detail) = error.detail_mut() {
                detail.attempts = attempt;
                // A read changes nothing on the platform.
                detail.maybe_delivered = false;
            }
            let Some(delay) = self.retry_delay(attempt, &error) else {
                return Err(error);
            };
            tracing::debug!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                class = error.class(),
                "retrying User Profile request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn profile_attempt(&self, url: &reqwest::Url) -> Result<Profile, AttemptFailure> {
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(transport_failure)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.map_err(transport_failure)?;
        if (200..300).contains(&status) {
            return serde_json::from_slice::<Profile>(&bytes).map_err(|_| AttemptFailure {
                error: SendError::InvalidResponse(parse_error_body(status, &bytes)),
                ambiguous: false,
            });
        }
        let error = classify(parse_error_body(status, &bytes), retry_after, false);
        Err(AttemptFailure {
            error,
            ambiguous: false,
        })
    }

    async fn attempt(&self, body: &Value, to_token: bool) -> Result<SendOk, AttemptFailure> {
        let response = self
            .http
            .post(self.messages_url.clone())
            .json(body)
            .send()
            .await
            .map_err(transport_failure)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.map_err(transport_failure)?;
        if (200..300).contains(&status) {
            return match serde_json::from_slice::<SuccessBody>(&bytes) {
                Ok(ok) => Ok(SendOk {
                    message_id: ok.message_id,
                    recipient_id: ok.recipient_id,
                    attempts: 0,
                }),
                Err(_) => Err(AttemptFailure {
                    error: SendError::InvalidResponse(parse_error_body(status, &bytes)),
                    ambiguous: true,
                }),
            };
        }
        let detail = parse_error_body(status, &bytes);
        let error = classify(detail, retry_after, to_token);
        // A 5xx may come from a proxy after the platform accepted the message.
        let ambiguous = matches!(error, SendError::Server(_)) && status >= 500;
        Err(AttemptFailure { error, ambiguous })
    }
}

fn transport_failure(error: reqwest::Error) -> AttemptFailure {
    let timed_out = error.is_timeout();
    let never_sent = error.is_connect();
    // Strip the URL: it carries the access token.
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let detail = ErrorDetail::from_message(message);
    if timed_out {
        AttemptFailure {
            error: SendError::Timeout(detail),
            ambiguous: true,
        }
    } else {
        AttemptFailure {
            error: SendError::Network(detail),
            // A connect failure means the request never left; anything later may have been processed.
            ambiguous: !never_sent,
        }
    }
}

/// Parses `Retry-After` given in seconds (fractions accepted, as the fake Graph API sends them).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

/// Whether a wire JSON body is addressed to a one-time or recurring notification token.
pub fn is_token_body(body: &Value) -> bool {
    body.get("recipient").is_some_and(|recipient| {
        recipient.get("one_time_notif_token").is_some()
            || recipient.get("notification_messages_token").is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let first = policy.delay_after(1, None);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
            let third = policy.delay_after(3, None);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third));
            let late = policy.delay_after(30, None);
            assert!((Duration::from_millis(500)..=Duration::from_millis(1000)).contains(&late));
        }
        let hinted = policy.delay_after(1, Some(Duration::from_millis(700)));
        assert!(hinted >= Duration::from_millis(700));
    }

    #[test]
    fn retry_after_accepts_seconds_and_fractions() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 0.250 "),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn rejects_unusable_configs() {
        let mut config = ClientConfig::new("");
        assert!(matches!(
            SendClient::new(config.clone()),
            Err(ClientError::EmptyAccessToken)
        ));
        config.page_access_token = "token".into();
        config.graph_base_url = "ftp://example.com".into();
        assert!(matches!(
            SendClient::new(config.clone()),
            Err(ClientError::InvalidUrl { .. })
        ));
        config.graph_base_url = DEFAULT_GRAPH_BASE_URL.into();
        config.retry.max_attempts = 0;
        assert!(matches!(
            SendClient::new(config),
            Err(ClientError::NoAttempts)
        ));
    }

    #[test]
    fn messages_url_carries_version_and_token() {
        let client = SendClient::new(ClientConfig::new("tok en")).unwrap();
        assert_eq!(
            client.messages_url.as_str(),
            "https://graph.facebook.com/v23.0/me/messages?access_token=tok+en"
        );
        assert_eq!(
            client.version_url.as_str(),
            "https://graph.facebook.com/v23.0?access_token=tok+en"
        );
    }

    #[test]
    fn debug_output_hides_the_access_token() {
        let config = ClientConfig::new("secret-page-token");
        assert!(!format!("{config:?}").contains("secret-page-token"));
        let client = SendClient::new(config).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("secret-page-token"), "{shown}");
        assert!(shown.contains("/v23.0/me/messages"), "{shown}");
    }

    #[test]
    fn detects_token_bodies() {
        assert!(is_token_body(
            &serde_json::json!({"recipient": {"one_time_notif_token": "t"}})
        ));
        assert!(is_token_body(
            &serde_json::json!({"recipient": {"notification_messages_token": "t"}})
        ));
        assert!(!is_token_body(
            &serde_json::json!({"recipient": {"id": "1"}})
        ));
        assert!(!is_token_body(&serde_json::json!({})));
    }
}
