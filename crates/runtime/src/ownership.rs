//! The runtime on several nodes sharing one database (SCALE-OUT.md §3.3, §3.9): the journal
//! follower of a node that owns only some shards, and what happens when ownership changes.
//!
//! A webhook may hit any node; the node journals it and answers, and the shard's owner finds it
//! by polling the journal every `poll` (20 ms by default on PostgreSQL), oldest first and at
//! most [`POLL_LIMIT`] entries per read. Every event goes through the poll, even a webhook the
//! owner received itself (its hand-off only wakes the poll): a subscriber's events journaled
//! on two nodes are then queued in journal order, which per subscriber is commit order.
//!
//! When the node gains a shard, the poll, the timer loop and the dispatcher are woken, so the
//! shard's unprocessed journal, due timers and pending messages are picked up at once; when it
//! loses one, its queued work fails the commit fence (`OwnershipLost`) and is dropped without
//! retry, and the dispatcher sends nothing more for it ([`botflow_storage::Ownership::may_send`]).

use crate::metrics::RuntimeMetrics;
use crate::process::Processor;
use crate::scheduler::Shards;
use botflow_storage::{Ownership, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Most journal entries one poll reads.
pub const POLL_LIMIT: usize = 1_024;

/// The journal poll interval on a store shared by several nodes.
pub const SHARED_JOURNAL_POLL: Duration = Duration::from_millis(20);

/// Whether a store error means this node does not own the work's shard (any more): the work is
/// dropped, not retried; the owner does it.
pub(crate) fn is_lost(error: &StoreError) -> bool {
    matches!(error, StoreError::OwnershipLost { .. })
}

/// Queues every unprocessed journal entry of the owned shards that is not queued yet, oldest
/// first, every `poll` or when `wake` is notified, until `stop` is notified; records the age of
/// the oldest entry read as the poll lag.
pub(crate) async fn follow_shared_journal(
    processor: Arc<Processor>,
    shards: Arc<Shards>,
    poll: Duration,
    stop: Arc<Notify>,
    wake: Arc<Notify>,
) {
    loop {
        tokio::select! {
            () = stop.notified() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
        shards.start_event_read();
        let store = Arc::clone(&processor.store);
        let pending =
            match tokio::task::spawn_blocking(move || store.poll_unprocessed(POLL_LIMIT)).await {
                Ok(Ok(pending)) => pending,
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot read the journal");
                    continue;
                }
                Err(_) => continue,
            };
        let now = processor.clock.now_ms();
        let lag_ms = pending
            .iter()
            .map(|e| now.saturating_sub(e.received_ms))
            .max()
            .unwrap_or(0);
        processor
            .metrics
            .journal_poll_lag_ms
            .set(i64::try_from(lag_ms).unwrap_or(i64::MAX));
        for entry in pending {
            if shards.submit_event(entry).await.is_err() {
                return;
            }
        }
    }
}

/// Calls `wake` (the journal poll, the timer loop and the dispatcher) whenever the owned shards
/// change; runs until aborted.
pub(crate) async fn watch_ownership(
    ownership: Arc<Ownership>,
    wake: impl Fn() + Send + 'static,
    metrics: Arc<RuntimeMetrics>,
) {
    let mut changes = ownership.subscribe();
    while changes.changed().await.is_ok() {
        tracing::info!(
            node = ownership.node_id(),
            shards = ownership.held_count(),
            "owned shards changed"
        );
        metrics.journal_poll_lag_ms.set(0);
        wake();
    }
}
