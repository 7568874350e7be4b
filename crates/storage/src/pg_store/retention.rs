//! The retention sweep on PostgreSQL: bounded deletes, oldest first, of dedup rows of processed
//! events, finished messages, used-up tokens (never one paying for a pending message) and
//! finished notifications, found by the `*_ms` columns the writes keep.

use super::PgStore;
use super::db::{big, decode, unbig};
use crate::notification::Notification;
use crate::retention::{RetentionPolicy, SweepReport};
use crate::store::StoreResult;

/// What one kind's pass selects and deletes; `$1` is the cutoff, `$2` the limit.
struct Kind {
    select: &'static str,
    delete: &'static str,
}

const EVENTS: Kind = Kind {
    select: "SELECT seq FROM journal WHERE processed_ms IS NOT NULL AND processed_ms < $1
             ORDER BY processed_ms, seq LIMIT $2",
    delete: "DELETE FROM journal WHERE seq = ANY($1)",
};

const MESSAGES: Kind = Kind {
    select: "SELECT id FROM outbox WHERE status <> 0 AND finished_ms < $1
             ORDER BY finished_ms, id LIMIT $2",
    delete: "DELETE FROM outbox WHERE id = ANY($1)",
};

impl PgStore {
    pub(super) fn retention_sweep(
        &self,
        now_ms: u64,
        policy: &RetentionPolicy,
        max_records: usize,
    ) -> StoreResult<SweepReport> {
        let mut report = SweepReport::default();
        let mut budget = max_records;
        for (kind, window) in [
            (0, policy.dedup_ms),
            (1, policy.history_ms),
            (2, policy.history_ms),
            (3, policy.history_ms),
        ] {
            let cutoff = big(now_ms.saturating_sub(window));
            let limit = big(budget.saturating_add(1) as u64);
            let (removed, more) = self.pool.write("sweep_retention", false, |tx| match kind {
                0 | 1 => {
                    let sql = if kind == 0 { &EVENTS } else { &MESSAGES };
                    let mut ids: Vec<i64> = tx
                        .query(sql.select, &[&cutoff, &limit])?
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                    let more = ids.len() > budget;
                    ids.truncate(budget);
                    let n = tx.execute(sql.delete, &[&ids])?;
                    Ok((n, more))
                }
                2 => {
                    let keys: Vec<(String, String)> = tx
                        .query(
                            "SELECT t.page_id, t.token FROM tokens t
                                 WHERE t.state <> 0 AND t.used_ms < $1
                                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.page_id = t.page_id
                                   AND o.token = t.token AND o.status = 0)
                                 ORDER BY t.used_ms LIMIT $2",
                            &[&cutoff, &limit],
                        )?
                        .iter()
                        .map(|r| (r.get(0), r.get(1)))
                        .collect();
                    let more = keys.len() > budget;
                    let mut n = 0;
                    for (page, token) in keys.iter().take(budget) {
                        n += tx.execute(
                            "DELETE FROM tokens WHERE page_id = $1 AND token = $2",
                            &[page, token],
                        )?;
                    }
                    Ok((n, more))
                }
                _ => {
                    let rows = tx.query(
                        "SELECT page_id, id, rec FROM notifications WHERE finished_ms < $1
                             ORDER BY finished_ms, id LIMIT $2",
                        &[&cutoff, &limit],
                    )?;
                    let more = rows.len() > budget;
                    let mut n = 0;
                    for row in rows.iter().take(budget) {
                        let record: Notification = decode("notifications", row.get(2))?;
                        if record.state.is_running() || record.totals.pending() > 0 {
                            continue;
                        }
                        n += tx.execute(
                            "DELETE FROM notifications WHERE page_id = $1 AND id = $2",
                            &[&row.get::<_, String>(0), &row.get::<_, i64>(1)],
                        )?;
                    }
                    Ok((n, more))
                }
            })?;
            let removed = unbig(i64::try_from(removed).unwrap_or(i64::MAX));
            match kind {
                0 => report.dedup_records += removed,
                1 => report.messages += removed,
                2 => report.tokens += removed,
                _ => report.notifications += removed,
            }
            budget = budget.saturating_sub(usize::try_from(removed).unwrap_or(usize::MAX));
            if more {
                report.more = true;
                break;
            }
        }
        Ok(report)
    }
}
