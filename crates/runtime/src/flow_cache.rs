//! The published flows the scheduler hands to the step function, cached per Page.
//!
//! Active versions are read from the store at most once per TTL (or after
//! [`crate::Runtime::flows_changed`]); older versions a session or a payload refers to are added
//! per step (the store caches checked versions: they are immutable).

use crate::context::PublishedFlows;
use botflow_flow::FlowId;
use botflow_storage::{PageId, Store, StoreError, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Per-Page cache of active flow versions.
#[derive(Debug)]
pub(crate) struct FlowCache {
    ttl_ms: u64,
    pages: Mutex<HashMap<PageId, (Arc<PublishedFlows>, u64)>>,
}

impl FlowCache {
    pub(crate) fn new(ttl_ms: u64) -> Self {
        Self {
            ttl_ms,
            pages: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every cached Page (their published flows changed).
    pub(crate) fn invalidate(&self) {
        self.pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn active(
        &self,
        store: &dyn Store,
        page: &PageId,
        now_ms: u64,
    ) -> StoreResult<Arc<PublishedFlows>> {
        if let Some((flows, loaded)) = self
            .pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(page)
        {
            if now_ms.saturating_sub(*loaded) < self.ttl_ms {
                return Ok(Arc::clone(flows));
            }
        }
        let mut flows = PublishedFlows::new();
        // Broken flows (an unreadable live version) are left out; the store logged them.
        for active in store.active_flows(page)?.flows {
            flows.insert_active(active.version, active.valid);
        }
        let flows = Arc::new(flows);
        self.pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(page.clone(), (Arc::clone(&flows), now_ms));
        Ok(flows)
    }

    /// The Page's active flows plus the given versions (those the store still has).
    pub(crate) fn for_step(
        &self,
        store: &dyn Store,
        page: &PageId,
        needed: &[(FlowId, u32)],
        now_ms: u64,
    ) -> StoreResult<Arc<PublishedFlows>> {
        let base = self.active(store, page, now_ms)?;
        let missing: Vec<&(FlowId, u32)> = needed
            .iter()
            .filter(|(flow, version)| !base.contains(flow, *version))
            .collect();
        if missing.is_empty() {
            return Ok(base);
        }
        let mut flows = (*base).clone();
        for (flow, version) in missing {
            match store.valid_flow(page, flow, *version) {
                Ok(Some(valid)) => flows.insert(*version, valid),
                Ok(None) => {}
                // An unreadable old version is like a retired one: that run stops with an error.
                Err(
                    error @ (StoreError::Corrupt { .. }
                    | StoreError::UnsupportedRecordVersion { .. }),
                ) => {
                    tracing::error!(%page, %flow, version, %error, "flow version unreadable");
                }
                Err(other) => return Err(other),
            }
        }
        Ok(Arc::new(flows))
    }
}
