//! Messenger Platform facts as code: webhook parsing and dedup keys ([`webhook`]), webhook
//! authentication ([`signature`]), Send API requests with the platform's limits ([`send`]), the
//! retrying, classifying Send API client ([`client`]) and, behind the `fake` feature, a fake Graph
//! API server for tests and the demo mode ([`fake`]).
//!
//! ```no_run
//! use botflow_messenger::{ClientConfig, OutgoingMessage, SendClient, SendRequest};
//! # async fn demo(body: &[u8], header: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
//! botflow_messenger::verify_signature(b"app secret", body, header)?;
//! for event in botflow_messenger::parse_webhook(body)?.events() {
//!     println!("{} from {}", event.dedup_key(), event.sender);
//! }
//! let client = SendClient::new(ClientConfig::new("page access token"))?;
//! let text = OutgoingMessage::Text { text: "Hi!".into() };
//! client.send(&SendRequest::response("psid", text)).await?;
//! # Ok(()) }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod client;
#[cfg(feature = "fake")]
pub mod fake;
pub mod graph_error;
pub mod ids;
pub mod limits;
pub mod send;
pub mod signature;
pub mod webhook;

pub use client::{ClientConfig, ClientError, Profile, RetryPolicy, SendClient, SendError, SendOk};
pub use graph_error::ErrorDetail;
pub use ids::{EventId, PageId, Psid};
pub use send::{
    Button, LimitError, MessagingType, OutgoingMessage, QuickReply, Recipient, SendRequest,
    WireError,
};
pub use signature::{
    SignatureError, SubscriptionError, SubscriptionQuery, sign_body, verify_signature,
    verify_subscription,
};
pub use webhook::{
    Attachment, Entry, EventKind, MessagingEvent, Referral, WebhookBody, WebhookError,
    parse_webhook,
};
