//! Group commit: callers encode their records into one shared buffer under a short lock and get
//! their LSN at once; one appender thread takes the whole buffer, writes it to the segment with
//! one write, `fdatasync`s it and publishes the durable-LSN watermark. Records that arrive during
//! a sync form the next group, so the group grows with the load and nothing waits on a timer.
//! A record that may wait (one nobody waits for yet) starts no sync of its own: it joins the next
//! group that an eager record or a waiter starts, or is synced once its wait is over (the
//! buffer's deadline is the earliest of its records').
//! A failed write or sync poisons the log for good (never retried: after a failed `fdatasync`
//! the kernel may have dropped the dirty pages and a retry could falsely succeed).

use super::file::{LogDir, LogFile};
use super::frame::{self, MAX_PAYLOAD};
use super::recovery::{Segment, segment_name};
use super::{LogError, Lsn};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Records appended but not yet taken by the appender.
#[derive(Default)]
struct Pending {
    buffer: Vec<u8>,
    /// The LSN of the first record in `buffer`.
    first: Lsn,
    next_lsn: Lsn,
    /// Whether a record in `buffer` is waited for (or eager): the appender syncs at once.
    wanted: bool,
    /// When the appender must start a sync of `buffer` at the latest: the earliest deadline of
    /// its records that may wait (`None` while the buffer holds none of those).
    due: Option<Instant>,
    /// Set by `close`: the appender drains the buffer and stops.
    closed: bool,
    /// Set when the log is poisoned: appends fail.
    poisoned: bool,
}

/// The durable-LSN watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watermark {
    /// Every record up to this LSN is durable (0: none).
    pub(crate) durable: Lsn,
    pub(crate) poisoned: bool,
}

/// Counters of the log's work since it was opened.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) appends: AtomicU64,
    pub(crate) groups: AtomicU64,
    pub(crate) bytes: AtomicU64,
    /// Nanoseconds spent in `fdatasync`.
    pub(crate) sync_nanos: AtomicU64,
}

/// State shared by the callers and the appender thread.
pub(crate) struct Shared {
    pending: Mutex<Pending>,
    work: Condvar,
    watermark: Mutex<(Watermark, Option<String>)>,
    durable_changed: Condvar,
    pub(crate) watch: tokio::sync::watch::Sender<Watermark>,
    pub(crate) segments: Mutex<Vec<Segment>>,
    pub(crate) counters: Counters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(next_lsn: Lsn, segments: Vec<Segment>) -> Self {
        let watermark = Watermark {
            durable: next_lsn - 1,
            poisoned: false,
        };
        Self {
            pending: Mutex::new(Pending {
                buffer: Vec::new(),
                first: next_lsn,
                next_lsn,
                wanted: false,
                due: None,
                closed: false,
                poisoned: false,
            }),
            work: Condvar::new(),
            watermark: Mutex::new((watermark, None)),
            durable_changed: Condvar::new(),
            watch: tokio::sync::watch::Sender::new(watermark),
            segments: Mutex::new(segments),
            counters: Counters::default(),
        }
    }

    /// Frames `payloads` into the buffer with consecutive LSNs; returns the last one. With a
    /// zero `may_wait` the append starts a sync at once; else its records wait at most that
    /// long for a sync something else starts (a waiter, an eager append, an earlier deadline).
    pub(crate) fn append<P: AsRef<[u8]>>(
        &self,
        payloads: &[P],
        may_wait: Duration,
    ) -> Result<Lsn, LogError> {
        if let Some(large) = payloads.iter().find(|p| p.as_ref().len() > MAX_PAYLOAD) {
            return Err(LogError::TooLarge {
                len: large.as_ref().len(),
            });
        }
        let eager = may_wait.is_zero();
        let due = (!eager).then(|| Instant::now() + may_wait);
        let mut pending = lock(&self.pending);
        if pending.poisoned {
            return Err(self.poison_error());
        }
        if pending.closed {
            return Err(LogError::Closed);
        }
        if pending.buffer.is_empty() {
            pending.first = pending.next_lsn;
        }
        // A waiting record wakes the appender when it moves the deadline earlier (an idle
        // appender has none), to start that clock.
        let earlier = match (due, pending.due) {
            (Some(due), Some(current)) => due < current,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let wake = !pending.wanted && (eager || earlier);
        if earlier {
            pending.due = due;
        }
        pending.wanted |= eager;
        for payload in payloads {
            let lsn = pending.next_lsn;
            frame::encode(&mut pending.buffer, lsn, payload.as_ref());
            pending.next_lsn += 1;
        }
        let last = pending.next_lsn - 1;
        drop(pending);
        self.counters
            .appends
            .fetch_add(payloads.len() as u64, Ordering::Relaxed);
        if wake {
            self.work.notify_one();
        }
        Ok(last)
    }

    /// Asks for a sync through `lsn` now (a waiter is about to wait for it): lazy records up to
    /// `lsn` still in the buffer stop waiting for their age.
    pub(crate) fn want(&self, lsn: Lsn) {
        let mut pending = lock(&self.pending);
        if pending.wanted || pending.buffer.is_empty() || lsn < pending.first {
            // Already asked for, or in the group being synced, or synced.
            return;
        }
        pending.wanted = true;
        drop(pending);
        self.work.notify_one();
    }

    /// The LSN of the last record appended (durable or not); 0 when none.
    pub(crate) fn last_appended(&self) -> Lsn {
        lock(&self.pending).next_lsn - 1
    }

    pub(crate) fn watermark(&self) -> Watermark {
        lock(&self.watermark).0
    }

    pub(crate) fn poison_error(&self) -> LogError {
        let cause = lock(&self.watermark).1.clone().unwrap_or_default();
        LogError::Poisoned { cause }
    }

    /// Blocks until `lsn` is durable or the log is poisoned.
    pub(crate) fn wait_durable(&self, lsn: Lsn) -> Result<(), LogError> {
        self.want(lsn);
        let mut guard = lock(&self.watermark);
        loop {
            if guard.0.durable >= lsn {
                return Ok(());
            }
            if guard.0.poisoned {
                return Err(LogError::Poisoned {
                    cause: guard.1.clone().unwrap_or_default(),
                });
            }
            guard = self
                .durable_changed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn publish(&self, watermark: Watermark, cause: Option<String>) {
        let mut guard = lock(&self.watermark);
        guard.0 = watermark;
        if cause.is_some() {
            guard.1 = cause;
        }
        drop(guard);
        self.durable_changed.notify_all();
        self.watch.send_replace(watermark);
    }

    fn poison(&self, cause: String) {
        tracing::error!(%cause, "the hot log is poisoned: restart the process to recover");
        lock(&self.pending).poisoned = true;
        let durable = self.watermark().durable;
        self.publish(
            Watermark {
                durable,
                poisoned: true,
            },
            Some(cause),
        );
    }

    pub(crate) fn close(&self) {
        lock(&self.pending).closed = true;
        self.work.notify_one();
    }
}

/// The appender thread's own state: the segment it writes.
pub(crate) struct Appender {
    pub(crate) shared: Arc<Shared>,
    pub(crate) dir: Arc<dyn LogDir>,
    pub(crate) file: Box<dyn LogFile>,
    /// Where the segment's records end (the next group goes there).
    pub(crate) file_len: u64,
    /// Where the zeros written ahead of the records end (at least `file_len`).
    pub(crate) zeroed: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) preallocate_bytes: u64,
    /// A buffer of zeros to preallocate with, made on first use.
    pub(crate) zeros: Vec<u8>,
}

impl Appender {
    /// Runs until the log is closed (after writing what is pending) or poisoned.
    pub(crate) fn run(mut self) {
        let mut spare = Vec::new();
        loop {
            let (mut group, first, last) = {
                let mut pending = lock(&self.shared.pending);
                loop {
                    if pending.closed || (pending.wanted && !pending.buffer.is_empty()) {
                        break;
                    }
                    match pending.due {
                        Some(due) => {
                            let now = Instant::now();
                            if now >= due {
                                break;
                            }
                            pending = self
                                .shared
                                .work
                                .wait_timeout(pending, due - now)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        None => {
                            pending = self
                                .shared
                                .work
                                .wait(pending)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                }
                if pending.buffer.is_empty() {
                    return;
                }
                pending.wanted = false;
                pending.due = None;
                let group = std::mem::replace(&mut pending.buffer, std::mem::take(&mut spare));
                (group, pending.first, pending.next_lsn - 1)
            };
            if let Err(cause) = self.write_group(&group, first) {
                self.shared.poison(cause);
                return;
            }
            self.shared.counters.groups.fetch_add(1, Ordering::Relaxed);
            self.shared
                .counters
                .bytes
                .fetch_add(group.len() as u64, Ordering::Relaxed);
            self.shared.publish(
                Watermark {
                    durable: last,
                    poisoned: false,
                },
                None,
            );
            group.clear();
            spare = group;
        }
    }

    /// Writes one group (starting at LSN `first`) and syncs it, rolling to a new segment first
    /// when the current one is full.
    fn write_group(&mut self, group: &[u8], first: Lsn) -> Result<(), String> {
        if self.file_len > 0 && self.file_len + group.len() as u64 > self.segment_bytes {
            // Every earlier group of the current segment is already synced. Its preallocated
            // zeros are cut off first: only the last segment may end in anything but records.
            if self.zeroed > self.file_len {
                self.file
                    .truncate(self.file_len)
                    .map_err(|e| format!("cut the full segment to its records: {e}"))?;
            }
            let name = segment_name(first);
            self.file = self
                .dir
                .create(&name)
                .map_err(|e| format!("create segment {name}: {e}"))?;
            self.file_len = 0;
            self.zeroed = 0;
            lock(&self.shared.segments).push(Segment { first, name });
        }
        self.file
            .write_at(self.file_len, group)
            .map_err(|e| format!("write {} bytes at LSN {first}: {e}", group.len()))?;
        self.file_len += group.len() as u64;
        self.preallocate()
            .map_err(|e| format!("preallocate the segment after LSN {first}: {e}"))?;
        let started = Instant::now();
        let synced = self.file.sync_data();
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.shared
            .counters
            .sync_nanos
            .fetch_add(nanos, Ordering::Relaxed);
        synced.map_err(|e| format!("fdatasync after LSN {first}: {e}"))
    }

    /// Writes zeros ahead of the records when less than half of
    /// [`preallocate_bytes`](super::LogOptions::preallocate_bytes) is left (never past the
    /// segment's size); the group's sync makes them durable with it.
    fn preallocate(&mut self) -> std::io::Result<()> {
        let want = self.preallocate_bytes;
        if want == 0 || self.file_len + want / 2 <= self.zeroed {
            return Ok(());
        }
        let target = (self.file_len + want).min(self.segment_bytes);
        let mut at = self.file_len.max(self.zeroed);
        if target <= at {
            return Ok(());
        }
        if self.zeros.is_empty() {
            self.zeros = vec![0; usize::try_from(want).unwrap_or(usize::MAX).min(1 << 20)];
        }
        while at < target {
            let len = (target - at).min(self.zeros.len() as u64);
            self.file.write_at(at, &self.zeros[..len as usize])?;
            at += len;
        }
        self.zeroed = target;
        Ok(())
    }
}
