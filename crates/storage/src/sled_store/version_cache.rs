//! The in-memory cache of published flow versions, bounded: beyond its capacity the least
//! recently used version is dropped (versions are immutable, so a dropped one is read again).

use crate::ids::PageId;
use botflow_flow::{FlowId, ValidFlow};
use std::collections::HashMap;
use std::sync::Arc;

type CacheKey = (PageId, FlowId, u32);

/// Published versions by (page, flow, version), at most `capacity` of them.
#[derive(Debug)]
pub(super) struct VersionCache {
    capacity: usize,
    /// Each version with the tick of its last use.
    entries: HashMap<CacheKey, (Arc<ValidFlow>, u64)>,
    tick: u64,
}

impl VersionCache {
    /// An empty cache holding at most `capacity` versions (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            tick: 0,
        }
    }

    /// The cached version, marked as just used.
    pub(super) fn get(&mut self, key: &CacheKey) -> Option<Arc<ValidFlow>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(valid, used)| {
            *used = tick;
            Arc::clone(valid)
        })
    }

    /// Caches a version, dropping the least recently used ones beyond the capacity.
    pub(super) fn insert(&mut self, key: CacheKey, valid: Arc<ValidFlow>) {
        self.tick += 1;
        self.entries.insert(key, (valid, self.tick));
        if self.entries.len() > self.capacity {
            // Drop an eighth at once, so the scan for the oldest runs once per many misses.
            let excess = self.entries.len() - self.capacity + self.capacity / 8;
            let mut ticks: Vec<u64> = self.entries.values().map(|(_, used)| *used).collect();
            ticks.sort_unstable();
            let keep_from = ticks.get(excess.min(ticks.len() - 1)).copied().unwrap_or(0);
            self.entries.retain(|_, (_, used)| *used >= keep_from);
        }
    }

    /// How many versions are cached.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}
