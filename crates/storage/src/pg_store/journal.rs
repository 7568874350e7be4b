//! The inbound event journal on PostgreSQL: appends deduplicated by `UNIQUE (page_id,
//! event_id)`, committed synchronously before the webhook answers; the step commit marks an
//! event processed once.

use super::PgStore;
use super::db::{Tx, TxResult, big, shard_of, unbig};
use crate::error::StoreError;
use crate::ids::{EventId, PageId, Psid};
use crate::journal::{Appended, JournalEntry, NewJournalEvent};
use crate::store::StoreResult;

/// Writes the subscriber's row first, so transactions about one subscriber serialize.
pub(super) fn lock_subscriber(tx: &mut Tx<'_, '_>, page: &PageId, psid: &Psid) -> TxResult<()> {
    tx.execute(
        "INSERT INTO subscribers (page_id, psid, shard) VALUES ($1, $2, $3)
         ON CONFLICT (page_id, psid) DO UPDATE SET shard = EXCLUDED.shard",
        &[&page.as_str(), &psid.as_str(), &shard_of(page.as_str())],
    )?;
    Ok(())
}

/// [`lock_subscriber`], and in the same round trip whether `event` was processed already.
pub(super) fn lock_subscriber_for(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    event: &EventId,
) -> TxResult<bool> {
    let row = tx.query_one(
        "WITH locked AS (
           INSERT INTO subscribers (page_id, psid, shard) VALUES ($1, $2, $3)
           ON CONFLICT (page_id, psid) DO UPDATE SET shard = EXCLUDED.shard RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM journal WHERE page_id = $1 AND event_id = $4
                          AND processed_ms IS NOT NULL),
                (SELECT count(*) FROM locked)",
        &[
            &page.as_str(),
            &psid.as_str(),
            &shard_of(page.as_str()),
            &event.as_str(),
        ],
    )?;
    Ok(row.get::<_, bool>(0))
}

/// Marks an event processed under lease `epoch`, refusing one processed before; an event the
/// journal never saw gets a processed dedup row (so a later delivery of it is a duplicate).
pub(super) fn mark_processed(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    event: &EventId,
    now_ms: u64,
    epoch: i64,
) -> TxResult<()> {
    let row = tx.query_opt(
        "INSERT INTO journal (page_id, event_id, psid, shard, processed_ms, processed_epoch,
           processed_at)
         VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())
         ON CONFLICT (page_id, event_id) DO UPDATE SET processed_ms = EXCLUDED.processed_ms,
           processed_epoch = EXCLUDED.processed_epoch, processed_at = EXCLUDED.processed_at
           WHERE journal.processed_ms IS NULL
         RETURNING seq",
        &[
            &page.as_str(),
            &event.as_str(),
            &psid.as_str(),
            &shard_of(page.as_str()),
            &big(now_ms),
            &epoch,
        ],
    )?;
    match row {
        Some(_) => Ok(()),
        // no row: the conflicting row was processed already
        None => Err(StoreError::EventAlreadyProcessed {
            page: page.clone(),
            event: event.clone(),
        }
        .into()),
    }
}

impl PgStore {
    pub(super) fn journal_append_all(
        &self,
        events: &[NewJournalEvent],
    ) -> StoreResult<Vec<Appended>> {
        self.pool.write("journal_append", true, |tx| {
            let mut subscribers: Vec<(&PageId, &Psid)> =
                events.iter().map(|e| (&e.page, &e.psid)).collect();
            subscribers.sort();
            subscribers.dedup();
            for (page, psid) in subscribers {
                lock_subscriber(tx, page, psid)?;
            }
            let mut outcomes = Vec::with_capacity(events.len());
            for event in events {
                let row = tx.query_opt(
                    "INSERT INTO journal (page_id, event_id, psid, shard, payload, received_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (page_id, event_id) DO NOTHING RETURNING seq",
                    &[
                        &event.page.as_str(),
                        &event.event.as_str(),
                        &event.psid.as_str(),
                        &shard_of(event.page.as_str()),
                        &event.payload,
                        &big(event.received_ms),
                    ],
                )?;
                outcomes.push(match row {
                    Some(row) => Appended::New {
                        seq: unbig(row.get(0)),
                    },
                    None => Appended::Duplicate,
                });
            }
            Ok(outcomes)
        })
    }

    pub(super) fn journal_unprocessed(&self, limit: usize) -> StoreResult<Vec<JournalEntry>> {
        let shards = self.owned_shards();
        if shards.is_empty() {
            return Ok(Vec::new());
        }
        self.pool.read("unprocessed_events", |c| {
            let rows = c.query(
                "SELECT seq, page_id, event_id, psid, payload, received_ms FROM journal
                 WHERE processed_ms IS NULL AND shard = ANY($1) ORDER BY seq LIMIT $2",
                &[&shards, &big(limit as u64)],
            )?;
            Ok(rows
                .iter()
                .map(|r| JournalEntry {
                    seq: unbig(r.get("seq")),
                    page: PageId::from(r.get::<_, String>("page_id").as_str()),
                    event: EventId::from(r.get::<_, String>("event_id").as_str()),
                    psid: Psid(r.get("psid")),
                    payload: r
                        .get::<_, Option<serde_json::Value>>("payload")
                        .unwrap_or_default(),
                    received_ms: r.get::<_, Option<i64>>("received_ms").map_or(0, unbig),
                })
                .collect())
        })
    }
}
