//! From a verified webhook delivery to durable journal entries and runtime work.

use crate::error::ApiError;
use crate::state::AppState;
use botflow_messenger::{EventKind, MessagingEvent};
use botflow_storage::{Appended, EventId, NewJournalEvent, PageId, Psid, StoreError};
use std::time::{SystemTime, UNIX_EPOCH};

/// What journaling one delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events journaled for the first time (and handed to the runtime).
    pub new_events: usize,
    /// Events whose dedup key was journaled before: redeliveries, not processed again.
    pub duplicates: usize,
}

/// Milliseconds since the Unix epoch, the store's clock unit.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The Page and the subscriber of an event: an echo is sent by the Page to the subscriber,
/// every other event by the subscriber to the Page.
pub fn event_parties(event: &MessagingEvent) -> (&str, &str) {
    match event.kind {
        EventKind::Echo { .. } => (event.sender.as_str(), event.recipient.as_str()),
        _ => (event.recipient.as_str(), event.sender.as_str()),
    }
}

/// The journal record of one webhook event: its dedup key, the subscriber and the event itself
/// (its serde form, which `MessagingEvent` reads back) under the Page it is for.
pub fn journal_record(
    event: &MessagingEvent,
    received_ms: u64,
) -> Result<NewJournalEvent, ApiError> {
    let (page, psid) = event_parties(event);
    Ok(NewJournalEvent {
        page: PageId::from(page),
        event: EventId::from(event.dedup_key()),
        psid: Psid::from(psid),
        payload: serde_json::to_value(event).map_err(ApiError::internal)?,
        received_ms,
    })
}

impl AppState {
    /// Journals the events of one delivery in one durable commit and hands the new ones to the
    /// runtime. Returns only once the journal is on disk, so the caller may answer 200.
    pub async fn ingest(&self, events: Vec<MessagingEvent>) -> Result<IngestOutcome, ApiError> {
        if events.is_empty() {
            return Ok(IngestOutcome::default());
        }
        let received_ms = now_ms();
        let records = events
            .iter()
            .map(|event| journal_record(event, received_ms))
            .collect::<Result<Vec<_>, _>>()?;
        // Held until the runtime has the events: a concurrent delivery for the same subscriber
        // journals after this one and reaches the runtime after it too.
        let subscribers = records
            .iter()
            .map(|record| (record.page.0.clone(), record.psid.0.clone()))
            .collect();
        let in_order = self.subscriber_locks.lock(subscribers).await;
        let store = self.store.clone();
        let started = std::time::Instant::now();
        // The append runs in place when the store's calls are local (else on a blocking
        // thread); its `fdatasync` is awaited without a thread.
        let (records, appended) = if store.calls_are_local() {
            let appended = store.journal_append_batch_deferred(&records);
            (records, appended)
        } else {
            tokio::task::spawn_blocking(move || {
                let appended = store.journal_append_batch_deferred(&records);
                (records, appended)
            })
            .await
            .map_err(ApiError::internal)?
        };
        let (appended, durable) = match appended {
            Ok(appended) => appended,
            Err(err) => return Err(self.journal_failed(err)),
        };
        let mut outcome = IngestOutcome::default();
        let mut fresh = Vec::new();
        for (record, appended) in records.into_iter().zip(appended) {
            let span = tracing::info_span!("event", page = %record.page, psid = %record.psid, key = %record.event);
            let _enter = span.enter();
            match appended {
                Appended::New { seq } => {
                    tracing::debug!(seq, "event journaled");
                    outcome.new_events += 1;
                    fresh.push(record.journaled(seq));
                }
                Appended::Duplicate => {
                    tracing::info!("redelivery ignored");
                    outcome.duplicates += 1;
                }
            }
        }
        // Handed over before the wait: the step may commit while the journal syncs, and its
        // commit's sync then makes both durable (one `fdatasync` before the reply, not two). No
        // message leaves before that commit is durable (the dispatcher waits for it), and the
        // 200 waits for the events below.
        self.submit_to_runtime(fresh).await;
        drop(in_order);
        durable
            .wait()
            .await
            .map_err(|err| self.journal_failed(err))?;
        self.metrics.journal_append.observe(started.elapsed());
        self.metrics.events_received.add(outcome.new_events as u64);
        self.metrics.events_duplicate.add(outcome.duplicates as u64);
        Ok(outcome)
    }

    /// The answer to a journal append or sync that failed.
    fn journal_failed(&self, err: StoreError) -> ApiError {
        if err.is_fatal() {
            // Messenger redelivers after the 500; this process must restart to recover.
            self.report_fatal(&err);
        }
        if err.is_transient() {
            // The database is unavailable for now: 503, Messenger redelivers later.
            tracing::warn!(%err, "webhook answered 503: the database is unavailable");
            return ApiError::Unavailable(format!("the database is unavailable: {err}"));
        }
        ApiError::internal(err)
    }
}
