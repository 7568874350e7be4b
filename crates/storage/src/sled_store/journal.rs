//! The inbound journal: every new event is one `Event` record appended to the [`HotLog`] in
//! `<data_dir>/log`, durable by `fdatasync` (group commit) before the append returns.
//!
//! - **Sequence**: an event's journal sequence number is its record's LSN.
//! - **Unprocessed events** live in memory (`Unprocessed`): by dedup key and by LSN. The step
//!   commit that processes an event marks it processed in sled `event_keys` inside its
//!   transaction (as before), then drops it from memory. An event is therefore always either in
//!   memory or marked in sled (or both for a moment), and dedup checks memory first, then sled,
//!   under the same lock the appends take.
//! - **One sync for an event and its step**: a new event's record waits up to
//!   [`StoreOptions::event_sync_wait`](crate::StoreOptions::event_sync_wait) for a sync, and
//!   the webhook hands the event to the runtime before it waits: the step's commit (an eager
//!   append) starts the `fdatasync` that makes both durable, so the reply needs one sync, not
//!   two. Replay stays correct: recovery keeps a prefix of the log (it cuts at the first bad
//!   frame), so a step record is never recovered without its event.
//! - **Duplicates** answer [`Appended::Duplicate`]; a duplicate of an event whose record is not
//!   durable yet waits until it is, so its 200 means what the first one's does.
//! - **Recovery** at open reads the log's event records and keeps the events the store (after
//!   the redo records are replayed) does not mark processed. Unprocessed events journaled in
//!   sled by an older release are moved into the log first.
//! - **Truncation** (by checkpoints, `checkpoint.rs`): a segment is deleted only when every event
//!   in it is processed *and* a durable checkpoint holds the marks that say so, so a crash never
//!   finds an event in neither place.
//! - **Poison**: once an append or `fdatasync` fails, the log refuses every append
//!   ([`StoreError::Log`], [`StoreError::is_fatal`]); the process must restart to recover.

use super::SledStore;
use super::checkpoint::JOURNAL_FLOOR;
use super::codec::{Key, decode};
use super::trees::{T, Tx, TxResult};
use crate::error::StoreError;
use crate::ids::{EventId, PageId};
use crate::journal::{Appended, JournalEntry, NewJournalEvent};
use crate::log::{LogError, Lsn};
use crate::store::StoreResult;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The dedup record of an inbound event, holding the event until it is processed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct EventRecord {
    /// Arrival sequence, when the event went through the journal.
    pub(super) seq: Option<u64>,
    /// Whether a step commit processed it.
    pub(super) processed: bool,
    /// The event, kept until it is processed.
    #[serde(default)]
    pub(super) entry: Option<JournalEntry>,
    /// When a step commit processed it (the retention sweep removes the record a window later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) processed_ms: Option<u64>,
}

/// The head of an [`EventRecord`] without its event: what the step commit checks. Decoding it
/// skips the event's payload instead of building it (the commit runs under sled's store lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
struct EventRecordHead {
    seq: Option<u64>,
    processed: bool,
}

/// The arrival index entry: which event has this sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct JournalPointer {
    pub(super) page: PageId,
    pub(super) event: EventId,
}

pub(super) fn event_key(page: &PageId, event: &EventId) -> Vec<u8> {
    Key::new().str(page.as_str()).str(event.as_str()).finish()
}

pub(super) fn journal_key(seq: u64) -> Vec<u8> {
    Key::new().u64(seq).finish()
}

/// Whether an event was processed, inside a transaction.
pub(super) fn is_processed(tx: &Tx<'_>, page: &PageId, event: &EventId) -> TxResult<bool> {
    let record: Option<EventRecordHead> = tx.get(T::EventKeys, &event_key(page, event))?;
    Ok(record.is_some_and(|r| r.processed))
}

/// Marks an event processed at `now_ms` inside a step commit, refusing one processed before, and
/// indexes its dedup record for the retention sweep.
pub(super) fn mark_processed(
    tx: &Tx<'_>,
    page: &PageId,
    event: &EventId,
    now_ms: u64,
) -> TxResult<()> {
    let key = event_key(page, event);
    let record: Option<EventRecordHead> = tx.get(T::EventKeys, &key)?;
    let seq = match record {
        Some(EventRecordHead {
            processed: true, ..
        }) => {
            return Err(StoreError::EventAlreadyProcessed {
                page: page.clone(),
                event: event.clone(),
            }
            .into());
        }
        Some(EventRecordHead { seq, .. }) => seq,
        // Never journaled (e.g. a caller that skips the journal): remember it so a later
        // delivery of the same event is recognised as a duplicate.
        None => None,
    };
    if let Some(seq) = seq {
        tx.del(T::Journal, &journal_key(seq))?;
    }
    tx.put(
        T::EventKeys,
        &key,
        &EventRecord {
            seq,
            processed: true,
            entry: None,
            processed_ms: Some(now_ms),
        },
    )?;
    super::retention::note_event(tx, &key, now_ms)
}

/// Format byte of an `Event` log record (followed by the JSON of a [`NewJournalEvent`]).
const EVENT_RECORD_V1: u8 = 1;

fn encode_event(event: &NewJournalEvent) -> StoreResult<Vec<u8>> {
    let mut bytes = vec![EVENT_RECORD_V1];
    serde_json::to_writer(&mut bytes, event).map_err(|err| StoreError::Encode {
        what: "event log",
        detail: err.to_string(),
    })?;
    Ok(bytes)
}

fn decode_event(lsn: Lsn, bytes: &[u8]) -> StoreResult<NewJournalEvent> {
    match bytes.split_first() {
        Some((&EVENT_RECORD_V1, json)) => {
            serde_json::from_slice(json).map_err(|err| StoreError::Corrupt {
                what: "event log",
                detail: format!("record {lsn}: {err}"),
            })
        }
        Some((&version, _)) => Err(StoreError::UnsupportedRecordVersion {
            what: "event log",
            version,
            supported: EVENT_RECORD_V1,
        }),
        None => Err(StoreError::Corrupt {
            what: "event log",
            detail: format!("record {lsn} is empty"),
        }),
    }
}

fn log_error(action: &'static str) -> impl FnOnce(LogError) -> StoreError {
    move |source| StoreError::Log { action, source }
}

/// The journaled events no step commit has processed yet.
#[derive(Debug, Default)]
struct Unprocessed {
    /// Dedup key → LSN.
    by_key: HashMap<Vec<u8>, Lsn>,
    /// LSN → the event.
    by_lsn: BTreeMap<Lsn, JournalEntry>,
}

impl Unprocessed {
    fn insert(&mut self, lsn: Lsn, key: Vec<u8>, event: NewJournalEvent) {
        self.by_key.insert(key, lsn);
        self.by_lsn.insert(
            lsn,
            JournalEntry {
                seq: lsn,
                page: event.page,
                event: event.event,
                psid: event.psid,
                payload: event.payload,
                received_ms: event.received_ms,
            },
        );
    }
}

/// The unprocessed events in memory (their records are in the log).
#[derive(Debug, Default)]
pub(super) struct EventJournal {
    unprocessed: Mutex<Unprocessed>,
    /// Every event below this LSN is processed, as recorded by the last durable checkpoint
    /// (`meta/journal_floor`).
    floor: AtomicU64,
}

impl EventJournal {
    fn lock(&self) -> MutexGuard<'_, Unprocessed> {
        self.unprocessed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The LSN of the oldest unprocessed event.
    pub(super) fn lowest_unprocessed(&self) -> Option<Lsn> {
        self.lock().by_lsn.keys().next().copied()
    }

    /// The processed floor of the last durable checkpoint.
    pub(super) fn floor(&self) -> Lsn {
        self.floor.load(Ordering::Acquire)
    }

    /// Records the floor a durable checkpoint wrote.
    pub(super) fn set_floor(&self, floor: Lsn) {
        self.floor.fetch_max(floor, Ordering::AcqRel);
    }
}

impl SledStore {
    /// Journals events (dedup per event): appends one `Event` record per new event and waits
    /// until every record the answers depend on is durable (one shared `fdatasync`).
    pub(super) fn journal_append_all(
        &self,
        events: &[NewJournalEvent],
    ) -> StoreResult<Vec<Appended>> {
        let (outcomes, wait) = self.journal_append_pending(events)?;
        if wait > 0 {
            self.core
                .log
                .wait_durable(wait)
                .map_err(log_error("wait for the event log's fdatasync"))?;
        }
        Ok(outcomes)
    }

    /// [`Self::journal_append_all`] with the wait left to the caller: the answers, and the LSN
    /// that must be durable before they hold (0: none).
    pub(super) fn journal_append_pending(
        &self,
        events: &[NewJournalEvent],
    ) -> StoreResult<(Vec<Appended>, Lsn)> {
        let encoded = events
            .iter()
            .map(encode_event)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut outcomes = Vec::with_capacity(events.len());
        // The highest LSN an answer depends on: a new event's, or a duplicate's original.
        let mut wait: Lsn = 0;
        {
            let mut unprocessed = self.core.journal.lock();
            for (event, payload) in events.iter().zip(&encoded) {
                let key = event_key(&event.page, &event.event);
                if let Some(&lsn) = unprocessed.by_key.get(&key) {
                    wait = wait.max(lsn);
                    outcomes.push(Appended::Duplicate);
                    continue;
                }
                // Not in memory: either new, or processed (the step commit marks sled before it
                // drops the event from memory, under this lock).
                if self.tree(T::EventKeys).contains_key(&key)? {
                    // A caller may have stepped it before its own record was durable: wait for
                    // everything appended so far, which holds that record, so the answer to a
                    // redelivery too means the event is on disk.
                    wait = wait.max(self.core.log.last_lsn());
                    outcomes.push(Appended::Duplicate);
                    continue;
                }
                let lsn = self
                    .core
                    .log
                    .append_within(payload, self.core.event_sync_wait)
                    .map_err(log_error("append an event"))?;
                unprocessed.insert(lsn, key, event.clone());
                wait = wait.max(lsn);
                outcomes.push(Appended::New { seq: lsn });
            }
        }
        Ok((outcomes, wait))
    }

    /// Drops processed events from memory, after the transaction that marked them committed.
    pub(super) fn journal_forget<'a>(
        &self,
        processed: impl IntoIterator<Item = (&'a PageId, &'a EventId)>,
    ) {
        let mut unprocessed = self.core.journal.lock();
        for (page, event) in processed {
            if let Some(lsn) = unprocessed.by_key.remove(&event_key(page, event)) {
                unprocessed.by_lsn.remove(&lsn);
            }
        }
    }

    /// Every unprocessed event whose record is durable, in arrival (LSN) order. An event whose
    /// `fdatasync` is still running is left out: nothing may act on it before its webhook could
    /// be acknowledged.
    pub(super) fn journal_unprocessed(&self) -> StoreResult<Vec<JournalEntry>> {
        let unprocessed = self.core.journal.lock();
        let durable = self.core.log.durable_lsn();
        Ok(unprocessed
            .by_lsn
            .range(..=durable)
            .map(|(_, entry)| entry.clone())
            .collect())
    }

    /// Rebuilds the unprocessed events from the log records sled does not mark processed, then
    /// moves the unprocessed events an older release journaled in sled into the log (run at
    /// open, before any append).
    pub(super) fn journal_recover(&self, records: Vec<(Lsn, Vec<u8>)>) -> StoreResult<()> {
        let meta = self.core.base.sled_tree(T::Meta);
        let mut floor =
            super::trees::read::<u64>(&self.core.base, T::Meta, JOURNAL_FLOOR)?.unwrap_or(0);
        let next = self.core.log.last_lsn() + 1;
        if floor > next {
            // The log was replaced by a shorter one (restored or removed by hand): its LSNs
            // start again, so the floor says nothing about them.
            tracing::warn!(
                floor,
                next,
                "the event log is behind its processed floor; ignoring the floor"
            );
            floor = 0;
            meta.insert(JOURNAL_FLOOR, super::codec::encode("meta", &floor)?)?;
        }
        self.core.journal.floor.store(floor, Ordering::Release);
        let keys = self.tree(T::EventKeys);
        {
            let mut unprocessed = self.core.journal.lock();
            for (lsn, bytes) in records {
                // Below the floor every event is processed, even one whose dedup record the
                // retention sweep has removed since.
                if lsn < floor {
                    continue;
                }
                let event = decode_event(lsn, &bytes)?;
                let key = event_key(&event.page, &event.event);
                // A copy moved from sled twice (a crash during the move) keeps its first LSN.
                if unprocessed.by_key.contains_key(&key) || keys.contains_key(&key)? {
                    continue;
                }
                unprocessed.insert(lsn, key, event);
            }
        }
        self.journal_move_legacy()
    }

    /// Moves the unprocessed events of sled's `journal` tree (older releases) into the log:
    /// appended and synced first, then removed from sled and flushed.
    fn journal_move_legacy(&self) -> StoreResult<()> {
        let journal = self.tree(T::Journal);
        let mut moved = Vec::new();
        let mut legacy = Vec::new();
        for item in journal.iter() {
            let (index, value) = item?;
            let pointer: JournalPointer = decode("journal", &value)?;
            let key = event_key(&pointer.page, &pointer.event);
            let record: Option<EventRecord> = self.read(T::EventKeys, &key)?;
            if let Some(EventRecord {
                processed: false,
                entry: Some(entry),
                ..
            }) = record
            {
                moved.push(NewJournalEvent {
                    page: entry.page,
                    event: entry.event,
                    psid: entry.psid,
                    payload: entry.payload,
                    received_ms: entry.received_ms,
                });
                legacy.push((index, Some(key)));
            } else {
                legacy.push((index, None));
            }
        }
        if legacy.is_empty() {
            return Ok(());
        }
        let count = moved.len();
        {
            let mut unprocessed = self.core.journal.lock();
            for event in moved {
                let key = event_key(&event.page, &event.event);
                if unprocessed.by_key.contains_key(&key) {
                    continue;
                }
                let lsn = self
                    .core
                    .log
                    .append(&encode_event(&event)?)
                    .map_err(log_error("move an event from sled"))?;
                unprocessed.insert(lsn, key, event);
            }
        }
        self.core
            .log
            .wait_durable(self.core.log.last_lsn())
            .map_err(log_error("sync the events moved from sled"))?;
        self.transact(|tx| {
            for (index, key) in &legacy {
                tx.del(T::Journal, index)?;
                if let Some(key) = key {
                    tx.del(T::EventKeys, key)?;
                }
            }
            Ok(())
        })?;
        self.durable()?;
        tracing::info!(
            count,
            "moved unprocessed events from the sled journal into the log"
        );
        Ok(())
    }
}
