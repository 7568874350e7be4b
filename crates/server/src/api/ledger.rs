//! The token ledger of a topic: where its opt-ins stand and a 30-day series of opt-ins and sends.

use crate::api::TopicPath;
use crate::error::{ApiError, ErrorBody};
use crate::ingest::now_ms;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use botflow_flow::TopicId;
use botflow_storage::{LedgerDay, StoreError, TopicLedger};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// The token ledger of a topic. Every opt-in in `issued` is in exactly one of `usable`,
/// `spent`, `expired` and `invalidated`; the counts keep counting after the retention sweep
/// deletes used-up tokens.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TopicLedger)]
pub(crate) struct LedgerView {
    /// The topic's id.
    #[schema(value_type = String)]
    topic: TopicId,
    /// Opt-ins received (a redelivered opt-in counted once).
    issued: u64,
    /// Tokens waiting to be used (not spent, invalidated or expired).
    usable: u64,
    /// Tokens that paid for a notification.
    spent: u64,
    /// Tokens whose year passed unused.
    expired: u64,
    /// Tokens Messenger refused (also after a failed send) or whose topic was deleted.
    invalidated: u64,
    /// Token sends whose delivery Messenger never confirmed (their tokens count as spent).
    delivered_unconfirmed: u64,
    /// The topic's recurring notification tokens, counted apart from the one-time tokens above.
    recurring: RecurringLedgerView,
    /// The last 30 UTC days, oldest first, ending with today.
    days: Vec<LedgerDayView>,
}

/// The recurring tokens of a topic: every token in `issued` is in exactly one of `active`,
/// `stopped` and `retired`; a send spends none (`sends` counts the messages they paid for).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RecurringLedger)]
pub(crate) struct RecurringLedgerView {
    /// Recurring opt-ins received (a redelivered opt-in counted once).
    issued: u64,
    /// Tokens that may pay for messages (expiry is noticed when a send finds it).
    active: u64,
    /// Tokens the subscriber stopped (usable again after a resume).
    stopped: u64,
    /// Tokens retired for good: refused by Messenger (expired, revoked), past their expiry, or
    /// replaced by a newer opt-in.
    retired: u64,
    /// Messages queued paid for by a recurring token.
    sends: u64,
}

/// Opt-ins and sends of one UTC day.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LedgerDay)]
pub(crate) struct LedgerDayView {
    /// The day, `YYYY-MM-DD` (UTC).
    #[schema(format = Date)]
    date: String,
    /// Opt-ins made that day.
    opt_ins: u64,
    /// Tokens spent that day.
    sends: u64,
    /// Recurring opt-ins made that day.
    recurring_opt_ins: u64,
    /// Messages paid for by recurring tokens that day.
    recurring_sends: u64,
}

/// The `YYYY-MM-DD` of a day counted from the Unix epoch (Howard Hinnant's civil-from-days).
fn civil_date(day: u64) -> String {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

impl LedgerView {
    fn new(topic: TopicId, ledger: TopicLedger) -> Self {
        Self {
            topic,
            issued: ledger.issued,
            usable: ledger.usable,
            spent: ledger.spent,
            expired: ledger.expired,
            invalidated: ledger.invalidated,
            delivered_unconfirmed: ledger.delivered_unconfirmed,
            recurring: RecurringLedgerView {
                issued: ledger.recurring.issued,
                active: ledger.recurring.active,
                stopped: ledger.recurring.stopped,
                retired: ledger.recurring.retired,
                sends: ledger.recurring.sends,
            },
            days: ledger.days.iter().map(LedgerDayView::from).collect(),
        }
    }
}

impl From<&LedgerDay> for LedgerDayView {
    fn from(day: &LedgerDay) -> Self {
        Self {
            date: civil_date(day.day),
            opt_ins: day.opt_ins,
            sends: day.sends,
            recurring_opt_ins: day.recurring_opt_ins,
            recurring_sends: day.recurring_sends,
        }
    }
}

/// `GET /api/pages/{page}/topics/{topic}/ledger`: the topic's token counts and its opt-ins and
/// sends per UTC day for the last 30 days.
#[utoipa::path(
    get,
    path = "/pages/{page}/topics/{topic}/ledger",
    operation_id = "topicLedger",
    tag = "topics",
    params(TopicPath),
    responses(
        (status = 200, description = "The topic's token ledger.", body = LedgerView),
        (status = 404, description = "Unknown Page or topic.", body = ErrorBody),
    )
)]
pub(crate) async fn ledger(
    State(state): State<Arc<AppState>>,
    Path(path): Path<TopicPath>,
) -> Result<Json<LedgerView>, ApiError> {
    let page = state.page(&path.page)?;
    let topic = TopicId::from(path.topic);
    let view = state
        .with_store(move |store| {
            let now = now_ms();
            let not_found = || StoreError::TopicNotFound {
                page: page.clone(),
                topic: topic.clone(),
            };
            // A deleted topic keeps its ledger in the store, but the API knows only live topics.
            if store.get_topic(&page, &topic)?.is_none() {
                return Err(not_found());
            }
            let ledger = store
                .topic_ledger(&page, &topic, now)?
                .ok_or_else(not_found)?;
            Ok(LedgerView::new(topic, ledger))
        })
        .await?;
    Ok(Json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_since_the_epoch_are_utc_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(59), "1970-03-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_422), "2025-11-30");
    }
}
