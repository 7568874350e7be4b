//! The scheduler: per-subscriber ordering, concurrency across subscribers, bounded queues.
//!
//! Work is routed to one of N shards by a hash of (Page, PSID). A shard is one tokio task with a
//! bounded FIFO queue that processes one item at a time, so the events of a subscriber are
//! processed strictly in arrival order with at most one in flight, while different shards run
//! concurrently. A full queue makes [`Shards::submit`] wait (backpressure). Timers are found by
//! polling the store's due-timer index and go through the same queues as events.

use crate::metrics::RuntimeMetrics;
use crate::process::{Processed, Processor, Work};
use botflow_storage::{PageId, Psid};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
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
    /// Timers submitted and not yet processed, and those processed since the last due-timer read
    /// (a read made before a timer's commit may still list it).
    timers: Mutex<TimerTracking>,
}

type TimerKey = (PageId, Psid, u64);

#[derive(Debug, Default)]
struct TimerTracking {
    in_flight: HashSet<TimerKey>,
    finished: HashSet<TimerKey>,
}

/// Why work was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

fn shard_index(page: &PageId, psid: &Psid, shards: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    page.hash(&mut hasher);
    psid.hash(&mut hasher);
    (hasher.finish() % shards.max(1) as u64) as usize
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
            timers: Mutex::new(TimerTracking::default()),
        });
        let tasks = receivers
            .into_iter()
            .map(|rx| {
                tokio::spawn(run_shard(
                    rx,
                    Arc::clone(&processor),
                    Arc::clone(&shards),
                    Arc::clone(&after),
                ))
            })
            .collect();
        (shards, tasks)
    }

    /// Queues work behind the subscriber's earlier work; waits while the shard's queue is full.
    pub(crate) async fn submit(&self, work: Work) -> Result<(), Closed> {
        let sender = {
            let guard = self.senders.read().unwrap_or_else(PoisonError::into_inner);
            let senders = guard.as_ref().ok_or(Closed)?;
            let (page, psid) = work.subscriber();
            senders[shard_index(page, psid, senders.len())].clone()
        };
        self.metrics.queue_depth.add(1);
        sender.send(work).await.map_err(|_| {
            self.metrics.queue_depth.add(-1);
            Closed
        })
    }

    fn timers(&self) -> std::sync::MutexGuard<'_, TimerTracking> {
        self.timers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops accepting work; shards finish what is queued, then end.
    pub(crate) fn close(&self) {
        self.senders
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// Most work items one shard hands to a blocking thread at once (fewer thread hand-offs).
const BATCH: usize = 32;

async fn run_shard(
    mut rx: mpsc::Receiver<Work>,
    processor: Arc<Processor>,
    shards: Arc<Shards>,
    after: AfterWork,
) {
    while let Some(first) = rx.recv().await {
        // Take what is already queued too; the batch is still processed strictly in order.
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        shards.metrics.queue_depth.add(-(batch.len() as i64));
        let p = Arc::clone(&processor);
        let results = match tokio::task::spawn_blocking(move || process_batch(&p, batch)).await {
            Ok(results) => results,
            Err(join) => {
                // A panic in the step or the store: the work is gone from memory, not from the
                // journal (events are replayed at the next start; timers fire again).
                processor.metrics.events_failed.inc();
                tracing::error!(error = %join, "processing task failed");
                continue;
            }
        };
        for (work, result) in results {
            if let Work::Timer {
                page,
                psid,
                timer_id,
            } = &work
            {
                let mut timers = shards.timers();
                let key = (page.clone(), psid.clone(), *timer_id);
                timers.in_flight.remove(&key);
                timers.finished.insert(key);
            }
            match result {
                Ok(processed) => {
                    if processed.duplicate {
                        processor.metrics.events_already_processed.inc();
                    }
                    after(&processed);
                    if let Work::Notify {
                        reply: Some(reply), ..
                    } = work
                    {
                        let _ = reply.send(processed.notify);
                    }
                }
                Err(error) => {
                    // The event stays unprocessed in the journal and is replayed at the next start.
                    processor.metrics.events_failed.inc();
                    tracing::error!(%error, "giving up on work after store errors");
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
) -> Vec<(Work, Result<Processed, String>)> {
    let results = processor.process_batch(&batch);
    batch
        .into_iter()
        .zip(results)
        .map(|(work, result)| {
            let mut result = result;
            let mut attempt = 1;
            while let Err(error) = &result {
                if attempt >= STORE_ATTEMPTS {
                    break;
                }
                tracing::warn!(%error, attempt, "store error while processing; retrying");
                std::thread::sleep(Duration::from_millis(50 << attempt));
                attempt += 1;
                result = processor.process(&work);
            }
            (work, result.map_err(|e| e.to_string()))
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
        shards.timers().finished.clear();
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
            {
                let mut timers = shards.timers();
                if timers.finished.contains(&key) || !timers.in_flight.insert(key) {
                    continue;
                }
            }
            let work = Work::Timer {
                page: due.page,
                psid: due.psid,
                timer_id: due.timer.id,
            };
            if shards.submit(work).await.is_err() {
                return;
            }
        }
    }
}
