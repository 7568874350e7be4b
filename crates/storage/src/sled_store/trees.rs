//! The sled trees of the store and a typed view of them inside a transaction.

use super::codec::{decode, encode};
use super::overlay::Writes;
use super::view::Base;
use crate::error::StoreError;
use crate::store::StoreResult;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::IVec;
use sled::transaction::ConflictableTransactionError;
use std::cell::RefCell;

/// Every tree of the store; the discriminant is the index into the open trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum T {
    /// Store-wide records: format version, counters, outbox figures.
    Meta,
    /// page → PageRecord.
    Pages,
    /// (page, topic id) → TopicRecord (tombstoned while its tokens are swept).
    Topics,
    /// (page, lowercased trimmed name) → topic id.
    TopicNames,
    /// (page, flow) → Draft.
    Drafts,
    /// (page, flow, version) → FlowVersion.
    Versions,
    /// (page, flow) → FlowHead.
    Heads,
    /// (page, token) → OtnToken.
    Tokens,
    /// (page, psid, topic) → SubscriberTokens: the usable tokens, oldest first.
    SubTokens,
    /// (page, topic) → count of usable tokens (expired ones included until swept).
    TopicCounts,
    /// (expires_ms, page, topic, token) → psid, for usable tokens only.
    TokenExpiry,
    /// (page, topic, psid) → (), while the subscriber holds usable tokens of the topic.
    TopicHolders,
    /// (page, event id) → EventKeyRecord: dedup of inbound events.
    EventKeys,
    /// seq → JournalEntry, for unprocessed events only.
    Journal,
    /// (page, psid) → Session.
    Sessions,
    /// (due_ms, page, psid, timer id) → DueTimer.
    TimersDue,
    /// outbox id → OutboundMessage.
    Outbox,
    /// (page, psid) → pending outbox ids in queue order.
    SubQueue,
    /// (due_ms, outbox id) → (), for the head of each subscriber's queue.
    OutboxDue,
    /// (page, psid, outbox id) → (), every message queued for the subscriber and not yet
    /// removed by retention.
    SubMessages,
    /// (kind, finished_ms, record key) → (): finished records by the time they finished, for the
    /// retention sweep (processed events, finished messages, used-up tokens).
    Retention,
    /// (page, topic) → LedgerRecord: the topic's token ledger totals (kept after deletion).
    Ledger,
    /// (page, topic, UTC day) → DayRecord: the topic's opt-ins and sends of that day.
    LedgerDays,
    /// (page, token) → RecurringToken.
    Recurring,
    /// (page, topic, psid) → the recurring token value the subscriber holds for the topic.
    RecurringHolders,
    /// (page, notification id) → Notification: topic notifications with their totals.
    Notifications,
    /// (notification id, outbox id) → (), while the notification's message is pending.
    NotificationMessages,
}

impl T {
    /// Every tree, in index order.
    pub(crate) const ALL: [T; 27] = [
        T::Meta,
        T::Pages,
        T::Topics,
        T::TopicNames,
        T::Drafts,
        T::Versions,
        T::Heads,
        T::Tokens,
        T::SubTokens,
        T::TopicCounts,
        T::TokenExpiry,
        T::TopicHolders,
        T::EventKeys,
        T::Journal,
        T::Sessions,
        T::TimersDue,
        T::Outbox,
        T::SubQueue,
        T::OutboxDue,
        T::SubMessages,
        T::Retention,
        T::Ledger,
        T::LedgerDays,
        T::Recurring,
        T::RecurringHolders,
        T::Notifications,
        T::NotificationMessages,
    ];

    /// The sled tree name, also used as the record kind in errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            T::Meta => "meta",
            T::Pages => "pages",
            T::Topics => "topics",
            T::TopicNames => "topic_names",
            T::Drafts => "drafts",
            T::Versions => "versions",
            T::Heads => "heads",
            T::Tokens => "tokens",
            T::SubTokens => "sub_tokens",
            T::TopicCounts => "topic_counts",
            T::TokenExpiry => "token_expiry",
            T::TopicHolders => "topic_holders",
            T::EventKeys => "event_keys",
            T::Journal => "journal",
            T::Sessions => "sessions",
            T::TimersDue => "timers_due",
            T::Outbox => "outbox",
            T::SubQueue => "sub_queue",
            T::OutboxDue => "outbox_due",
            T::SubMessages => "sub_messages",
            T::Retention => "retention",
            T::Ledger => "ledger",
            T::LedgerDays => "ledger_days",
            T::Recurring => "recurring",
            T::RecurringHolders => "recurring_holders",
            T::Notifications => "notifications",
            T::NotificationMessages => "notification_messages",
        }
    }
}

/// The `meta` key of the next id [`Tx::generate_id`] hands out.
const NEXT_ID: &[u8] = b"next_id";

/// Result inside a transaction closure.
pub(crate) type TxResult<R> = Result<R, ConflictableTransactionError<StoreError>>;

/// A transaction over every tree, with typed reads and writes: reads see the transaction's own
/// writes, then the merged view ([`Base`]); the writes are kept until the commit logs and
/// applies them all at once (`SledStore::transact`).
pub(crate) struct Tx<'a> {
    pub(super) base: &'a Base,
    pub(super) writes: RefCell<Writes>,
}

impl<'a> Tx<'a> {
    pub(super) fn new(base: &'a Base) -> Self {
        Self {
            base,
            writes: RefCell::new(Writes::default()),
        }
    }

    /// Reads and decodes a record.
    pub(crate) fn get<V: DeserializeOwned>(&self, t: T, key: &[u8]) -> TxResult<Option<V>> {
        match self.get_encoded(t, key)? {
            Some(bytes) => Ok(Some(decode(t.name(), &bytes)?)),
            None => Ok(None),
        }
    }

    /// Whether a key is present.
    pub(crate) fn contains(&self, t: T, key: &[u8]) -> TxResult<bool> {
        Ok(self.get_encoded(t, key)?.is_some())
    }

    /// Encodes and writes a record.
    pub(crate) fn put<V: Serialize>(&self, t: T, key: &[u8], value: &V) -> TxResult<()> {
        let bytes = encode(t.name(), value)?;
        self.writes
            .borrow_mut()
            .put(t, key.to_vec(), Some(IVec::from(bytes)));
        Ok(())
    }

    /// Reads a record's raw bytes, to be decoded only when needed.
    pub(crate) fn get_encoded(&self, t: T, key: &[u8]) -> TxResult<Option<IVec>> {
        if let Some(pending) = self.writes.borrow().get(t, key) {
            return Ok(pending.clone());
        }
        Ok(self.base.get(t, key)?)
    }

    /// Writes an index entry without a value.
    pub(crate) fn mark(&self, t: T, key: &[u8]) -> TxResult<()> {
        self.writes
            .borrow_mut()
            .put(t, key.to_vec(), Some(IVec::default()));
        Ok(())
    }

    /// Removes a key.
    pub(crate) fn del(&self, t: T, key: &[u8]) -> TxResult<()> {
        self.writes.borrow_mut().put(t, key.to_vec(), None);
        Ok(())
    }

    /// A new id, increasing across the store and its restarts: the counter is a record of
    /// its own (`meta/next_id`), so it is logged, replayed and checkpointed with the commit
    /// that uses the id.
    pub(crate) fn generate_id(&self) -> TxResult<u64> {
        let next = match self.get::<u64>(T::Meta, NEXT_ID)? {
            Some(next) => next,
            // A database from before the counter: above every id sled's generator handed out.
            None => self
                .base
                .db
                .generate_id()
                .map_err(StoreError::from)?
                .saturating_add(1),
        };
        self.put(T::Meta, NEXT_ID, &(next + 1))?;
        Ok(next)
    }
}

impl From<StoreError> for ConflictableTransactionError<StoreError> {
    fn from(err: StoreError) -> Self {
        ConflictableTransactionError::Abort(err)
    }
}

/// Reads and decodes a record outside a transaction.
pub(crate) fn read<V: DeserializeOwned>(base: &Base, t: T, key: &[u8]) -> StoreResult<Option<V>> {
    match base.get(t, key)? {
        Some(bytes) => Ok(Some(decode(t.name(), &bytes)?)),
        None => Ok(None),
    }
}
