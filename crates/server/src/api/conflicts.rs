//! Triggers a flow shares with the other live flows of its Page, the admin API's counterpart of
//! `botflow validate`'s check across files (the store checks the same inside publish).

use botflow_flow::{Diagnostic, FlowDocument};
use botflow_storage::{PageId, Store, StoreResult};

/// `conflicting-trigger` errors, at `document`'s triggers, for every trigger (keyword, referral,
/// `get_started`, `default`) that a live flow of `page` other than `document` itself claims.
pub(crate) fn live_trigger_conflicts(
    store: &dyn Store,
    page: &PageId,
    document: &FlowDocument,
) -> StoreResult<Vec<Diagnostic>> {
    store.live_trigger_conflicts(page, document)
}
