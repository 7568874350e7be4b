//! Batched outcome recording for the dispatcher: send tasks hand in what became of their
//! message and wait; one task records everything that piled up meanwhile with one
//! [`Store::mark_outcomes`] call (one transaction), so the store's cost is paid per batch.

use crate::runtime::RuntimeError;
use botflow_storage::{Outcome, Store};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most outcomes recorded in one store call.
const MAX_BATCH: usize = 512;

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
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let (outcomes, replies): (Vec<Outcome>, Vec<_>) =
            batch.into_iter().map(|r| (r.outcome, r.done)).unzip();
        let store = Arc::clone(&store);
        let recorded = tokio::task::spawn_blocking(move || store.mark_outcomes(&outcomes)).await;
        match recorded {
            Ok(Ok(results)) => {
                // A reply without a result (a backend returning too few) reports the recorder
                // as stopped rather than claiming success.
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
}
