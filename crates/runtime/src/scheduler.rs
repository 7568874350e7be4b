//! The scheduler: per-subscriber ordering, concurrency across subscribers, bounded queues.
//!
//! Work is routed to one of N shards by a hash of (Page, PSID). A shard is one long-lived blocking
//! task with a bounded FIFO queue that processes its items in order (a batch at a time), so the
//! events of a subscriber are processed strictly in arrival order with at most one in flight, while
//! different shards run concurrently. A full queue makes [`Shards::submit`] wait (backpressure).
//! Timers are found by polling the store's due-timer index and go through the same queues as
//! events.

use crate::metrics::RuntimeMetrics;
use crate::process::{ProcessError, Processed, Processor, Work, WorkId};
use botflow_storage::{JournalEntry, StoreError};
use botflow_storage::{PageId, Psid};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// Attempts at one unit of work when the store fails, before it is left for the next start.
const STORE_ATTEMPTS: u32 = 3;

/// What a shard reports after each unit of work.
pub(crate) type AfterWork = Arc<dyn Fn(&Processed) + Send + Sync>;

/// The shards' senders; `None` once shutdown began.
#[derive(Debug)]
pub(crate) struct Shards {
    senders: RwLock<Option<Vec<mpsc::Sender<Work>>>>,
    metrics: Arc<RuntimeMetrics>,
    /// Due timers handed to a shard (a due-timer read lists a timer until its commit).
    timers: Mutex<InFlight<TimerKey>>,
    /// Journaled events handed to a shard, by journal sequence number (the journal lists an
    /// event until its commit; the webhook and the journal follower may both offer it).
    events: Mutex<InFlight<u64>>,
    /// One turn per shard: claiming work and putting it in the shard's queue happen under it,
    /// so work claimed first is queued first. (A task waiting for queue space may lose its
    /// place to a later sender — Tokio's cooperative budget can make a send yield before it
    /// queues as a waiter — which once let a subscriber's next event overtake the one a
    /// journal-follower read had claimed.)
    turns: Vec<tokio::sync::Mutex<()>>,
}

type TimerKey = (PageId, Psid, u64);

/// Work read from the store that is queued or running, and work finished since the last read
/// (a read made before its commit may still list it), so no item is queued twice.
#[derive(Debug)]
struct InFlight<K> {
    in_flight: HashSet<K>,
    finished: HashSet<K>,
}

impl<K> Default for InFlight<K> {
    fn default() -> Self {
        Self {
            in_flight: HashSet::new(),
            finished: HashSet::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> InFlight<K> {
    /// Claims `key` for queueing; false when it is queued, running or just finished.
    fn claim(&mut self, key: &K) -> bool {
        !self.finished.contains(key) && self.in_flight.insert(key.clone())
    }

    /// Whether `key` is queued or running.
    fn is_in_flight(&self, key: &K) -> bool {
        self.in_flight.contains(key)
    }

    /// Records that `key`'s work ended (committed, failed, or given up).
    fn finish(&mut self, key: K) {
        self.in_flight.remove(&key);
        self.finished.insert(key);
    }

    /// Releases `key` without marking it finished (its work was not queued after all).
    fn release(&mut self, key: &K) {
        self.in_flight.remove(key);
    }

    /// Called before a new read of the store: what finished before it is not listed again.
    fn start_read(&mut self) {
        self.finished.clear();
    }
}

/// The cores this process may use (2 when unknown).
fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Shards when [`crate::RuntimeConfig::workers`] is 0 (automatic). On a local store (sled)
/// one per two cores: its commits take one lock in turn, so more shards only split the batches
/// that share a commit and its log record, and add thread wake-ups (issue 14 phase 7, load
/// bench on 2 cores, alternating runs: 1 shard against 4 answered 20-30% more one-reply and
/// restock events per second, with a third fewer `fdatasync`s per event). On a store
/// over the network twice the cores, 4 to 64: a shard waits for every round trip, so more of
/// them keep the cores busy.
pub(crate) fn automatic_shards(local: bool, cores: usize) -> usize {
    if local {
        (cores / 2).max(1)
    } else {
        cores.saturating_mul(2).clamp(4, 64)
    }
}

/// Why work was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// The queue of a subscriber: a stable hash (FNV-1a, the store's shard hash) of Page and PSID.
fn shard_index(page: &PageId, psid: &Psid, shards: usize) -> usize {
    let key: [&[u8]; 3] = [page.as_str().as_bytes(), &[0], psid.as_str().as_bytes()];
    (botflow_storage::ownership::fnv1a_parts(&key) % shards.max(1) as u64) as usize
}

impl Shards {
    /// Starts `count` shard tasks with queues of `capacity` items each.
    pub(crate) fn start(
        count: usize,
        capacity: usize,
        processor: Arc<Processor>,
        after: AfterWork,
    ) -> (Arc<Self>, Vec<JoinHandle<()>>) {
        let metrics = Arc::clone(&processor.metrics);
        let count = match count {
            0 => automatic_shards(processor.store.calls_are_local(), available_cores()),
            count => count,
        };
        let mut senders = Vec::with_capacity(count);
        let mut receivers = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            senders.push(tx);
            receivers.push(rx);
        }
        let shards = Arc::new(Self {
            senders: RwLock::new(Some(senders)),
            metrics,
            timers: Mutex::new(InFlight::default()),
            events: Mutex::new(InFlight::default()),
            turns: (0..count.max(1))
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        });
        let tasks = receivers
            .into_iter()
            .map(|rx| {
                let processor = Arc::clone(&processor);
                let shards = Arc::downgrade(&shards);
                let after = Arc::clone(&after);
                tokio::task::spawn_blocking(move || run_shard(rx, &processor, &shards, &after))
            })
            .collect();
        (shards, tasks)
    }

    /// Queues work behind the subscriber's earlier work; waits while the shard's queue is full.
    pub(crate) async fn submit(&self, work: Work) -> Result<(), Closed> {
        self.submit_claimed(work, || true).await.map(|_| ())
    }

    /// Queues work if `claim` (run in the shard's turn) accepts it; returns whether it did.
    async fn submit_claimed(
        &self,
        work: Work,
        claim: impl FnOnce() -> bool,
    ) -> Result<bool, Closed> {
        let (index, sender) = {
            let guard = self.senders.read().unwrap_or_else(PoisonError::into_inner);
            let senders = guard.as_ref().ok_or(Closed)?;
            let (page, psid) = work.subscriber();
            let index = shard_index(page, psid, senders.len());
            (index, senders[index].clone())
        };
        let _turn = self.turns[index % self.turns.len()].lock().await;
        if !claim() {
            return Ok(false);
        }
        self.metrics.queue_depth.add(1);
        sender.send(work).await.map(|()| true).map_err(|_| {
            self.metrics.queue_depth.add(-1);
            Closed
        })
    }

    fn timers(&self) -> std::sync::MutexGuard<'_, InFlight<TimerKey>> {
        self.timers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn events(&self) -> std::sync::MutexGuard<'_, InFlight<u64>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a journaled event unless it is already queued, running or just processed
    /// (the webhook and the journal follower may both offer it). Returns whether it was queued.
    pub(crate) async fn submit_event(&self, entry: JournalEntry) -> Result<bool, Closed> {
        let seq = entry.seq;
        match self
            .submit_claimed(Work::Event(entry), || self.events().claim(&seq))
            .await
        {
            Ok(queued) => Ok(queued),
            Err(closed) => {
                self.events().release(&seq);
                Err(closed)
            }
        }
    }

    /// Called before a new read of the journal (see [`InFlight::start_read`]).
    pub(crate) fn start_event_read(&self) {
        self.events().start_read();
    }

    /// Records that a unit of work ended, whatever its outcome.
    fn finished(&self, id: WorkId) {
        match id {
            WorkId::Event(seq) => self.events().finish(seq),
            WorkId::Timer(page, psid, timer_id) => self.timers().finish((page, psid, timer_id)),
            WorkId::Profile => {}
        }
    }

    /// Whether [`Shards::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.senders
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Stops accepting work; shards finish what is queued, then end.
    pub(crate) fn close(&self) {
        self.senders
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// Most work items one shard takes from its queue at once (committed together).
const BATCH: usize = 32;

/// The same on a store over the network (PostgreSQL): one step per transaction. A batch's
/// transaction holds its subscribers' row locks for all its round trips and is run again whole
/// on a serialization failure: in the load bench (one node, 16 connections) batches of 32
/// answered 184 events/s, of 4 541, of 1 574.
const NETWORK_BATCH: usize = 1;

/// A shard's loop, on a thread of its own (a long-lived blocking task): takes what is queued,
/// processes it in order and reports each item, until the queue's senders are gone. Step and
/// commit run right here, with no hand-off to another thread per batch. The shards are held
/// weakly so dropping them (at shutdown, or a runtime dropped without one) ends the loop.
fn run_shard(
    mut rx: mpsc::Receiver<Work>,
    processor: &Arc<Processor>,
    shards: &std::sync::Weak<Shards>,
    after: &AfterWork,
) {
    while let Some(first) = rx.blocking_recv() {
        let Some(shards) = shards.upgrade() else {
            return;
        };
        // Take what is already queued too; the batch is still processed strictly in order.
        let mut batch = vec![first];
        let most = if processor.store.calls_are_local() {
            BATCH
        } else {
            NETWORK_BATCH
        };
        while batch.len() < most {
            match rx.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        shards.metrics.queue_depth.add(-(batch.len() as i64));
        let ids: Vec<WorkId> = batch.iter().map(Work::id).collect();
        let results = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            process_batch(processor, batch)
        })) {
            Ok(results) => results,
            Err(_) => {
                // Panics inside a step are contained per item; this is one outside them (in a
                // commit). The work is gone from memory, not from the store: release it so the
                // journal follower and the timer loop offer it again.
                processor.metrics.events_failed.inc();
                tracing::error!(items = ids.len(), "processing a batch panicked");
                for id in ids {
                    shards.finished(id);
                }
                continue;
            }
        };
        for (work, result) in results {
            shards.finished(work.id());
            match result {
                Ok(processed) => {
                    if processed.duplicate {
                        processor.metrics.events_already_processed.inc();
                    }
                    after(&processed);
                }
                Err(error) => {
                    if let ProcessError::Store(error) = &error
                        && crate::ownership::is_lost(error)
                    {
                        // the shard moved to another node, which does the work
                        tracing::debug!(%error, "work dropped: its shard is not ours");
                    } else if let ProcessError::Store(_) = error {
                        // The event stays unprocessed in the journal; the follower offers it again.
                        processor.metrics.events_failed.inc();
                        tracing::error!(%error, "giving up on work after store errors");
                    } else if let ProcessError::Deferred = error {
                        // Left behind its failed predecessor, in the journal (or the session, for
                        // a timer), to be offered again in order.
                        tracing::warn!(work = ?work.id(), "work left for later behind a failed earlier item of its subscriber");
                    }
                }
            }
        }
    }
}

/// Processes a shard's batch in order on a blocking thread; work that met a store error is
/// retried alone a few times.
fn process_batch(
    processor: &Processor,
    batch: Vec<Work>,
) -> Vec<(Work, Result<Processed, ProcessError>)> {
    let results = processor.process_batch(&batch);
    // Subscribers whose work failed for good in this batch: their later work stays deferred
    // (events stay in the journal, where the follower offers them again in order).
    let mut failed: Vec<(PageId, Psid)> = Vec::new();
    batch
        .into_iter()
        .zip(results)
        .map(|(work, result)| {
            let (page, psid) = work.subscriber();
            let mut result = result;
            if matches!(result, Err(ProcessError::Deferred))
                && !failed.iter().any(|(p, s)| p == page && s == psid)
            {
                // The earlier work it waited for is done now: run it in its turn.
                result = processor.process(&work);
            }
            let mut attempt = 1;
            while let Err(ProcessError::Store(error)) = &result {
                if attempt >= STORE_ATTEMPTS || crate::ownership::is_lost(error) {
                    break;
                }
                if let StoreError::TokenGone { .. } = error {
                    // A token went between the step's read and its commit: step again at once,
                    // on the counts as they are now (the branch and the commit must agree).
                    tracing::debug!(%error, "token gone before the commit; stepping again");
                } else {
                    tracing::warn!(%error, attempt, "store error while processing; retrying");
                    std::thread::sleep(Duration::from_millis(50 << attempt));
                }
                attempt += 1;
                result = processor.process(&work);
            }
            if result.is_err() {
                failed.push((page.clone(), psid.clone()));
            }
            (work, result)
        })
        .collect()
}

/// Polls the store for due timers and submits them like events, until `stop` is notified.
pub(crate) async fn run_timers(
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
        shards.timers().start_read();
        let now = processor.clock.now_ms();
        let store = Arc::clone(&processor.store);
        let due = tokio::task::spawn_blocking(move || store.due_timers(now, 1_000)).await;
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read due timers");
                continue;
            }
            Err(_) => continue,
        };
        for due in due {
            let key = (due.page.clone(), due.psid.clone(), due.timer.id);
            let work = Work::Timer {
                page: due.page,
                psid: due.psid,
                timer_id: due.timer.id,
            };
            if shards
                .submit_claimed(work, || shards.timers().claim(&key))
                .await
                .is_err()
            {
                shards.timers().release(&key);
                return;
            }
        }
    }
}

/// Offers the runtime every journaled event that is neither processed nor queued, so an event
/// journaled but never handed over (a failed hand-off, a contained failure) runs without a
/// restart. An event is offered when two reads `poll` apart both list it unqueued, so the
/// webhook's own hand-off, which follows its journal write at once, is never raced.
pub(crate) async fn follow_journal(
    processor: Arc<Processor>,
    shards: Arc<Shards>,
    poll: Duration,
    stop: Arc<Notify>,
) {
    let mut unqueued_last_read: HashSet<u64> = HashSet::new();
    loop {
        tokio::select! {
            () = stop.notified() => return,
            () = tokio::time::sleep(poll) => {}
        }
        shards.events().start_read();
        let store = Arc::clone(&processor.store);
        let pending = match tokio::task::spawn_blocking(move || store.unprocessed_events()).await {
            Ok(Ok(pending)) => pending,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read the journal");
                continue;
            }
            Err(_) => continue,
        };
        let mut unqueued = HashSet::new();
        for entry in pending {
            let seq = entry.seq;
            if shards.events().is_in_flight(&seq) {
                continue;
            }
            if !unqueued_last_read.contains(&seq) {
                unqueued.insert(seq);
                continue;
            }
            tracing::warn!(seq, page = %entry.page, psid = %entry.psid, "journaled event was not handed to the runtime; processing it now");
            processor.metrics.events_recovered.inc();
            if shards.submit_event(entry).await.is_err() {
                return;
            }
        }
        unqueued_last_read = unqueued;
    }
}

#[cfg(test)]
mod tests {
    use super::automatic_shards;

    #[test]
    fn a_local_store_gets_one_shard_per_two_cores_and_a_network_store_twice_the_cores() {
        assert_eq!(automatic_shards(true, 1), 1);
        assert_eq!(automatic_shards(true, 2), 1);
        assert_eq!(automatic_shards(true, 8), 4);
        assert_eq!(automatic_shards(false, 1), 4);
        assert_eq!(automatic_shards(false, 8), 16);
        assert_eq!(automatic_shards(false, 64), 64);
    }
}
