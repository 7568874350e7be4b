//! The store's error type: every variant names the record or input at fault.

use crate::ids::{EventId, OutboxId, PageId};
use crate::notification::NotificationId;
use botflow_flow::{Diagnostic, FlowId, TopicId};

/// Everything a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (an I/O error, corruption detected by the backend); the message is
    /// the backend's, so callers never depend on the backend's error type.
    #[error("database error: {0}")]
    Database(String),
    /// PostgreSQL failed or could not be reached ([`crate::PgStore`]).
    #[error("postgres: {what}: {detail}{}", if *transient { " (transient: the call can be retried once the database answers)" } else { "" })]
    Postgres {
        /// What was being done: the store call, and the query or table when known.
        what: String,
        /// The server's or driver's message, with the SQLSTATE when the server sent one.
        detail: String,
        /// Whether retrying may succeed: lost or refused connections, serialization failures,
        /// deadlocks, a server shutting down or out of connections.
        transient: bool,
    },
    /// The event log failed: it could not be opened, or a write or `fdatasync` failed and the
    /// log is poisoned ([`StoreError::is_fatal`]: only a restart recovers).
    #[error("event log: {action}: {source}")]
    Log {
        /// What was being done.
        action: &'static str,
        /// The log's error.
        source: crate::log::LogError,
    },
    /// A stored record could not be decoded.
    #[error("corrupt {what} record: {detail}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// What went wrong while decoding it.
        detail: String,
    },
    /// A stored record was written by a newer release with a record format this one cannot read.
    #[error("{what} record has format version {version}, this release reads up to {supported}")]
    UnsupportedRecordVersion {
        /// Which kind of record.
        what: &'static str,
        /// The record's format version.
        version: u8,
        /// The newest format version this release reads.
        supported: u8,
    },
    /// The database was created by a newer release.
    #[error("database format {found} is newer than the supported format {supported}")]
    UnsupportedDatabaseFormat {
        /// The format version found in the database.
        found: u32,
        /// The newest format this release opens.
        supported: u32,
    },
    /// A record could not be encoded.
    #[error("cannot encode {what}: {detail}")]
    Encode {
        /// Which kind of record.
        what: &'static str,
        /// The serializer's message.
        detail: String,
    },
    /// A topic name is empty or longer than 65 characters after trimming.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// Another topic of the Page already has this name (ignoring case and surrounding spaces).
    #[error("topic name {name:?} is taken by topic {existing_id}")]
    TopicNameTaken {
        /// The name as given.
        name: String,
        /// The topic that has it.
        existing_id: TopicId,
    },
    /// No notification with this id exists on the Page.
    #[error("notification {id} not found on page {page}")]
    NotificationNotFound {
        /// The Page.
        page: PageId,
        /// The notification id.
        id: NotificationId,
    },
    /// The notification is done or cancelled already: there is nothing left to cancel.
    #[error("notification {id} is {state} already: nothing is left to cancel")]
    NotificationFinished {
        /// The notification id.
        id: NotificationId,
        /// Its state (`done` or `cancelled`).
        state: &'static str,
    },
    /// No topic with this id exists on the Page.
    #[error("topic {topic} not found on page {page}")]
    TopicNotFound {
        /// The Page.
        page: PageId,
        /// The topic id.
        topic: TopicId,
    },
    /// A topic cannot be deleted without `force` while published flows use it.
    #[error("topic {topic} is used by published flows: {}", join(flows))]
    TopicInUse {
        /// The topic.
        topic: TopicId,
        /// The flows whose active version uses it.
        flows: Vec<FlowId>,
    },
    /// The flow text does not parse; nothing was saved.
    #[error("flow does not parse ({} problems)", diagnostics.len())]
    FlowParse {
        /// What is wrong with the text.
        diagnostics: Vec<Diagnostic>,
    },
    /// The flow has validation errors; it was not published.
    #[error("flow {flow} has {} validation errors", diagnostics.iter().filter(|d| d.is_error()).count())]
    FlowInvalid {
        /// The flow.
        flow: FlowId,
        /// Every diagnostic, errors and warnings.
        diagnostics: Vec<Diagnostic>,
    },
    /// No draft or version of this flow exists on the Page.
    #[error("flow {flow} not found on page {page}")]
    FlowNotFound {
        /// The Page.
        page: PageId,
        /// The flow.
        flow: FlowId,
    },
    /// The flow has no published version with this number.
    #[error("flow {flow} has no version {version}")]
    VersionNotFound {
        /// The flow.
        flow: FlowId,
        /// The version asked for.
        version: u32,
    },
    /// A published flow refers to a topic id that does not exist on the Page.
    #[error("flow {flow} refers to unknown topic {topic} at {pointer}")]
    UnknownTopic {
        /// The flow.
        flow: FlowId,
        /// The unknown topic id.
        topic: TopicId,
        /// JSON Pointer of the reference in the flow document.
        pointer: String,
    },
    /// The inbound event was already processed; the commit was refused so it has no effect twice.
    #[error("event {event} of page {page} was already processed")]
    EventAlreadyProcessed {
        /// The Page.
        page: PageId,
        /// The event's dedup key.
        event: EventId,
    },
    /// A step's token send found no usable token: a one-time token changed, or the recurring
    /// token stopped, expired or paid, outside the subscriber's order after the step read them.
    /// Nothing of the step was written; run it again.
    #[error(
        "page {page} subscriber {psid}: no usable token of topic {topic} is left for the step's token send"
    )]
    TokenGone {
        /// The Page.
        page: PageId,
        /// The subscriber.
        psid: crate::ids::Psid,
        /// The topic whose token is gone.
        topic: TopicId,
    },
    /// No outbound message has this id.
    #[error("outbound message {0} not found")]
    OutboundNotFound(OutboxId),
    /// The outbound message already has a final status; it cannot change again.
    #[error("outbound message {id} is not pending (status {status})")]
    OutboundNotPending {
        /// The message.
        id: OutboxId,
        /// Its current status, as a word.
        status: &'static str,
    },
    /// This node does not hold the lease of the shard at the epoch it worked under (another node
    /// took it over, or it was released): nothing was written. Not an error to retry: the work
    /// belongs to the shard's new owner, which finds it in the store.
    #[error(
        "node {node} does not hold the lease of shard {shard} (epoch {epoch}): nothing was written; the shard's owner does the work"
    )]
    OwnershipLost {
        /// This node's id.
        node: String,
        /// The shard.
        shard: u32,
        /// The epoch this node worked under (0: it held no lease of the shard).
        epoch: u64,
    },
    /// No OTN token with this value exists on the Page.
    #[error("OTN token not found on page {page}")]
    TokenNotFound {
        /// The Page.
        page: PageId,
    },
}

fn join(flows: &[FlowId]) -> String {
    flows
        .iter()
        .map(FlowId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl StoreError {
    /// Whether the store refuses every further write until the process restarts (a poisoned or
    /// closed event log): the caller should report the failure and exit.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Log {
                source: crate::log::LogError::Poisoned { .. } | crate::log::LogError::Closed,
                ..
            }
        )
    }
}

impl StoreError {
    /// Whether the failure is the database being unreachable or briefly refusing (a retry may
    /// succeed): the server answers 503 to webhooks then, so Messenger redelivers.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Postgres {
                transient: true,
                ..
            }
        )
    }
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        Self::Database(err.to_string())
    }
}
