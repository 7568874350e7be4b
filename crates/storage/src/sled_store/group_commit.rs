//! Group commit: concurrent callers that need their writes on disk share one sled flush.
//!
//! A caller takes a ticket after its write; the first caller to find no flush running becomes
//! the leader and flushes everything written up to the tickets handed out so far; callers that
//! arrive during that flush wait and are covered by the next one. No background thread is needed,
//! and under load one flush covers many writes.

use crate::error::StoreError;
use crate::store::StoreResult;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Debug, Default)]
struct State {
    /// Next ticket to hand out.
    next_ticket: u64,
    /// Every ticket below this is on disk.
    durable_below: u64,
    /// Whether a leader is flushing now.
    flushing: bool,
    /// Tickets below this (and at or above `durable_below`) were covered by a failed flush.
    failed_below: u64,
    /// The error of the last failed flush.
    last_error: Option<String>,
}

/// Coordinates flushes so that concurrent writers share them.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    flushed: Condvar,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns once every write made before this call is on disk, flushing with `flush` (or
    /// waiting for a concurrent caller's flush that covers it).
    pub(crate) fn wait_durable(
        &self,
        flush: impl Fn() -> Result<usize, sled::Error>,
    ) -> StoreResult<()> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        loop {
            if ticket < state.durable_below {
                return Ok(());
            }
            if ticket < state.failed_below {
                let detail = state.last_error.clone().unwrap_or_default();
                return Err(StoreError::Database(format!("flush failed: {detail}")));
            }
            if !state.flushing {
                state.flushing = true;
                let covers = state.next_ticket;
                drop(state);
                let result = flush();
                state = self.lock();
                state.flushing = false;
                match result {
                    Ok(_) => state.durable_below = state.durable_below.max(covers),
                    Err(err) => {
                        state.failed_below = state.failed_below.max(covers);
                        state.last_error = Some(err.to_string());
                    }
                }
                self.flushed.notify_all();
                continue;
            }
            state = self
                .flushed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_write_is_covered_and_concurrent_waiters_share_flushes() {
        use std::sync::atomic::AtomicU64;
        let gc = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        // `written` counts writes; a flush makes durable every write counted when it starts.
        let written = Arc::new(AtomicU64::new(0));
        let durable = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (gc, flushes, written, durable) = (
                    gc.clone(),
                    flushes.clone(),
                    written.clone(),
                    durable.clone(),
                );
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        gc.wait_durable(|| {
                            flushes.fetch_add(1, Ordering::SeqCst);
                            let upto = written.load(Ordering::SeqCst);
                            // Simulated disk time, so that writers pile up behind a flush.
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            durable.fetch_max(upto, Ordering::SeqCst);
                            Ok(0)
                        })
                        .unwrap();
                        assert!(durable.load(Ordering::SeqCst) >= mine);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!(n < 400 / 2, "400 waits took {n} flushes");
    }

    #[test]
    fn a_failed_flush_is_reported_to_the_writer() {
        let gc = GroupCommit::default();
        let err = gc
            .wait_durable(|| Err(sled::Error::Unsupported("disk gone".into())))
            .unwrap_err();
        assert!(err.to_string().contains("disk gone"), "{err}");
        gc.wait_durable(|| Ok(0)).unwrap();
    }
}
