//! Batched outcome recording (`mark_outcomes`): same effects as the single calls, per-outcome
//! errors, token invalidation, figures, and which batches are durable.

use super::*;
use botflow_storage::{OutboundStatus, OutboxId, Outcome, StoreError, TokenState};

fn queue(store: &dyn Store, p: &Psid, messages: Vec<NewOutbound>, now: u64) -> Vec<OutboxId> {
    store
        .commit_step(StepCommit {
            outbound: messages,
            ..bare_commit(p, Session::default(), now)
        })
        .unwrap()
        .outbox_ids
}

fn statuses(store: &dyn Store, p: &Psid) -> Vec<OutboundStatus> {
    store
        .messages_for(&page(), p)
        .unwrap()
        .into_iter()
        .map(|m| m.status)
        .collect()
}

fn due_ids(store: &dyn Store, now: u64) -> Vec<OutboxId> {
    store
        .due_outbound(now, 100)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect()
}

/// A store with a topic, one token for psid 3, and queued messages: psid 1 has two normal
/// messages, psid 2 one, psid 3 a token send. Returns (a, b, c) ids per subscriber and the topic.
fn setup(store: &dyn Store) -> (Vec<OutboxId>, Vec<OutboxId>, Vec<OutboxId>, TopicId) {
    let topic = store.create_topic(&page(), "Restock", 1).unwrap().id;
    store
        .add_token(&page(), &psid(3), token(&topic, "tok-3", 1, 1_000_000), 1)
        .unwrap();
    let a = queue(store, &psid(1), vec![text_message(1), text_message(2)], 10);
    let b = queue(store, &psid(2), vec![text_message(3)], 11);
    let c = queue(store, &psid(3), vec![token_message(&topic)], 12);
    assert_eq!(c.len(), 1, "the token send must be queued");
    (a, b, c, topic)
}

fn a_batch_has_the_effects_of_the_single_calls_and_moves_queues_on() {
    let (_dir, store) = temp_store();
    let (a, b, c, _topic) = setup(&*store);
    let results = store
        .mark_outcomes(&[
            Outcome::Sent {
                id: a[0],
                message_id: "m.a0".into(),
                at_ms: 100,
            },
            Outcome::Refused {
                id: b[0],
                reason: "outside the window".into(),
                at_ms: 101,
            },
            Outcome::Retry {
                id: c[0],
                due_ms: 5_000,
                error: "token send started".into(),
            },
        ])
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // psid 1's second message is now its head; psid 3's token send waits for its retry time.
    assert_eq!(due_ids(&*store, 1_000), vec![a[1]]);
    assert_eq!(due_ids(&*store, 5_000), vec![a[1], c[0]]);
    let retried = store.outbound(c[0]).unwrap().unwrap();
    assert_eq!(
        (
            retried.attempts,
            retried.due_ms,
            retried.last_error.as_deref()
        ),
        (1, 5_000, Some("token send started"))
    );
    assert_eq!(
        statuses(&*store, &psid(1)),
        vec![
            OutboundStatus::Sent {
                message_id: "m.a0".into(),
                at_ms: 100
            },
            OutboundStatus::Pending
        ]
    );
    assert_eq!(
        statuses(&*store, &psid(2)),
        vec![OutboundStatus::RefusedByPolicy {
            reason: "outside the window".into(),
            at_ms: 101
        }]
    );

    let results = store
        .mark_outcomes(&[
            Outcome::DeliveredUnconfirmed {
                id: a[1],
                at_ms: 200,
            },
            Outcome::Sent {
                id: c[0],
                message_id: "m.c0".into(),
                at_ms: 201,
            },
        ])
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(due_ids(&*store, u64::MAX).is_empty());
    let stats = store.outbox_stats().unwrap();
    assert_eq!(
        (
            stats.pending,
            stats.sent,
            stats.failed,
            stats.refused,
            stats.delivered_unconfirmed
        ),
        (0, 2, 0, 1, 1)
    );
    assert_consistent(&store);
}

fn an_outcome_for_an_unknown_or_finished_message_fails_alone() {
    let (_dir, store) = temp_store();
    let (a, b, _c, _topic) = setup(&*store);
    store.mark_sent(b[0], "m.b0", 50).unwrap();
    let results = store
        .mark_outcomes(&[
            Outcome::Sent {
                id: OutboxId(999_999),
                message_id: "m.x".into(),
                at_ms: 100,
            },
            Outcome::Sent {
                id: a[0],
                message_id: "m.a0".into(),
                at_ms: 100,
            },
            Outcome::Failed {
                id: b[0],
                error: "late".into(),
                at_ms: 100,
            },
        ])
        .unwrap();
    assert!(
        matches!(
            results[0],
            Err(StoreError::OutboundNotFound(OutboxId(999_999)))
        ),
        "{results:?}"
    );
    assert!(results[1].is_ok(), "{results:?}");
    assert!(
        matches!(
            results[2],
            Err(StoreError::OutboundNotPending { status: "sent", .. })
        ),
        "{results:?}"
    );
    // The good outcome committed; the finished message kept its first status.
    assert!(matches!(
        store.outbound(a[0]).unwrap().unwrap().status,
        OutboundStatus::Sent { .. }
    ));
    assert_eq!(
        store.outbound(b[0]).unwrap().unwrap().status,
        OutboundStatus::Sent {
            message_id: "m.b0".into(),
            at_ms: 50
        }
    );
    assert_eq!(store.outbox_stats().unwrap().sent, 2);
    assert_consistent(&store);
}

fn a_permanent_failure_of_a_token_send_invalidates_its_token_and_a_success_spends_it() {
    let (_dir, store) = temp_store();
    let (_a, _b, c, topic) = setup(&*store);
    let taken = store.outbound(c[0]).unwrap().unwrap().token.unwrap();
    assert_eq!(taken, "tok-3");
    let results = store
        .mark_outcomes(&[Outcome::Failed {
            id: c[0],
            error: "(#10) token invalid".into(),
            at_ms: 300,
        }])
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    let token = store.get_token(&page(), "tok-3").unwrap().unwrap();
    assert!(
        matches!(token.state, TokenState::Invalid { .. }),
        "{:?}",
        token.state
    );
    assert!(
        store
            .usable_tokens(&page(), &psid(3), &topic, 300)
            .unwrap()
            .is_empty()
    );
    assert_consistent(&store);
}

fn a_batch_matches_the_same_outcomes_recorded_one_by_one() {
    let (_dir1, batched) = temp_store();
    let (_dir2, single) = temp_store();
    let (a, b, c, _) = setup(&*batched);
    assert_eq!((a.clone(), b.clone(), c.clone()), {
        let (a2, b2, c2, _) = setup(&*single);
        (a2, b2, c2)
    });
    let outcomes = vec![
        Outcome::Retry {
            id: a[0],
            due_ms: 400,
            error: "HTTP 500".into(),
        },
        Outcome::Failed {
            id: b[0],
            error: "(#551) unavailable".into(),
            at_ms: 401,
        },
        Outcome::DeliveredUnconfirmed {
            id: c[0],
            at_ms: 402,
        },
        Outcome::Sent {
            id: a[0],
            message_id: "m.a0".into(),
            at_ms: 403,
        },
    ];
    let results = batched.mark_outcomes(&outcomes).unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    single.mark_retry(a[0], 400, "HTTP 500").unwrap();
    single.mark_failed(b[0], "(#551) unavailable", 401).unwrap();
    single.mark_delivered_unconfirmed(c[0], 402).unwrap();
    single.mark_sent(a[0], "m.a0", 403).unwrap();
    // Topic ids are random per store: compare everything else.
    let view = |store: &dyn Store, n: u32| -> Vec<_> {
        store
            .messages_for(&page(), &psid(n))
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m.status, m.attempts, m.due_ms, m.last_error, m.token))
            .collect()
    };
    for n in 1..=3 {
        assert_eq!(view(&*batched, n), view(&*single, n), "psid {n}");
    }
    let token_state = |store: &dyn Store| store.get_token(&page(), "tok-3").unwrap().unwrap().state;
    assert_eq!(token_state(&*batched), token_state(&*single));
    assert_eq!(
        batched.outbox_stats().unwrap(),
        single.outbox_stats().unwrap()
    );
    assert_eq!(due_ids(&*batched, u64::MAX), due_ids(&*single, u64::MAX));
    assert_consistent(&batched);
}

fn an_empty_batch_records_nothing() {
    let (_dir, store) = temp_store();
    let (a, _b, _c, _) = setup(&*store);
    assert!(store.mark_outcomes(&[]).unwrap().is_empty());
    assert_eq!(
        store.outbound(a[0]).unwrap().unwrap().status,
        OutboundStatus::Pending
    );
    assert_eq!(store.outbox_stats().unwrap().pending, 4);
}

fn recorded_outcomes_are_there_after_a_reopen() {
    let dir = temp_location();
    let (a, b, c) = {
        let store = reopen(&dir);
        let (a, b, c, _) = setup(&*store);
        store
            .mark_outcomes(&[
                Outcome::Sent {
                    id: a[0],
                    message_id: "m.a0".into(),
                    at_ms: 100,
                },
                Outcome::Sent {
                    id: c[0],
                    message_id: "m.c0".into(),
                    at_ms: 100,
                },
            ])
            .unwrap();
        (a, b, c)
    };
    let store = reopen(&dir);
    for id in [a[0], c[0]] {
        assert!(
            matches!(
                store.outbound(id).unwrap().unwrap().status,
                OutboundStatus::Sent { .. }
            ),
            "{id}"
        );
    }
    assert_eq!(due_ids(&*store, u64::MAX), vec![a[1], b[0]]);
    assert_consistent(&store);
}

on_both_backends!(
    recorded_outcomes_are_there_after_a_reopen,
    a_batch_has_the_effects_of_the_single_calls_and_moves_queues_on,
    an_outcome_for_an_unknown_or_finished_message_fails_alone,
    a_permanent_failure_of_a_token_send_invalidates_its_token_and_a_success_spends_it,
    a_batch_matches_the_same_outcomes_recorded_one_by_one,
    an_empty_batch_records_nothing,
);
