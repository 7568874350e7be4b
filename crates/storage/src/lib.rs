//! Durable storage for botflow (embedded log + sled, or PostgreSQL): flows, topics, subscribers, OTN tokens, the inbound event
//! journal and the outbound queue, behind the typed [`Store`] trait scoped by Page.
//!
//! [`SledStore`] is the embedded implementation and [`PgStore`] the PostgreSQL one; callers hold
//! an `Arc<dyn Store>` and never see trees, rows or bytes.
//!
//! ```no_run
//! use botflow_storage::{PageId, SledStore, Store, StoreOptions};
//! # fn main() -> Result<(), botflow_storage::StoreError> {
//! let store = SledStore::open("/var/lib/botflow/db", StoreOptions::default())?;
//! let page = PageId::from("1234567890");
//! store.ensure_page(&page, 0)?;
//! let topic = store.create_topic(&page, "Red sneakers restock", 0)?;
//! let listed = store.list_topics(&page, 0)?;
//! assert_eq!(listed[0].topic.id, topic.id);
//! # Ok(()) }
//! ```
//!
//! # The step commit
//! The runtime processes one inbound event (or fired timer) of one subscriber and hands the
//! result to [`Store::commit_step`]: in ONE transaction the event is marked processed, the
//! session (with its timers) replaces the stored one, opt-in tokens are stored and the outbound
//! messages are queued behind the subscriber's pending ones. A token send
//! ([`OutboundKind::OtnToken`]) takes the subscriber's oldest usable token of the topic in that
//! same transaction, so a token is spent exactly when its message is queued, and never twice.
//! An event already processed makes the commit fail with [`StoreError::EventAlreadyProcessed`]
//! and change nothing. [`Store::commit_steps`] commits many steps (of different subscribers) in
//! one transaction (one log record) and at most one wait for the disk; a replayed event fails
//! alone.
//! [`Store::notify_topic`] queues one message per subscriber holding a usable
//! token of the topic (spending that subscriber's oldest token in the same transaction).
//! [`Store::notify_topic_recurring`] is the recurring pass: one message per other holder of a
//! recurring token whose period allows it ([`RecurringToken::check_send`]), recording the send
//! time in the same transaction (a recurring token is never spent).
//!
//! # Outcomes
//! The dispatcher records what became of each message (`mark_sent`, `mark_retry`,
//! `mark_failed`, `mark_refused`, `mark_delivered_unconfirmed`), or many of them at once with
//! [`Store::mark_outcomes`]: one transaction, each [`Outcome`] with the effect of its single
//! call, one result per outcome (an unknown or already finished message fails alone).
//!
//! # Retention
//! Finished records do not stay forever: [`Store::sweep_retention`] removes, in bounded
//! batches, dedup records of processed events older than [`RetentionPolicy::dedup_ms`] and
//! finished messages and used-up tokens older than [`RetentionPolicy::history_ms`] (see the
//! [`retention`] module for what is never removed). The sled store indexes these records by the
//! time they finished, so a sweep reads only what it removes.
//!
//! # Durability contract
//! "Durable" below means: when the call returns `Ok`, its effect survives a crash of the
//! botflow process (panic, `kill -9`, OOM kill), a kernel crash and a power loss (on a disk
//! that honours flushes) — the SIGKILL crash test and the simulated power-loss test check every
//! acknowledged write after reopening.
//!
//! How the sled store gets there (`design/HOT-PATH.md`, log first): every commit is a `Redo`
//! record (its physical writes) appended to the log ([`log::HotLog`] in `<path>/log`), and
//! inbound events are `Event` records there; a durable call returns after the `fdatasync`
//! covering its record (group commit: concurrent callers share one). Commits apply to an
//! in-memory overlay that a background thread checkpoints into sled (a `flush`, then an
//! `fdatasync` of sled's data file, before the log records it replaces are deleted); at open
//! the redo records after the last checkpoint are replayed.
//!
//! - Journal appends ([`Store::journal_append`], [`Store::journal_append_batch`]; the webhook
//!   answers 200 only after them) are durable on return. A failed `fdatasync` poisons the log:
//!   every later write fails with [`StoreError::Log`] ([`StoreError::is_fatal`]) until the
//!   process restarts and recovers from what is on disk.
//! - Durable on return: [`Store::commit_step`] with `durable: true`,
//!   [`Store::commit_steps`] when any step has `durable: true`,
//!   [`Store::notify_topic`], [`Store::notify_topic_recurring`], [`Store::recurring_change`]
//!   (when it changed something), [`Store::add_token`], [`Store::mark_token`], [`Store::expire_tokens`],
//!   every outbox `mark_*` call, topic and flow changes (create, rename, delete, save draft,
//!   publish, rollback), [`Store::ensure_page`] and [`Store::flush`].
//! - [`Store::mark_outcomes`] (many outbox outcomes in one transaction) is durable on return
//!   when any of its outcomes is about a token send; with normal messages only it is atomic and
//!   visible at once but reaches the disk with the next sync, like a non-durable step commit
//!   (a lost sent mark means the message is sent again: at-least-once).
//! - Reads that only look (lists, `load_session`, `due_outbound`, ...) are not flushes.
//! - [`Store::commit_step`] with `durable: false` is atomic and visible at once, but may be lost
//!   in a crash with everything logged after it, until the next durable call; after a crash it
//!   is either wholly there or wholly absent (one log record under one checksum), and its event
//!   is still unprocessed in the log, so it is processed again.
//! - Reads see every committed write (durable or not) immediately.
//!
//! # Records and formats
//! Every record is stored as a one-byte format version followed by JSON; the database records
//! its overall format ([`DATABASE_FORMAT`]) and refuses to open a newer one. A later release
//! migrates by decoding older record versions. Keys are length-prefixed strings and big-endian
//! integers, scoped by Page.
//!
//! # PostgreSQL
//! [`PgStore::connect`] applies the embedded schema migrations (under an advisory lock) and
//! keeps the same guarantees with plain SQL: every write is one serializable transaction (run
//! again, bounded, on a serialization failure or deadlock), durable calls commit with
//! `synchronous_commit = on` (the server's WAL flush before the call returns) and non-durable
//! step commits and normal outcomes with `synchronous_commit = off` until [`Store::flush`]. The
//! journal is a table (`UNIQUE (page_id, event_id)` is the dedup); there is no event log.
//! Errors are [`StoreError::Postgres`] with what was being done and whether a retry may help
//! ([`StoreError::is_transient`]).
//!
//! # Time
//! No call reads the clock: every call where time matters takes `now_ms`, for determinism.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod commit;
pub mod error;
#[cfg(feature = "test-support")]
pub mod faults;
pub mod flows;
pub mod ids;
pub mod journal;
pub mod ledger;
pub mod log;
pub mod notification;
pub mod outbox;
pub mod outcome;
pub mod ownership;
mod pg_store;
#[cfg(feature = "test-support")]
pub mod pg_test;
pub mod recurring;
pub mod retention;
pub mod session;
mod sled_store;
pub mod store;
pub mod token;
pub mod token_rules;
pub mod topic;

pub use commit::{
    DueTimer, NotificationRun, NotifyOutcome, OutboxStats, StepCommit, StepCommitted,
    TokenSendOutcome,
};
pub use error::StoreError;
pub use flows::{
    ActiveFlow, ActiveFlows, BrokenFlow, Draft, DraftSource, DraftState, FlowSummary, FlowVersion,
    Published,
};
pub use ids::{EventId, OutboxId, PageId, Psid};
pub use journal::{Appended, JournalEntry, NewJournalEvent};
pub use ledger::{DAY_MS, LEDGER_DAYS, LedgerDay, RecurringLedger, TopicLedger};
pub use notification::{
    Notification, NotificationCancel, NotificationContent, NotificationId, NotificationRuns,
    NotificationState, NotificationTotals,
};
pub use outbox::{NewOutbound, OutboundKind, OutboundMessage, OutboundStatus};
pub use outcome::Outcome;
pub use ownership::{Lease, Ownership, SHARD_COUNT, shard_of};
pub use pg_store::{DEFAULT_LEASE_TTL, PgOptions, PgStore, check_database_ca_file};
pub use recurring::{
    RECURRING_CAP_MS, RecurringChange, RecurringChanged, RecurringNotifyOutcome, RecurringOptin,
    RecurringPass, RecurringSkip, RecurringStatus, RecurringToken,
};
pub use retention::{RetentionPolicy, SweepReport};
pub use session::{FlowPosition, ProfileFetch, Session, Timer, TimerKind, WaitKind, Waiting};
pub use sled_store::{CheckpointReport, DATABASE_FORMAT, SledStore, StoreOptions};
pub use store::{BodyFor, DurableWait, Store, StoreResult};
pub use token::{NewToken, OtnToken, TokenAdded, TokenMark, TokenState};
pub use topic::{DeletedTopic, MAX_TOPIC_NAME_CHARS, Topic, TopicSummary};
