//! The retention sweeper: a background task that removes, in bounded batches, the records the
//! [`RetentionPolicy`] no longer keeps (dedup records of processed events, finished messages,
//! used-up tokens), and counts what it removed for the metrics page.
//!
//! Each round calls [`Store::sweep_retention`] on a blocking thread with at most
//! [`RetentionSettings::batch`] records, again and again while the store reports more due
//! (yielding between calls, so a large backlog never holds the store for long), then waits
//! [`RetentionSettings::interval`]. The first round runs at start.

use crate::clock::Clock;
use crate::metrics::Counter;
use crate::runtime::RuntimeError;
use botflow_storage::{RetentionPolicy, Store, SweepReport};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How the sweeper runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// How long records are kept (defaults: dedup 3 days, history 30 days).
    pub policy: RetentionPolicy,
    /// Time between sweep rounds. Default 1 minute.
    pub interval: Duration,
    /// Records one store call may remove (one round makes as many calls as needed). Default 1,000.
    pub batch: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            policy: RetentionPolicy::default(),
            interval: Duration::from_secs(60),
            batch: 1_000,
        }
    }
}

/// What the sweeper removed since it started, by kind (counters for `/metrics`).
#[derive(Debug, Default)]
pub struct RetentionMetrics {
    /// Dedup records of processed events removed.
    pub dedup_records_removed: Counter,
    /// Finished outbound messages removed.
    pub messages_removed: Counter,
    /// Used-up OTN tokens removed.
    pub tokens_removed: Counter,
    /// Ended topic notifications removed.
    pub notifications_removed: Counter,
    /// Sweep rounds completed.
    pub rounds: Counter,
    /// Store calls that failed (logged; the next round tries again).
    pub errors: Counter,
}

impl RetentionMetrics {
    fn record(&self, report: &SweepReport) {
        self.dedup_records_removed.add(report.dedup_records);
        self.messages_removed.add(report.messages);
        self.tokens_removed.add(report.tokens);
        self.notifications_removed.add(report.notifications);
    }
}

/// The running sweeper; [`RetentionSweeper::stop`] ends it.
#[derive(Debug)]
pub struct RetentionSweeper {
    stopping: Arc<AtomicBool>,
    wake: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<RetentionMetrics>,
}

impl RetentionSweeper {
    /// Starts sweeping `store` on the current tokio runtime, judging age by `clock` and counting
    /// into `metrics`.
    pub fn start(
        store: Arc<dyn Store>,
        settings: RetentionSettings,
        clock: Arc<dyn Clock>,
        metrics: Arc<RetentionMetrics>,
    ) -> Self {
        let stopping = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            store,
            settings,
            clock,
            Arc::clone(&metrics),
            Arc::clone(&stopping),
            Arc::clone(&wake),
        ));
        Self {
            stopping,
            wake,
            task: Mutex::new(Some(task)),
            metrics,
        }
    }

    /// What the sweeper removed so far.
    pub fn metrics(&self) -> &Arc<RetentionMetrics> {
        &self.metrics
    }

    /// Stops the sweeper after the store call in progress (if any) and waits for it.
    pub async fn stop(&self) -> Result<(), RuntimeError> {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match task {
            Some(task) => task
                .await
                .map_err(|err| RuntimeError::Task(format!("retention sweeper: {err}"))),
            None => Ok(()),
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    settings: RetentionSettings,
    clock: Arc<dyn Clock>,
    metrics: Arc<RetentionMetrics>,
    stopping: Arc<AtomicBool>,
    wake: Arc<Notify>,
) {
    loop {
        while !stopping.load(Ordering::SeqCst) {
            let now = clock.now_ms();
            let call_store = Arc::clone(&store);
            let swept = tokio::task::spawn_blocking(move || {
                call_store.sweep_retention(now, &settings.policy, settings.batch)
            })
            .await;
            match swept {
                Ok(Ok(report)) => {
                    metrics.record(&report);
                    if report.removed() > 0 {
                        tracing::debug!(?report, "retention sweep");
                    }
                    if !report.more {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                Ok(Err(error)) => {
                    metrics.errors.inc();
                    tracing::error!(%error, "retention sweep failed");
                    break;
                }
                Err(error) => {
                    metrics.errors.inc();
                    tracing::error!(%error, "retention sweep task failed");
                    break;
                }
            }
        }
        metrics.rounds.inc();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(settings.interval) => {}
        }
    }
}
