//! Durable sled storage for botflow: flows, topics, subscribers, OTN tokens, the inbound event
//! journal and the outbound queue, behind a typed API scoped by Page.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod ids;
pub mod outbox;
pub mod session;

pub use ids::{EventId, OutboxId, PageId, Psid};
pub use outbox::{NewOutbound, OutboundKind, OutboundMessage, OutboundStatus};
pub use session::{FlowPosition, Session, Timer, TimerKind, WaitKind, Waiting};
