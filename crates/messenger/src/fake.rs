//! A fake Graph API Send endpoint: a real HTTP server on 127.0.0.1 that records every request,
//! issues message ids, enforces the one-time-token rules and the 24-hour window with the
//! platform's error shapes, serves the User Profile endpoint (`GET /{version}/{psid}`) with
//! names it is told, and injects faults on demand.
//!
//! ```no_run
//! # async fn demo() {
//! let fake = botflow_messenger::fake::FakeGraphApi::start().await;
//! let base_url = fake.base_url(); // use as ClientConfig::graph_base_url
//! # }
//! ```
//!
//! Errors it answers with (all HTTP 400 unless noted, body `{"error": {message, type, code,
//! error_subcode, fbtrace_id}}`):
//! - wrong or missing `access_token` (when one was configured): code 190;
//! - body not JSON, no `recipient`/`message`, text over 2,000 characters, PSID send without
//!   `messaging_type`, retired message tag: code 100;
//! - a `notification_messages` request template without a 1–65 character title, a payload and a
//!   `DAILY`/`WEEKLY`/`MONTHLY` frequency (or with a non-http `image_url`): code 100;
//! - unknown, used or expired notification token: code 100, subcode [`TOKEN_ERROR_SUBCODE`]
//!   (the message says which);
//! - `RESPONSE`/`UPDATE` to a PSID outside the 24-hour window: code 10, subcode 2018278;
//! - a PSID marked unavailable: code 551, subcode 1545041;
//! - a profile of a PSID with no profile set and no default profile: code 100, subcode 33.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// The subcode the fake answers (with code 100) for an unknown, used or expired notification
/// token. Meta documents no specific code; 2018001 ("no matching user") is what such a send
/// resolves to, and [`crate::client`] treats any permanent error on a token send as "token not usable".
pub const TOKEN_ERROR_SUBCODE: i64 = 2018001;
pub use crate::limits::{MESSAGING_WINDOW, OTN_TOKEN_LIFETIME};

/// A failure the fake produces instead of (or before) handling a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and a matching Graph error body (5xx: code 1 or 2; 429: code 4;
    /// 401/403: code 190; other 4xx: code 100).
    Status(u16),
    /// Answer HTTP 400 with a throttling code (4, 17, 32 or 613) and, when given, a `Retry-After`
    /// header in seconds (fractional below one second, to keep tests fast).
    Throttle {
        /// The Graph error code.
        code: i64,
        /// The `Retry-After` hint.
        retry_after: Option<Duration>,
    },
    /// Answer with an arbitrary Graph API error.
    GraphError {
        /// HTTP status.
        status: u16,
        /// `error.code`.
        code: i64,
        /// `error.error_subcode`.
        subcode: Option<i64>,
        /// `error.message`.
        message: String,
    },
    /// Wait this long, then handle the request normally (a client that timed out never sees the
    /// answer, but the message was delivered and its token spent).
    Delay(Duration),
    /// Drop the connection without a complete response (the request is not processed).
    DropConnection,
}

/// Options of a fake server.
#[derive(Debug, Clone, Default)]
pub struct FakeOptions {
    /// Print every accepted message to stdout (for `botflow serve --demo`).
    pub printing: bool,
    /// When set, requests must carry this `access_token` or get code 190.
    pub access_token: Option<String>,
    /// When true, a PSID with no recorded interaction is outside the window; by default it is inside.
    pub strict_window: bool,
    /// Address to bind; `None` binds 127.0.0.1 on a random port.
    pub bind: Option<SocketAddr>,
}

/// One HTTP request the fake received, whatever it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// URL path, e.g. `/v23.0/me/messages`.
    pub path: String,
    /// Query parameters (including `access_token`).
    pub query: BTreeMap<String, String>,
    /// The body parsed as JSON, or `Value::Null` when it was not JSON.
    pub body: Value,
    /// When it arrived.
    pub received_at: SystemTime,
}

/// A message the fake accepted (answered with a message id).
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    /// The message id the fake issued.
    pub message_id: String,
    /// The PSID it went to (resolved from the token for token sends).
    pub psid: String,
    /// The notification token that paid for it, for token sends.
    pub token: Option<String>,
    /// `messaging_type`, when given.
    pub messaging_type: Option<String>,
    /// The `message` object as sent.
    pub message: Value,
    /// When it was accepted.
    pub sent_at: SystemTime,
}

/// A person's User Profile as the fake serves it (see [`FakeGraphApi::set_profile`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeProfile {
    /// `first_name`.
    pub first_name: String,
    /// `last_name`.
    pub last_name: String,
    /// `profile_pic` URL.
    pub profile_pic: String,
}

impl FakeProfile {
    /// A profile with these names and a picture URL made from them.
    pub fn named(first_name: &str, last_name: &str) -> Self {
        Self {
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            profile_pic: format!("https://example.invalid/pic/{first_name}-{last_name}.jpg"),
        }
    }
}

impl SentMessage {
    /// The message text (`message.text`), when it has one; for button templates, the template text.
    pub fn text(&self) -> Option<&str> {
        self.message
            .get("text")
            .or_else(|| self.message.pointer("/attachment/payload/text"))
            .and_then(Value::as_str)
    }
}

/// The state of one notification token in the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeToken {
    /// The PSID the token belongs to.
    pub psid: String,
    /// When it expires; `None` never.
    pub expires_at: Option<SystemTime>,
    /// Whether it pays for one message only (OTN) or many (recurring).
    pub single_use: bool,
    /// Whether its one message was sent.
    pub used: bool,
}

#[derive(Default)]
struct FakeState {
    requests: Vec<RecordedRequest>,
    sent: Vec<SentMessage>,
    tokens: HashMap<String, FakeToken>,
    last_interaction: HashMap<String, SystemTime>,
    unavailable: HashSet<String>,
    faults: VecDeque<(Fault, u32)>,
    next_id: u64,
    profiles: HashMap<String, FakeProfile>,
    default_profile: Option<FakeProfile>,
}

struct Shared {
    state: Mutex<FakeState>,
    request_count: watch::Sender<usize>,
    options: FakeOptions,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running fake Graph API; the server stops when this value is dropped.
pub struct FakeGraphApi {
    base_url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeGraphApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGraphApi")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeGraphApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Why waiting for requests gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected at least {expected} requests within {waited:?}, got {received}")]
pub struct WaitTimeout {
    /// How many requests were awaited.
    pub expected: usize,
    /// How many arrived.
    pub received: usize,
    /// How long it waited.
    pub waited: Duration,
}

impl FakeGraphApi {
    /// Starts a fake with default options on 127.0.0.1 and a random port; panics if it cannot
    /// bind (tests only; use [`FakeGraphApi::try_start`] to handle the error).
    pub async fn start() -> Self {
        match Self::try_start(FakeOptions::default()).await {
            Ok(fake) => fake,
            Err(error) => panic!("cannot start the fake Graph API: {error}"),
        }
    }

    /// Starts a fake with `options` in a tokio task.
    pub async fn try_start(options: FakeOptions) -> std::io::Result<Self> {
        let bind = options
            .bind
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(FakeState::default()),
            request_count: watch::Sender::new(0),
            options,
        });
        let router = Router::new()
            .fallback(handle_request)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::warn!(%error, "fake Graph API server stopped");
            }
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            addr,
            shared,
            server,
        })
    }

    /// The base URL to use as `ClientConfig::graph_base_url`, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The socket address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many requests arrived so far.
    pub fn request_count(&self) -> usize {
        *self.shared.request_count.borrow()
    }

    /// Every message accepted so far, in order.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// Waits until at least `count` requests arrived, or `deadline` passed.
    pub async fn wait_for_requests(
        &self,
        count: usize,
        deadline: Duration,
    ) -> Result<Vec<RecordedRequest>, WaitTimeout> {
        let mut receiver = self.shared.request_count.subscribe();
        // The watch's read guard is dropped here, before `requests` takes the state lock: a
        // handler holds that lock while it publishes the count, so holding both would deadlock.
        let reached = tokio::time::timeout(deadline, receiver.wait_for(|seen| *seen >= count))
            .await
            .is_ok_and(|seen| seen.is_ok());
        if reached {
            Ok(self.requests())
        } else {
            Err(WaitTimeout {
                expected: count,
                received: self.request_count(),
                waited: deadline,
            })
        }
    }

    /// Creates a one-time token for `psid`, valid for [`OTN_TOKEN_LIFETIME`], as an opt-in would.
    pub fn issue_otn_token(&self, psid: &str) -> String {
        let mut state = self.shared.lock();
        state.next_id += 1;
        let token = format!("otn-{}-{:016x}", state.next_id, fastrand::u64(..));
        state.tokens.insert(
            token.clone(),
            FakeToken {
                psid: psid.to_owned(),
                expires_at: Some(SystemTime::now() + OTN_TOKEN_LIFETIME),
                single_use: true,
                used: false,
            },
        );
        token
    }

    /// Registers a one-time token (e.g. one from a webhook fixture) for `psid`, expiring at `expires_at`.
    pub fn register_otn_token(&self, token: &str, psid: &str, expires_at: SystemTime) {
        self.shared.lock().tokens.insert(
            token.to_owned(),
            FakeToken {
                psid: psid.to_owned(),
                expires_at: Some(expires_at),
                single_use: true,
                used: false,
            },
        );
    }

    /// Registers a recurring notification token for `psid` (never expires, many messages).
    pub fn register_notification_token(&self, token: &str, psid: &str) {
        self.shared.lock().tokens.insert(
            token.to_owned(),
            FakeToken {
                psid: psid.to_owned(),
                expires_at: None,
                single_use: false,
                used: false,
            },
        );
    }

    /// Makes a known token answer "expired" from now on (as Messenger does for a recurring
    /// token the person revoked or that ran out); false for an unknown token.
    pub fn expire_token(&self, token: &str) -> bool {
        match self.shared.lock().tokens.get_mut(token) {
            Some(entry) => {
                entry.expires_at = Some(SystemTime::now());
                true
            }
            None => false,
        }
    }

    /// The current state of a token, if the fake knows it.
    pub fn token(&self, token: &str) -> Option<FakeToken> {
        self.shared.lock().tokens.get(token).cloned()
    }

    /// Records the person's last interaction (message, postback, opt-in) for the 24-hour window.
    pub fn set_last_interaction(&self, psid: &str, at: SystemTime) {
        self.shared
            .lock()
            .last_interaction
            .insert(psid.to_owned(), at);
    }

    /// Marks a PSID as unable to receive messages (code 551, subcode 1545041).
    pub fn set_unavailable(&self, psid: &str) {
        self.shared.lock().unavailable.insert(psid.to_owned());
    }

    /// Serves `profile` for `psid` at the User Profile endpoint.
    pub fn set_profile(&self, psid: &str, profile: FakeProfile) {
        self.shared.lock().profiles.insert(psid.to_owned(), profile);
    }

    /// Serves `profile` for every PSID without its own (`None`: such PSIDs get code 100, subcode 33).
    pub fn set_default_profile(&self, profile: Option<FakeProfile>) {
        self.shared.lock().default_profile = profile;
    }

    /// How many User Profile requests (`GET /{version}/{psid}`) arrived so far.
    pub fn profile_request_count(&self) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|request| request.method == "GET" && profile_psid(&request.path).is_some())
            .count()
    }

    /// Makes the next `calls` requests fail with `fault` (after faults injected earlier are used up).
    pub fn inject(&self, fault: Fault, calls: u32) {
        if calls > 0 {
            self.shared.lock().faults.push_back((fault, calls));
        }
    }

    /// Removes every injected fault not yet used.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }
}

async fn handle_request(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let fault = {
        let mut state = shared.lock();
        state.requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: query.clone(),
            body: body.clone(),
            received_at: SystemTime::now(),
        });
        let count = state.requests.len();
        shared.request_count.send_replace(count);
        next_fault(&mut state.faults)
    };
    match fault {
        Some(Fault::Delay(delay)) => {
            // Like the platform, finish the work even if the client gives up waiting: the
            // spawned task outlives this handler when the connection is dropped.
            let path = uri.path().to_owned();
            let handled = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                answer_send(&shared, &method, &path, &query, &body)
            });
            return handled
                .await
                .unwrap_or_else(|_| graph_error(500, 1, None, "fake Graph API task failed"));
        }
        Some(Fault::DropConnection) => return dropped_connection(),
        Some(Fault::Status(status)) => return status_fault(status),
        Some(Fault::Throttle { code, retry_after }) => {
            let mut response = graph_error(
                400,
                code,
                None,
                "(#613) Calls to this api have exceeded the rate limit.",
            );
            if let Some(hint) = retry_after {
                let seconds = if hint < Duration::from_secs(1) {
                    format!("{:.3}", hint.as_secs_f64())
                } else {
                    hint.as_secs().to_string()
                };
                if let Ok(value) = HeaderValue::from_str(&seconds) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            return response;
        }
        Some(Fault::GraphError {
            status,
            code,
            subcode,
            message,
        }) => return graph_error(status, code, subcode, &message),
        None => {}
    }
    answer_send(&shared, &method, uri.path(), &query, &body)
}

/// Handles a Send API call after faults: access token, body rules, tokens and window.
fn answer_send(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> Response {
    let profile_of = profile_psid(path).filter(|_| method == Method::GET);
    if profile_of.is_none() && (method != Method::POST || !is_messages_path(path)) {
        return graph_error(
            400,
            100,
            None,
            "Unsupported request: the fake serves POST /{version}/me/messages and GET /{version}/{psid} only",
        );
    }
    if let Some(expected) = &shared.options.access_token {
        if query.get("access_token") != Some(expected) {
            return graph_error(
                400,
                190,
                None,
                "Invalid OAuth access token - Cannot parse access token",
            );
        }
    }
    if let Some(psid) = profile_of {
        return answer_profile(shared, psid, query);
    }
    let outcome = accept_send(shared, body);
    match outcome {
        Ok(sent) => {
            let answer = json!({ "recipient_id": sent.psid, "message_id": sent.message_id });
            if shared.options.printing {
                print_sent(&sent);
            }
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
        Err(rejection) => graph_error(
            rejection.status,
            rejection.code,
            rejection.subcode,
            rejection.message,
        ),
    }
}

/// Answers a User Profile request with the fields asked for (all three when `fields` is absent).
fn answer_profile(shared: &Shared, psid: &str, query: &BTreeMap<String, String>) -> Response {
    let profile = {
        let state = shared.lock();
        state
            .profiles
            .get(psid)
            .or(state.default_profile.as_ref())
            .cloned()
    };
    let Some(profile) = profile else {
        return graph_error(
            400,
            100,
            Some(33),
            "Unsupported get request. Object with ID does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
        );
    };
    let wanted = query
        .get("fields")
        .map_or("first_name,last_name,profile_pic", String::as_str);
    let mut answer = serde_json::Map::new();
    for field in wanted.split(',').map(str::trim) {
        let value = match field {
            "first_name" => &profile.first_name,
            "last_name" => &profile.last_name,
            "profile_pic" => &profile.profile_pic,
            _ => continue,
        };
        answer.insert(field.to_owned(), Value::String(value.clone()));
    }
    answer.insert("id".to_owned(), Value::String(psid.to_owned()));
    (StatusCode::OK, axum::Json(Value::Object(answer))).into_response()
}

/// The PSID of a User Profile path `/{version}/{psid}`.
fn profile_psid(path: &str) -> Option<&str> {
    let mut segments = path.trim_matches('/').split('/');
    let (version, psid) = (segments.next()?, segments.next()?);
    (segments.next().is_none() && version.starts_with('v') && !psid.is_empty() && psid != "me")
        .then_some(psid)
}

fn next_fault(faults: &mut VecDeque<(Fault, u32)>) -> Option<Fault> {
    let (fault, remaining) = faults.front_mut()?;
    let fault = fault.clone();
    *remaining -= 1;
    if *remaining == 0 {
        faults.pop_front();
    }
    Some(fault)
}

fn is_messages_path(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(segments.as_slice(), [version, _page, "messages"] if version.starts_with('v'))
}

/// A refusal of the fake, turned into a Graph error response.
struct Rejection {
    status: u16,
    code: i64,
    subcode: Option<i64>,
    message: &'static str,
}

/// Checks a Send API body against the platform's rules and records it when accepted.
fn accept_send(shared: &Shared, body: &Value) -> Result<SentMessage, Rejection> {
    let invalid = |message: &'static str| Rejection {
        status: 400,
        code: 100,
        subcode: None,
        message,
    };
    let recipient = body
        .get("recipient")
        .ok_or_else(|| invalid("(#100) The parameter recipient is required"))?;
    let message = body
        .get("message")
        .filter(|message| message.is_object())
        .ok_or_else(|| invalid("(#100) The parameter message is required"))?;
    if message.get("text").is_none() && message.get("attachment").is_none() {
        return Err(invalid("(#100) Message must contain text or an attachment"));
    }
    if let Some(text) = message.get("text").and_then(Value::as_str) {
        if text.chars().count() > crate::limits::MAX_TEXT_CHARS {
            return Err(invalid(
                "(#100) Length of param message[text] must be less than or equal to 2000",
            ));
        }
    }
    if message.pointer("/attachment/payload/template_type")
        == Some(&Value::String("notification_messages".into()))
    {
        check_recurring_request(&message["attachment"]["payload"]).map_err(invalid)?;
    }
    let messaging_type = body
        .get("messaging_type")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let now = SystemTime::now();
    let mut state = shared.lock();
    let (psid, token) = if let Some(psid) = recipient.get("id").and_then(Value::as_str) {
        let Some(kind) = messaging_type.as_deref() else {
            return Err(invalid("(#100) The parameter messaging_type is required"));
        };
        if state.unavailable.contains(psid) {
            return Err(Rejection {
                status: 400,
                code: 551,
                subcode: Some(1545041),
                message: "(#551) This person isn't available right now.",
            });
        }
        match kind {
            "RESPONSE" | "UPDATE" => {
                let inside = match state.last_interaction.get(psid) {
                    Some(at) => now.duration_since(*at).unwrap_or_default() <= MESSAGING_WINDOW,
                    None => !shared.options.strict_window,
                };
                if !inside {
                    return Err(Rejection {
                        status: 400,
                        code: 10,
                        subcode: Some(2018278),
                        message: "(#10) This message is sent outside of allowed window.",
                    });
                }
            }
            "MESSAGE_TAG" => {
                let tag = body.get("tag").and_then(Value::as_str).unwrap_or_default();
                if tag.is_empty() || crate::send::RETIRED_MESSAGE_TAGS.contains(&tag) {
                    return Err(invalid("(#100) Param tag must be an allowed message tag"));
                }
            }
            _ => {
                return Err(invalid(
                    "(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}",
                ));
            }
        }
        (psid.to_owned(), None)
    } else if let Some(token) = recipient
        .get("one_time_notif_token")
        .or_else(|| recipient.get("notification_messages_token"))
        .and_then(Value::as_str)
    {
        let token_error = |message: &'static str| Rejection {
            status: 400,
            code: 100,
            subcode: Some(TOKEN_ERROR_SUBCODE),
            message,
        };
        let Some(entry) = state.tokens.get_mut(token) else {
            return Err(token_error("(#100) The notification token is invalid"));
        };
        if entry.used {
            return Err(token_error(
                "(#100) The notification token has already been used",
            ));
        }
        if entry.expires_at.is_some_and(|expiry| expiry <= now) {
            return Err(token_error("(#100) The notification token has expired"));
        }
        if entry.single_use {
            entry.used = true;
        }
        (entry.psid.clone(), Some(token.to_owned()))
    } else {
        return Err(invalid(
            "(#100) Param recipient must name an id or a notification token",
        ));
    };
    state.next_id += 1;
    let sent = SentMessage {
        message_id: format!("m_fake_{:08}", state.next_id),
        psid,
        token,
        messaging_type,
        message: message.clone(),
        sent_at: now,
    };
    state.sent.push(sent.clone());
    Ok(sent)
}

/// The rules of the `notification_messages` request template: a title of 1 to 65 characters,
/// a payload, a known frequency, and an http(s) `image_url` when given.
fn check_recurring_request(payload: &Value) -> Result<(), &'static str> {
    let title = payload.get("title").and_then(Value::as_str).unwrap_or("");
    if title.is_empty() || title.chars().count() > crate::limits::MAX_NOTIFICATION_TITLE_CHARS {
        return Err("(#100) Param title must be 1 to 65 characters");
    }
    if payload.get("payload").and_then(Value::as_str).is_none() {
        return Err("(#100) The parameter payload is required");
    }
    let frequency = payload
        .get("notification_messages_frequency")
        .and_then(Value::as_str);
    if !matches!(frequency, Some("DAILY" | "WEEKLY" | "MONTHLY")) {
        return Err(
            "(#100) Param notification_messages_frequency must be one of {DAILY, WEEKLY, MONTHLY}",
        );
    }
    match payload.get("image_url") {
        None => Ok(()),
        Some(Value::String(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(())
        }
        Some(_) => Err("(#100) Param image_url must be a URL"),
    }
}

fn print_sent(sent: &SentMessage) {
    let summary = match sent.text() {
        Some(text) => text.to_owned(),
        None => match sent.message.pointer("/attachment/payload/template_type") {
            Some(Value::String(kind)) => format!(
                "[{kind}] {}",
                sent.message["attachment"]["payload"]["title"]
                    .as_str()
                    .unwrap_or_default()
            ),
            _ => sent.message.to_string(),
        },
    };
    let via = match &sent.token {
        Some(_) => " (token)",
        None => "",
    };
    println!("[messenger] -> {}{via}: {summary}", sent.psid);
}

fn status_fault(status: u16) -> Response {
    let (code, message) = match status {
        503 => (2, "Service temporarily unavailable"),
        500..=599 => (1, "An unknown error occurred"),
        429 => (4, "Application request limit reached"),
        401 | 403 => (190, "Invalid OAuth access token"),
        _ => (100, "Invalid parameter"),
    };
    graph_error(status, code, None, message)
}

fn graph_error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": format!("Fake{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff),
    });
    if let (Some(subcode), Some(fields)) = (subcode, error.as_object_mut()) {
        fields.insert("error_subcode".into(), json!(subcode));
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(json!({ "error": error }))).into_response()
}

/// A response whose body fails at once, so hyper closes the connection without a complete answer.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "fault injected: connection dropped",
        ))
    });
    Response::new(Body::from_stream(failing))
}
