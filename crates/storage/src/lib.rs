//! Durable sled storage for botflow: flows, topics, subscribers, OTN tokens, the inbound event
//! journal and the outbound queue, behind the typed [`Store`] trait scoped by Page.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod commit;
pub mod error;
pub mod flows;
pub mod ids;
pub mod journal;
pub mod outbox;
pub mod session;
mod sled_store;
pub mod store;
pub mod token;
pub mod topic;

pub use commit::{
    DueTimer, NotifyOutcome, OutboxStats, StepCommit, StepCommitted, TokenSendOutcome,
};
pub use error::StoreError;
pub use flows::{ActiveFlow, Draft, DraftSource, DraftState, FlowSummary, FlowVersion, Published};
pub use ids::{EventId, OutboxId, PageId, Psid};
pub use journal::{Appended, JournalEntry, NewJournalEvent};
pub use outbox::{NewOutbound, OutboundKind, OutboundMessage, OutboundStatus};
pub use session::{FlowPosition, Session, Timer, TimerKind, WaitKind, Waiting};
pub use sled_store::{DATABASE_FORMAT, SledStore, StoreOptions};
pub use store::{BodyFor, Store, StoreResult};
pub use token::{NewToken, OtnToken, TokenAdded, TokenMark, TokenState};
pub use topic::{DeletedTopic, MAX_TOPIC_NAME_CHARS, Topic, TopicSummary};
