//! The inbound journal on sled: dedup by event key, arrival sequence, group-committed appends.
//!
//! An append does not use a sled transaction (each costs two log-buffer writes in sled 0.34):
//! the arrival index entry `seq → (page, event)` is written first, then the event record is
//! inserted with a compare-and-swap that succeeds only if no record of that dedup key exists.
//! Both are on disk before the call returns (group flush). A crash between the two writes of an
//! append that was never acknowledged leaves either a dangling index entry (skipped when read,
//! removed at the next open) or a record without index entry, which the redelivery of that
//! event repairs.

use super::SledStore;
use super::codec::{Key, decode, encode};
use super::trees::{T, Tx, TxResult};
use crate::error::StoreError;
use crate::ids::{EventId, PageId};
use crate::journal::{Appended, JournalEntry, NewJournalEvent};
use crate::store::StoreResult;
use serde::{Deserialize, Serialize};

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
    let record: Option<EventRecord> = tx.get(T::EventKeys, &event_key(page, event))?;
    Ok(record.is_some_and(|r| r.processed))
}

/// Marks an event processed inside a step commit, refusing one processed before.
pub(super) fn mark_processed(tx: &Tx<'_>, page: &PageId, event: &EventId) -> TxResult<()> {
    let key = event_key(page, event);
    let record: Option<EventRecord> = tx.get(T::EventKeys, &key)?;
    let seq = match record {
        Some(EventRecord {
            processed: true, ..
        }) => {
            return Err(StoreError::EventAlreadyProcessed {
                page: page.clone(),
                event: event.clone(),
            }
            .into());
        }
        Some(EventRecord { seq, .. }) => seq,
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
        },
    )
}

impl SledStore {
    /// Journals events (dedup per event), then waits for a (shared) flush.
    pub(super) fn journal_append_all(
        &self,
        events: &[NewJournalEvent],
    ) -> StoreResult<Vec<Appended>> {
        let journal = self.tree(T::Journal);
        let keys = self.tree(T::EventKeys);
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let seq = self.db.generate_id()? + 1;
            let pointer = JournalPointer {
                page: event.page.clone(),
                event: event.event.clone(),
            };
            journal.insert(journal_key(seq), encode("journal", &pointer)?)?;
            let record = EventRecord {
                seq: Some(seq),
                processed: false,
                entry: Some(JournalEntry {
                    seq,
                    page: event.page.clone(),
                    event: event.event.clone(),
                    psid: event.psid.clone(),
                    payload: event.payload.clone(),
                    received_ms: event.received_ms,
                }),
            };
            let key = event_key(&event.page, &event.event);
            let swapped =
                keys.compare_and_swap(&key, None::<&[u8]>, Some(encode("event_keys", &record)?))?;
            match swapped {
                Ok(()) => outcomes.push(Appended::New { seq }),
                Err(existing) => {
                    journal.remove(journal_key(seq))?;
                    outcomes.push(self.journal_redelivered(&key, existing.current.as_deref())?);
                }
            }
        }
        // Duplicates wait too: the first delivery may still be waiting for its flush.
        self.durable()?;
        Ok(outcomes)
    }

    /// Handles the redelivery of a journaled event: a duplicate, unless a crash lost the
    /// arrival index entry of the unprocessed original, which is then restored.
    fn journal_redelivered(&self, key: &[u8], existing: Option<&[u8]>) -> StoreResult<Appended> {
        let Some(bytes) = existing else {
            return Ok(Appended::Duplicate);
        };
        let record: EventRecord = decode("event_keys", bytes)?;
        match (record.processed, record.seq, record.entry) {
            (false, Some(seq), Some(entry)) => {
                let journal = self.tree(T::Journal);
                let pointer = JournalPointer {
                    page: entry.page,
                    event: entry.event,
                };
                let restored = journal.compare_and_swap(
                    journal_key(seq),
                    None::<&[u8]>,
                    Some(encode("journal", &pointer)?),
                )?;
                if restored.is_ok() {
                    // Processed meanwhile? Then the restored entry is stale: take it back.
                    let now: Option<EventRecord> = self.read(T::EventKeys, key)?;
                    if now.is_some_and(|r| r.processed) {
                        journal.remove(journal_key(seq))?;
                        return Ok(Appended::Duplicate);
                    }
                    tracing::warn!(seq, "restored the arrival index entry of a journaled event");
                    // Still unprocessed and unknown to the runtime: report it as new.
                    return Ok(Appended::New { seq });
                }
                Ok(Appended::Duplicate)
            }
            _ => Ok(Appended::Duplicate),
        }
    }

    /// Every unprocessed event in arrival order. Index entries without an unprocessed record
    /// are skipped, not removed: an append may be between its two writes right now.
    pub(super) fn journal_unprocessed(&self) -> StoreResult<Vec<JournalEntry>> {
        let mut entries = Vec::new();
        for item in self.tree(T::Journal).iter() {
            let (_, value) = item?;
            let pointer: JournalPointer = decode("journal", &value)?;
            let record: Option<EventRecord> =
                self.read(T::EventKeys, &event_key(&pointer.page, &pointer.event))?;
            if let Some(EventRecord {
                processed: false,
                entry: Some(entry),
                ..
            }) = record
            {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Removes index entries left by appends that a crash cut short (run at open, when no
    /// append is in progress).
    pub(super) fn journal_drop_dangling(&self) -> StoreResult<()> {
        let journal = self.tree(T::Journal);
        for item in journal.iter() {
            let (key, value) = item?;
            let seq = super::codec::KeyReader::new(&key).u64()?;
            let pointer: JournalPointer = decode("journal", &value)?;
            let record: Option<EventRecord> =
                self.read(T::EventKeys, &event_key(&pointer.page, &pointer.event))?;
            let live = record.is_some_and(|r| !r.processed && r.seq == Some(seq));
            if !live {
                journal.remove(&key)?;
            }
        }
        Ok(())
    }
}
