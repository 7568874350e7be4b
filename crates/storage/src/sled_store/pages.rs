//! The Page registry: a Page exists once configured (`ensure_page`).

use super::SledStore;
use super::codec::KeyReader;
use super::trees::T;
use crate::ids::PageId;
use crate::store::StoreResult;
use serde::{Deserialize, Serialize};

/// What the store keeps about a Page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PageRecord {
    created_ms: u64,
}

impl SledStore {
    pub(super) fn page_ensure(&self, page: &PageId, now_ms: u64) -> StoreResult<bool> {
        let key = Self::page_key(page);
        let created = self.transact(|tx| {
            if tx.contains(T::Pages, &key)? {
                return Ok(false);
            }
            tx.put(T::Pages, &key, &PageRecord { created_ms: now_ms })?;
            Ok(true)
        })?;
        if created {
            self.durable()?;
        }
        Ok(created)
    }

    pub(super) fn pages_list(&self) -> StoreResult<Vec<PageId>> {
        self.scan_keys(T::Pages, &[])?
            .iter()
            .map(|key| KeyReader::new(key).str().map(PageId))
            .collect()
    }
}
