//! The outbound queue: per-subscriber FIFO, due heads, retries, final states, timers.

use super::*;
use botflow_storage::{OutboundStatus, StoreError, Timer, TimerKind};

fn queue(store: &dyn Store, p: &Psid, ns: &[u64], now: u64) -> Vec<botflow_storage::OutboxId> {
    store
        .commit_step(StepCommit {
            outbound: ns.iter().map(|&n| text_message(n)).collect(),
            ..bare_commit(p, Session::default(), now)
        })
        .unwrap()
        .outbox_ids
}

fn only_the_head_of_each_queue_is_due_and_order_is_kept() {
    let (_dir, store) = temp_store();
    let a = queue(&*store, &psid(1), &[1, 2, 3], 100);
    let b = queue(&*store, &psid(2), &[4], 150);
    let due: Vec<_> = store
        .due_outbound(1_000, 10)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(due, vec![a[0], b[0]]);
    assert!(store.due_outbound(99, 10).unwrap().is_empty());
    assert_eq!(store.due_outbound(1_000, 1).unwrap().len(), 1);

    store.mark_sent(a[0], "m.1", 200).unwrap();
    let due: Vec<_> = store
        .due_outbound(1_000, 10)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(due, vec![a[1], b[0]]);

    // A retry keeps the message at the head but hides it until it is due again.
    store.mark_retry(a[1], 5_000, "HTTP 500").unwrap();
    let due: Vec<_> = store
        .due_outbound(1_000, 10)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(due, vec![b[0]]);
    let retried = store.outbound(a[1]).unwrap().unwrap();
    assert_eq!((retried.attempts, retried.due_ms), (1, 5_000));
    assert_eq!(retried.last_error.as_deref(), Some("HTTP 500"));
    let due: Vec<_> = store
        .due_outbound(5_000, 10)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(due, vec![b[0], a[1]]);

    store
        .mark_refused(a[1], "outside the 24-hour window", 5_001)
        .unwrap();
    store.mark_delivered_unconfirmed(a[2], 5_002).unwrap();
    store
        .mark_failed(b[0], "(#551) unavailable", 5_003)
        .unwrap();
    assert!(store.due_outbound(u64::MAX, 10).unwrap().is_empty());
    assert!(matches!(
        store.mark_sent(a[2], "m.2", 6_000),
        Err(StoreError::OutboundNotPending {
            status: "delivered_unconfirmed",
            ..
        })
    ));
    assert!(matches!(
        store.mark_sent(botflow_storage::OutboxId(999), "m", 1),
        Err(StoreError::OutboundNotFound(_))
    ));

    let statuses: Vec<OutboundStatus> = store
        .messages_for(&page(), &psid(1))
        .unwrap()
        .into_iter()
        .map(|m| m.status)
        .collect();
    assert_eq!(
        statuses,
        vec![
            OutboundStatus::Sent {
                message_id: "m.1".into(),
                at_ms: 200
            },
            OutboundStatus::RefusedByPolicy {
                reason: "outside the 24-hour window".into(),
                at_ms: 5_001
            },
            OutboundStatus::DeliveredUnconfirmed { at_ms: 5_002 },
        ]
    );
    let stats = store.outbox_stats().unwrap();
    assert_eq!(
        (
            stats.pending,
            stats.sent,
            stats.failed,
            stats.refused,
            stats.delivered_unconfirmed
        ),
        (0, 1, 1, 1, 1)
    );
    assert_consistent(&store);
}

fn due_heads_in_flight_are_passed_over_and_the_limit_counts_the_others() {
    let (_dir, store) = temp_store();
    let heads: Vec<_> = (1..=4)
        .map(|p| queue(&*store, &psid(p), &[u64::from(p)], 100 + u64::from(p))[0])
        .collect();
    let in_flight = [heads[0], heads[2]];
    let due: Vec<_> = store
        .due_outbound_skipping(1_000, 1, &|id| in_flight.contains(&id))
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(due, vec![heads[1]]);
    let due: Vec<_> = store
        .due_outbound_skipping(1_000, 10, &|id| in_flight.contains(&id))
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(due, vec![heads[1], heads[3]]);
}

fn pending_messages_and_timers_survive_a_reopen() {
    let dir = temp_location();
    let timer = Timer {
        id: 7,
        due_ms: 9_000,
        flow: "f".into(),
        version: 1,
        block: "later".into(),
        kind: TimerKind::Delay,
    };
    let ids = {
        let store = reopen(&dir);
        let session = Session {
            timers: vec![timer.clone()],
            ..Session::default()
        };
        store
            .commit_step(StepCommit {
                outbound: vec![text_message(1), text_message(2)],
                ..bare_commit(&psid(1), session, 100)
            })
            .unwrap()
            .outbox_ids
    };
    let store = reopen(&dir);
    let due = store.due_outbound(100, 10).unwrap();
    assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert!(store.due_timers(8_999, 10).unwrap().is_empty());
    let timers = store.due_timers(9_000, 10).unwrap();
    assert_eq!(timers.len(), 1);
    assert_eq!(
        (timers[0].psid.clone(), timers[0].timer.clone()),
        (psid(1), timer)
    );

    // The step that handles the timer drops it from the session and so from the index.
    store
        .commit_step(bare_commit(&psid(1), Session::default(), 9_000))
        .unwrap();
    assert!(store.due_timers(u64::MAX, 10).unwrap().is_empty());
    assert_eq!(store.list_subscribers(&page()).unwrap(), vec![psid(1)]);
    assert_consistent(&store);
}

fn a_non_durable_commit_is_visible_at_once() {
    let (_dir, store) = temp_store();
    let commit = StepCommit {
        durable: false,
        outbound: vec![text_message(1)],
        ..bare_commit(&psid(1), Session::default(), 1)
    };
    store.commit_step(commit).unwrap();
    assert_eq!(store.due_outbound(1, 10).unwrap().len(), 1);
    store.flush().unwrap();
}

on_both_backends!(
    due_heads_in_flight_are_passed_over_and_the_limit_counts_the_others,
    pending_messages_and_timers_survive_a_reopen,
    only_the_head_of_each_queue_is_due_and_order_is_kept,
    a_non_durable_commit_is_visible_at_once,
);
