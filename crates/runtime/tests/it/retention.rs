//! The retention sweeper: runs in the background, removes what the policy no longer keeps, counts
//! it, and stops on request.

use crate::support::{open_store, page};
use botflow_runtime::{ManualClock, RetentionMetrics, RetentionSettings, RetentionSweeper};
use botflow_storage::{
    Appended, EventId, NewJournalEvent, Psid, RetentionPolicy, Session, StepCommit, Store,
};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DAY: u64 = 24 * 60 * 60 * 1000;

fn event(n: u32, at: u64) -> NewJournalEvent {
    NewJournalEvent {
        page: page(),
        event: EventId(format!("mid.{n}")),
        psid: Psid(format!("psid-{n}")),
        payload: json!({"message": {"mid": format!("mid.{n}"), "text": "hi"}}),
        received_ms: at,
    }
}

fn process(store: &dyn Store, n: u32, at: u64) {
    let e = event(n, at);
    store
        .journal_append_batch(std::slice::from_ref(&e))
        .unwrap();
    store
        .commit_step(StepCommit {
            page: page(),
            psid: e.psid.clone(),
            event: Some(e.event.clone()),
            session: Session::default(),
            outbound: Vec::new(),
            tokens_added: Vec::new(),
            now_ms: at,
            durable: false,
            notification_run: None,
        })
        .unwrap();
}

/// Waits until `done` holds, failing after a deadline.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_background_sweep_removes_old_dedup_records_in_batches_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let t0 = 1_000 * DAY;
    for n in 0..25 {
        process(store.as_ref(), n, t0);
    }
    process(store.as_ref(), 100, t0 + 2 * DAY);
    let clock = ManualClock::new(t0 + 3 * DAY + 1);
    let metrics = Arc::new(RetentionMetrics::default());
    let sweeper = RetentionSweeper::start(
        Arc::clone(&store),
        RetentionSettings {
            policy: RetentionPolicy {
                dedup_ms: 3 * DAY,
                history_ms: 30 * DAY,
            },
            interval: Duration::from_millis(10),
            batch: 4,
        },
        Arc::new(clock.clone()),
        Arc::clone(&metrics),
    );
    wait_until("25 dedup records removed", || {
        metrics.dedup_records_removed.get() == 25
    })
    .await;
    // The younger event is still recognised; the old ones are journaled as new again.
    let outcomes = store
        .journal_append_batch(&[event(100, t0 + 3 * DAY), event(0, t0 + 3 * DAY)])
        .unwrap();
    assert_eq!(outcomes[0], Appended::Duplicate);
    assert!(matches!(outcomes[1], Appended::New { .. }));

    // Later rounds find the younger record's turn.
    clock.advance(2 * DAY);
    wait_until("the younger record removed", || {
        metrics.dedup_records_removed.get() == 26
    })
    .await;
    sweeper.stop().await.unwrap();
    let rounds = metrics.rounds.get();
    assert!(rounds >= 2, "{rounds}");
    assert_eq!(metrics.errors.get(), 0);
}
