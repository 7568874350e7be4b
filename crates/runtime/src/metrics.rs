//! Counters and gauges the runtime keeps for the server's metrics page: plain atomics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// A counter that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (queue depths, sends in flight).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds `n` (negative to subtract).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the value.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything the runtime counts; the server renders it as Prometheus metrics.
#[derive(Debug, Default)]
pub struct RuntimeMetrics {
    /// Journaled events processed (committed), including ones flows ignore.
    pub events_processed: Counter,
    /// Events found already processed when committing (replayed after a crash): no effect.
    pub events_already_processed: Counter,
    /// Journaled events that could not be processed (unreadable payload, store error).
    pub events_failed: Counter,
    /// Journaled events the journal follower found not handed to the runtime and queued.
    pub events_recovered: Counter,
    /// Timers fired through the scheduler.
    pub timers_fired: Counter,
    /// Runs stopped by a step error (budget exceeded, retired version...).
    pub step_errors: Counter,
    /// Messages the Send API accepted.
    pub messages_sent: Counter,
    /// Messages that failed permanently.
    pub messages_failed: Counter,
    /// Normal messages refused before sending (outside the 24-hour window).
    pub messages_refused: Counter,
    /// Token sends recorded as delivered without confirmation.
    pub messages_unconfirmed: Counter,
    /// Send attempts rescheduled after a retryable error.
    pub messages_retried: Counter,
    /// Tokens stored from opt-ins.
    pub tokens_stored: Counter,
    /// Subscriber profiles fetched from the User Profile API.
    pub profiles_fetched: Counter,
    /// User Profile fetches that failed (retried on a later event or timer).
    pub profile_fetches_failed: Counter,
    /// Events and timers waiting in the scheduler's queues.
    pub queue_depth: Gauge,
    /// Send API requests in flight.
    pub sends_in_flight: Gauge,
    /// Age in milliseconds of the oldest unprocessed journal entry of the owned shards at the
    /// last journal poll (several nodes on one database; 0 otherwise).
    pub journal_poll_lag_ms: Gauge,
}

/// Called with the time from a webhook's arrival to the Send API accepting a message it caused.
pub type LatencyHook = std::sync::Arc<dyn Fn(Duration) + Send + Sync>;
