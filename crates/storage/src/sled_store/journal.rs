//! The inbound journal on sled: dedup by event key, arrival sequence, group-committed appends.

use super::SledStore;
use super::codec::Key;
use super::trees::{T, Tx, TxResult};
use crate::error::StoreError;
use crate::ids::{EventId, PageId};
use crate::journal::{Appended, JournalEntry, NewJournalEvent};
use crate::store::StoreResult;
use serde::{Deserialize, Serialize};

/// Name of the arrival sequence counter in the meta tree.
const SEQ_COUNTER: &str = "journal_seq";

/// The dedup record of an inbound event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct EventKeyRecord {
    /// Arrival sequence, when the event went through the journal.
    pub(super) seq: Option<u64>,
    /// Whether a step commit processed it.
    pub(super) processed: bool,
}

pub(super) fn event_key(page: &PageId, event: &EventId) -> Vec<u8> {
    Key::new().str(page.as_str()).str(event.as_str()).finish()
}

pub(super) fn journal_key(seq: u64) -> Vec<u8> {
    Key::new().u64(seq).finish()
}

/// Marks an event processed inside a step commit, refusing one processed before.
pub(super) fn mark_processed(tx: &Tx<'_>, page: &PageId, event: &EventId) -> TxResult<()> {
    let key = event_key(page, event);
    let record: Option<EventKeyRecord> = tx.get(T::EventKeys, &key)?;
    match record {
        Some(EventKeyRecord {
            processed: true, ..
        }) => Err(StoreError::EventAlreadyProcessed {
            page: page.clone(),
            event: event.clone(),
        }
        .into()),
        Some(EventKeyRecord { seq, .. }) => {
            if let Some(seq) = seq {
                tx.del(T::Journal, &journal_key(seq))?;
            }
            tx.put(
                T::EventKeys,
                &key,
                &EventKeyRecord {
                    seq,
                    processed: true,
                },
            )
        }
        // Never journaled (e.g. a caller that skips the journal): remember it so a later
        // delivery of the same event is recognised as a duplicate.
        None => tx.put(
            T::EventKeys,
            &key,
            &EventKeyRecord {
                seq: None,
                processed: true,
            },
        ),
    }
}

impl SledStore {
    /// Journals events in one transaction, then waits for a (shared) flush.
    pub(super) fn journal_append_all(
        &self,
        events: &[NewJournalEvent],
    ) -> StoreResult<Vec<Appended>> {
        let appended = self.transact(|tx| {
            let mut seq = tx.counter(SEQ_COUNTER)?;
            let mut outcomes = Vec::with_capacity(events.len());
            for event in events {
                let key = event_key(&event.page, &event.event);
                if tx.contains(T::EventKeys, &key)? {
                    outcomes.push(Appended::Duplicate);
                    continue;
                }
                seq += 1;
                tx.put(
                    T::EventKeys,
                    &key,
                    &EventKeyRecord {
                        seq: Some(seq),
                        processed: false,
                    },
                )?;
                tx.put(
                    T::Journal,
                    &journal_key(seq),
                    &JournalEntry {
                        seq,
                        page: event.page.clone(),
                        event: event.event.clone(),
                        psid: event.psid.clone(),
                        payload: event.payload.clone(),
                        received_ms: event.received_ms,
                    },
                )?;
                outcomes.push(Appended::New { seq });
            }
            tx.set_counter(SEQ_COUNTER, seq)?;
            Ok(outcomes)
        })?;
        // Duplicates wait too: the first delivery may still be waiting for its flush.
        self.durable()?;
        Ok(appended)
    }
}
