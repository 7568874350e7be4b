//! Per-subscriber ordering of concurrent deliveries: a delivery holds its subscribers' locks from
//! journaling until its events are handed to the runtime, so for each subscriber the runtime
//! receives events in journal order (the order a restart replays them in), while deliveries for
//! different subscribers journal concurrently and share flushes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A subscriber: (Page id, PSID).
pub(crate) type SubscriberKey = (String, String);

type Slots = Arc<Mutex<HashMap<SubscriberKey, Arc<AsyncMutex<()>>>>>;

/// One async lock per subscriber with a delivery in progress; entries are removed when unused.
#[derive(Debug, Default)]
pub(crate) struct SubscriberLocks {
    slots: Slots,
}

/// The locks of one delivery's subscribers; dropping it releases them.
#[derive(Debug)]
pub(crate) struct DeliveryGuard {
    guards: Vec<(SubscriberKey, OwnedMutexGuard<()>)>,
    slots: Slots,
}

impl SubscriberLocks {
    /// Waits for every subscriber's lock, taken in key order so overlapping deliveries cannot
    /// deadlock.
    pub(crate) async fn lock(&self, subscribers: BTreeSet<SubscriberKey>) -> DeliveryGuard {
        let mut guards = Vec::with_capacity(subscribers.len());
        for key in subscribers {
            let slot = {
                let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
                Arc::clone(slots.entry(key.clone()).or_default())
            };
            guards.push((key, slot.lock_owned().await));
        }
        DeliveryGuard {
            guards,
            slots: Arc::clone(&self.slots),
        }
    }

    /// How many subscribers have a lock entry (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for DeliveryGuard {
    fn drop(&mut self) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, guard) in self.guards.drain(..) {
            drop(guard);
            // Only the map holds the lock now (clones are made under this map lock): remove it.
            if slots
                .get(&key)
                .is_some_and(|slot| Arc::strong_count(slot) == 1)
            {
                slots.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn keys(psids: &[&str]) -> BTreeSet<SubscriberKey> {
        psids
            .iter()
            .map(|psid| ("page".to_owned(), (*psid).to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn a_second_delivery_for_the_same_subscriber_waits_for_the_first() {
        let locks = Arc::new(SubscriberLocks::default());
        let first = locks.lock(keys(&["a", "b"])).await;
        let waiting = {
            let locks = Arc::clone(&locks);
            tokio::spawn(async move { locks.lock(keys(&["b", "c"])).await })
        };
        // Another subscriber is not held up.
        let other = locks.lock(keys(&["d"])).await;
        drop(other);
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "b is still locked by the first delivery"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        drop(second);
        assert_eq!(locks.len(), 0, "unused locks are removed");
    }

    #[tokio::test]
    async fn overlapping_deliveries_in_opposite_orders_do_not_deadlock() {
        let locks = Arc::new(SubscriberLocks::default());
        let mut tasks = Vec::new();
        for round in 0..200 {
            let locks = Arc::clone(&locks);
            let set = match round % 2 {
                0 => keys(&["x", "y", "z"]),
                _ => keys(&["z", "y", "x"]),
            };
            tasks.push(tokio::spawn(async move {
                let guard = locks.lock(set).await;
                tokio::task::yield_now().await;
                drop(guard);
            }));
        }
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(locks.len(), 0);
    }
}
