//! Batched outcome recording on sled: many outbox outcomes in one transaction, flushed only when
//! a token send is among them.

use super::SledStore;
use super::outbox::{finish, retry};
use super::trees::{Tx, TxResult};
use crate::error::StoreError;
use crate::log::Lsn;
use crate::outbox::OutboundStatus;
use crate::outcome::Outcome;
use crate::store::StoreResult;
use sled::transaction::ConflictableTransactionError;

/// The status an outcome gives its message; `None` for a retry (it stays pending).
fn final_status(outcome: &Outcome) -> Option<OutboundStatus> {
    match outcome {
        Outcome::Sent {
            message_id, at_ms, ..
        } => Some(OutboundStatus::Sent {
            message_id: message_id.clone(),
            at_ms: *at_ms,
        }),
        Outcome::Retry { .. } => None,
        Outcome::Failed { error, at_ms, .. } => Some(OutboundStatus::Failed {
            error: error.clone(),
            at_ms: *at_ms,
        }),
        Outcome::Refused { reason, at_ms, .. } => Some(OutboundStatus::RefusedByPolicy {
            reason: reason.clone(),
            at_ms: *at_ms,
        }),
        Outcome::DeliveredUnconfirmed { at_ms, .. } => {
            Some(OutboundStatus::DeliveredUnconfirmed { at_ms: *at_ms })
        }
    }
}

/// Applies one outcome inside a transaction; returns whether its message is a token send.
fn apply(tx: &Tx<'_>, outcome: &Outcome, status: Option<&OutboundStatus>) -> TxResult<bool> {
    match (outcome, status) {
        (Outcome::Retry { id, due_ms, error }, _) => retry(tx, *id, *due_ms, error),
        (_, Some(status)) => finish(tx, outcome.id(), status),
        (_, None) => Err(StoreError::Corrupt {
            what: "outbox",
            detail: "an outcome without status".into(),
        }
        .into()),
    }
}

/// Whether an error concerns only the outcome's own message (refused before any write of it),
/// so the rest of the batch can still commit.
fn is_own_error(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::OutboundNotFound(_) | StoreError::OutboundNotPending { .. }
    )
}

impl SledStore {
    /// Records outcomes in one transaction (see [`crate::Store::mark_outcomes`]).
    pub(super) fn outbox_record(&self, outcomes: &[Outcome]) -> StoreResult<Vec<StoreResult<()>>> {
        let (results, wait) = self.outbox_record_pending(outcomes)?;
        if let Some(lsn) = wait {
            self.core
                .log
                .wait_durable(lsn)
                .map_err(|source| StoreError::Log {
                    action: "wait for the log's fdatasync",
                    source,
                })?;
        }
        Ok(results)
    }

    /// [`Self::outbox_record`] with the wait left to the caller: the results, and the LSN that
    /// must be durable before they hold (`None`: no token send among them, nothing to wait for).
    pub(super) fn outbox_record_pending(
        &self,
        outcomes: &[Outcome],
    ) -> StoreResult<(Vec<StoreResult<()>>, Option<Lsn>)> {
        let statuses: Vec<Option<OutboundStatus>> = outcomes.iter().map(final_status).collect();
        // Lazy: a normal outcome may wait for the next sync; a token send's is waited for below.
        let batch = self.transact_lazy(|tx| {
            let mut results = Vec::with_capacity(outcomes.len());
            let mut token_send = false;
            for (outcome, status) in outcomes.iter().zip(&statuses) {
                match apply(tx, outcome, status.as_ref()) {
                    Ok(token) => {
                        token_send |= token;
                        results.push(Ok(()));
                    }
                    // `load_pending` fails before the outcome writes anything.
                    Err(ConflictableTransactionError::Abort(err)) if is_own_error(&err) => {
                        results.push(Err(err));
                    }
                    Err(err) => return Err(err),
                }
            }
            Ok((results, token_send))
        });
        let (results, token_send) = match batch {
            Ok(batch) => batch,
            Err(error) => {
                // Something beyond one message failed: record one by one (durably), so each
                // outcome gets its own result.
                tracing::warn!(%error, "batched outcomes failed; recording one by one");
                return Ok((outcomes.iter().map(|o| self.record_one(o)).collect(), None));
            }
        };
        for (result, status) in results.iter().zip(&statuses) {
            if let (Ok(()), Some(status)) = (result, status) {
                self.count_final(status);
            }
        }
        Ok((results, token_send.then(|| self.core.log.last_lsn())))
    }

    /// Records one outcome with its durable single call.
    fn record_one(&self, outcome: &Outcome) -> StoreResult<()> {
        match (outcome, final_status(outcome)) {
            (Outcome::Retry { id, due_ms, error }, _) => self.outbox_retry(*id, *due_ms, error),
            (_, Some(status)) => self.outbox_finish(outcome.id(), status),
            (_, None) => Err(StoreError::Corrupt {
                what: "outbox",
                detail: "an outcome without status".into(),
            }),
        }
    }
}
