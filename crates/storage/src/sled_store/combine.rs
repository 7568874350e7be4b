//! Combining: the step-commit batches of concurrent callers share one transaction.
//!
//! Every sled transaction takes the store-wide lock exclusively, so many small ones (one per
//! scheduler shard) queue behind each other and stall every plain read and write. A caller hands
//! its batch in; the first caller to find no combined commit running becomes the leader and
//! commits every batch queued so far in one transaction; callers that arrive meanwhile wait and
//! are covered by the next one. Each caller returns only once its own batch is committed, so a
//! caller that commits a subscriber's step before preparing its next one keeps that order.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// What became of one caller's batch.
#[derive(Debug)]
pub(crate) enum Combined<C, R> {
    /// Committed with the others: one result per item, in order.
    Done(Vec<R>),
    /// The combined commit failed as a whole: the items come back to be committed alone.
    Alone(Vec<C>),
    /// The leader panicked while committing: the items are gone (the caller reports an error).
    Lost,
}

#[derive(Debug)]
struct State<C, R> {
    next_ticket: u64,
    queued: Vec<(u64, Vec<C>)>,
    running: bool,
    finished: HashMap<u64, Combined<C, R>>,
}

/// Gathers concurrent callers' batches into one commit.
#[derive(Debug)]
pub(crate) struct Combiner<C, R> {
    state: Mutex<State<C, R>>,
    done: Condvar,
}

impl<C, R> Default for Combiner<C, R> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                next_ticket: 0,
                queued: Vec::new(),
                running: false,
                finished: HashMap::new(),
            }),
            done: Condvar::new(),
        }
    }
}

/// Marks the leader's tickets lost if it unwinds while committing, so no caller waits forever.
struct LeaderGuard<'a, C, R> {
    combiner: &'a Combiner<C, R>,
    tickets: Vec<u64>,
    armed: bool,
}

impl<C, R> Drop for LeaderGuard<'_, C, R> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.combiner.lock();
        state.running = false;
        for ticket in &self.tickets {
            state.finished.insert(*ticket, Combined::Lost);
        }
        self.combiner.done.notify_all();
    }
}

impl<C, R> Combiner<C, R> {
    fn lock(&self) -> MutexGuard<'_, State<C, R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Commits `items` together with the batches of concurrent callers. `commit` gets every
    /// queued item in queue order and returns one result per item, or `None` if the combined
    /// commit failed as a whole (then each caller gets its items back).
    pub(crate) fn run(
        &self,
        items: Vec<C>,
        commit: impl Fn(&[C]) -> Option<Vec<R>>,
    ) -> Combined<C, R> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queued.push((ticket, items));
        loop {
            if let Some(outcome) = state.finished.remove(&ticket) {
                return outcome;
            }
            if !state.running {
                state.running = true;
                let groups = std::mem::take(&mut state.queued);
                drop(state);
                let mut guard = LeaderGuard {
                    combiner: self,
                    tickets: groups.iter().map(|(t, _)| *t).collect(),
                    armed: true,
                };
                let finished = Self::commit_groups(groups, &commit);
                guard.armed = false;
                state = self.lock();
                state.running = false;
                state.finished.extend(finished);
                self.done.notify_all();
                continue;
            }
            state = self
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Commits the queued groups as one and splits the results back per caller.
    fn commit_groups(
        groups: Vec<(u64, Vec<C>)>,
        commit: &impl Fn(&[C]) -> Option<Vec<R>>,
    ) -> Vec<(u64, Combined<C, R>)> {
        let sizes: Vec<(u64, usize)> = groups.iter().map(|(t, g)| (*t, g.len())).collect();
        let all: Vec<C> = groups.into_iter().flat_map(|(_, g)| g).collect();
        match commit(&all) {
            Some(results) if results.len() == all.len() => {
                let mut results = results.into_iter();
                sizes
                    .into_iter()
                    .map(|(t, n)| (t, Combined::Done(results.by_ref().take(n).collect())))
                    .collect()
            }
            _ => {
                let mut items = all.into_iter();
                sizes
                    .into_iter()
                    .map(|(t, n)| (t, Combined::Alone(items.by_ref().take(n).collect())))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn each_caller_gets_its_own_results_and_concurrent_batches_share_commits() {
        let combiner: Arc<Combiner<u64, u64>> = Arc::new(Combiner::default());
        let commits = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8u64)
            .map(|thread| {
                let (combiner, commits) = (combiner.clone(), commits.clone());
                std::thread::spawn(move || {
                    for round in 0..50u64 {
                        let items: Vec<u64> = (0..3)
                            .map(|i| thread * 1_000_000 + round * 10 + i)
                            .collect();
                        let outcome = combiner.run(items.clone(), |all| {
                            commits.fetch_add(1, Ordering::SeqCst);
                            // Simulated commit time, so that callers pile up behind a commit.
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            Some(all.iter().map(|x| x * 2).collect())
                        });
                        match outcome {
                            Combined::Done(results) => {
                                let expected: Vec<u64> = items.iter().map(|x| x * 2).collect();
                                assert_eq!(results, expected);
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = commits.load(Ordering::SeqCst);
        assert!(n < 400, "400 batches took {n} commits");
    }

    #[test]
    fn a_failed_combined_commit_gives_each_caller_its_items_back() {
        let combiner: Combiner<&str, ()> = Combiner::default();
        match combiner.run(vec!["a", "b"], |_| None) {
            Combined::Alone(items) => assert_eq!(items, vec!["a", "b"]),
            other => panic!("unexpected {other:?}"),
        }
        match combiner.run(vec!["c"], |all| Some(vec![(); all.len()])) {
            Combined::Done(results) => assert_eq!(results.len(), 1),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_leader_that_panics_leaves_its_callers_an_answer() {
        let combiner: Arc<Combiner<u8, u8>> = Arc::new(Combiner::default());
        let c = combiner.clone();
        let panicked = std::thread::spawn(move || c.run(vec![1], |_| panic!("boom"))).join();
        assert!(panicked.is_err());
        // The next caller is not blocked behind a leader that never finished.
        match combiner.run(vec![2], |all| Some(all.to_vec())) {
            Combined::Done(results) => assert_eq!(results, vec![2]),
            other => panic!("unexpected {other:?}"),
        }
    }
}
