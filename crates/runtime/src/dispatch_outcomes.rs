//! Batched outcome recording for the dispatcher: send tasks hand in what became of their
//! message and wait; one task records everything that piled up meanwhile with one
//! [`Store::mark_outcomes`] call (one transaction), so the store's cost is paid per batch.
//!
//! The store makes a batch durable before returning when it holds a token send; outcomes of
//! normal messages only are committed without waiting for the disk. So that a crash can re-send
//! only recently sent normal messages whatever sled's background flush interval, the recorder
//! flushes the store at most [`FLUSH_WITHIN`] after it recorded such outcomes (sooner when other
//! durable calls flush first; a flush with nothing new is cheap).

use crate::runtime::RuntimeError;
use botflow_storage::{Outcome, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Most outcomes recorded in one store call.
const MAX_BATCH: usize = 512;

/// Longest time recorded outcomes wait for a flush by the recorder.
pub(crate) const FLUSH_WITHIN: Duration = Duration::from_millis(200);

/// One outcome waiting to be recorded, with where to report the result.
struct Request {
    outcome: Outcome,
    done: oneshot::Sender<Result<(), RuntimeError>>,
}

/// The handle send tasks record through; the recording task ends when the handle is dropped.
#[derive(Debug)]
pub(crate) struct OutcomeRecorder {
    requests: mpsc::UnboundedSender<Request>,
}

impl OutcomeRecorder {
    /// Starts the recording task on the current tokio runtime.
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (requests, rx) = mpsc::unbounded_channel();
        tokio::spawn(record_batches(store, rx));
        Self { requests }
    }

    /// Records one outcome (batched with those of concurrent sends) and returns once it is
    /// committed, with the durability [`Store::mark_outcomes`] gives it.
    pub(crate) async fn record(&self, outcome: Outcome) -> Result<(), RuntimeError> {
        let (done, result) = oneshot::channel();
        self.requests
            .send(Request { outcome, done })
            .map_err(|_| RuntimeError::ShuttingDown)?;
        result
            .await
            .map_err(|_| RuntimeError::Task("the outcome recorder stopped".into()))?
    }
}

/// Records batches until every handle is gone; a batch is whatever is queued when the previous
/// store call returns, so the batch grows with the load.
async fn record_batches(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Request>) {
    // When the recorder first recorded outcomes that it has not flushed since.
    let mut unflushed_since: Option<Instant> = None;
    loop {
        let first = match unflushed_since {
            None => rx.recv().await,
            Some(since) => tokio::select! {
                request = rx.recv() => request,
                () = tokio::time::sleep_until(since + FLUSH_WITHIN) => {
                    flush(&store).await;
                    unflushed_since = None;
                    continue;
                }
            },
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        record_batch(&store, batch).await;
        let since = *unflushed_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= FLUSH_WITHIN {
            flush(&store).await;
            unflushed_since = None;
        }
    }
    if unflushed_since.is_some() {
        flush(&store).await;
    }
}

/// Records one batch with one store call and hands each sender its result.
async fn record_batch(store: &Arc<dyn Store>, batch: Vec<Request>) {
    let (outcomes, replies): (Vec<Outcome>, Vec<_>) =
        batch.into_iter().map(|r| (r.outcome, r.done)).unzip();
    let recorded = if store.calls_are_local() {
        // In place, with the durability of token sends awaited without a thread.
        match store.mark_outcomes_deferred(&outcomes) {
            Ok((results, durable)) => Ok(durable.wait().await.map(|()| results)),
            Err(error) => Ok(Err(error)),
        }
    } else {
        let store = Arc::clone(store);
        tokio::task::spawn_blocking(move || store.mark_outcomes(&outcomes)).await
    };
    match recorded {
        Ok(Ok(results)) => {
            // A reply without a result (a backend returning too few) reports the recorder as
            // stopped rather than claiming success.
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result.map_err(RuntimeError::Store));
            }
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot record send outcomes");
            let text = error.to_string();
            for reply in replies {
                let _ = reply.send(Err(RuntimeError::Task(format!(
                    "recording send outcomes: {text}"
                ))));
            }
        }
        Err(join) => {
            // The replies are dropped: each waiting send sees the recorder's failure.
            tracing::error!(error = %join, "outcome recording task failed");
        }
    }
}

/// Flushes the store, logging a failure (the next flush covers the same writes).
async fn flush(store: &Arc<dyn Store>) {
    if let Some(durable) = store.flush_deferred() {
        if let Err(error) = durable.wait().await {
            tracing::error!(%error, "cannot flush recorded send outcomes");
        }
        return;
    }
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || store.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "cannot flush recorded send outcomes"),
        Err(join) => tracing::error!(error = %join, "flush task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botflow_storage::{
        NewOutbound, OutboundKind, OutboundStatus, OutboxId, PageId, Psid, Session, SledStore,
        StepCommit, StoreError, StoreOptions,
    };

    fn queue_one(store: &dyn Store, n: usize) -> OutboxId {
        let committed = store
            .commit_step(StepCommit {
                page: PageId::from("page"),
                psid: Psid::from(format!("u{n}").as_str()),
                event: None,
                session: Session::default(),
                outbound: vec![NewOutbound {
                    body: serde_json::json!({"message": {"text": format!("m{n}")}}),
                    kind: OutboundKind::Normal,
                }],
                tokens_added: Vec::new(),
                now_ms: 1,
                durable: false,
                notification_run: None,
            })
            .unwrap();
        committed.outbox_ids[0]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_outcomes_are_recorded_and_each_caller_gets_its_own_result() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path(), StoreOptions::default()).unwrap());
        let ids: Vec<OutboxId> = (0..300).map(|n| queue_one(store.as_ref(), n)).collect();
        let recorder = Arc::new(OutcomeRecorder::start(Arc::clone(&store)));
        let mut tasks = Vec::new();
        for (n, id) in ids.iter().copied().enumerate() {
            let recorder = Arc::clone(&recorder);
            tasks.push(tokio::spawn(async move {
                let sent = recorder
                    .record(Outcome::Sent {
                        id,
                        message_id: format!("m.{n}"),
                        at_ms: 10,
                    })
                    .await;
                // Every tenth caller also records for a message that does not exist.
                let unknown = if n % 10 == 0 {
                    Some(
                        recorder
                            .record(Outcome::Failed {
                                id: OutboxId(1_000_000 + n as u64),
                                error: "x".into(),
                                at_ms: 10,
                            })
                            .await,
                    )
                } else {
                    None
                };
                (sent, unknown)
            }));
        }
        for task in tasks {
            let (sent, unknown) = task.await.unwrap();
            assert!(sent.is_ok(), "{sent:?}");
            if let Some(unknown) = unknown {
                assert!(
                    matches!(
                        unknown,
                        Err(RuntimeError::Store(StoreError::OutboundNotFound(_)))
                    ),
                    "{unknown:?}"
                );
            }
        }
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(
                store.outbound(*id).unwrap().unwrap().status,
                OutboundStatus::Sent {
                    message_id: format!("m.{n}"),
                    at_ms: 10
                }
            );
        }
        let stats = store.outbox_stats().unwrap();
        assert_eq!((stats.pending, stats.sent, stats.failed), (0, 300, 0));
        assert!(store.due_outbound(u64::MAX, 10).unwrap().is_empty());
    }

    #[tokio::test]
    async fn recording_after_the_recorder_stopped_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path(), StoreOptions::default()).unwrap());
        let id = queue_one(store.as_ref(), 1);
        let (requests, rx) = mpsc::unbounded_channel();
        drop(rx);
        let recorder = OutcomeRecorder { requests };
        let result = recorder
            .record(Outcome::DeliveredUnconfirmed { id, at_ms: 5 })
            .await;
        assert!(
            matches!(result, Err(RuntimeError::ShuttingDown)),
            "{result:?}"
        );
        assert!(store.outbound(id).unwrap().unwrap().status.is_pending());
    }
}
