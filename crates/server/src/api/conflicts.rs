//! Triggers a flow shares with the other live flows of its Page, the admin API's counterpart of
//! `botflow validate`'s check across files.

use botflow_flow::{Diagnostic, FlowDocument, check_trigger_conflicts};
use botflow_storage::{PageId, Store, StoreResult};

/// The name under which the checked flow takes part, to pick its problems out.
const CHECKED: &str = "the checked flow";

/// `conflicting-trigger` errors, at `document`'s triggers, for every trigger (keyword, referral,
/// `get_started`, `default`) that a live flow of `page` other than `document` itself claims.
pub(crate) fn live_trigger_conflicts(
    store: &dyn Store,
    page: &PageId,
    document: &FlowDocument,
) -> StoreResult<Vec<Diagnostic>> {
    let live: Vec<(String, _)> = store
        .active_flows(page)?
        .into_iter()
        .filter(|active| active.flow != document.id)
        .map(|active| (format!("its live version {}", active.version), active.valid))
        .collect();
    let flows = live
        .iter()
        .map(|(label, valid)| (label.as_str(), valid.document()))
        .chain([(CHECKED, document)]);
    Ok(check_trigger_conflicts(flows)
        .into_iter()
        .filter(|problem| problem.file == CHECKED)
        .map(|problem| problem.diagnostic)
        .collect())
}
