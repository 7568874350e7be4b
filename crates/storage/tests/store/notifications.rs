//! Topic notifications as records: totals that move with each outcome in the same commit, a
//! cancel that gives unsent messages' tokens back (ledger included), and totals kept on reopen.

use super::*;
use botflow_storage::{
    DAY_MS, EventId, Notification, NotificationContent, NotificationId, NotificationRun,
    NotificationState, OutboxId, Outcome, RetentionPolicy, StoreError, TopicLedger,
};

const T0: u64 = 20_000 * DAY_MS;
const YEAR: u64 = 365 * DAY_MS;

/// A store-ready topic with one usable token for each of `holders` subscribers.
fn topic_with_holders(store: &dyn Store, holders: u32) -> TopicId {
    store.ensure_page(&page(), T0).unwrap();
    let t = store.create_topic(&page(), "Restock", T0).unwrap().id;
    for n in 0..holders {
        let value = format!("tok-{n}");
        store
            .add_token(&page(), &psid(n), token(&t, &value, T0, T0 + YEAR), T0)
            .unwrap();
    }
    t
}

/// Notifies the topic with a text at `at`; returns the notification's id and its queued ids.
fn notify(store: &dyn Store, t: &TopicId, at: u64) -> (NotificationId, Vec<OutboxId>) {
    let record = store
        .create_notification(&page(), t, &NotificationContent::Text, at)
        .unwrap();
    assert_eq!(record.state, NotificationState::Queued);
    let body_for = |_: &Psid| json!({"message": {"text": "back"}});
    store
        .notify_topic(&page(), t, record.id, &body_for, at)
        .unwrap();
    store
        .close_notification_queuing(&page(), record.id, at)
        .unwrap();
    let ids = store
        .due_outbound(at, 1_000)
        .unwrap()
        .into_iter()
        .filter(|m| m.notification == Some(record.id))
        .map(|m| m.id)
        .collect();
    (record.id, ids)
}

fn get(store: &dyn Store, id: NotificationId) -> Notification {
    store.notification(&page(), id).unwrap().unwrap()
}

fn ledger(store: &dyn Store, t: &TopicId, now: u64) -> TopicLedger {
    store.topic_ledger(&page(), t, now).unwrap().unwrap()
}

fn record(store: &dyn Store, outcomes: &[Outcome]) {
    for result in store.mark_outcomes(outcomes).unwrap() {
        result.unwrap();
    }
}

fn started(id: OutboxId, at: u64) -> Outcome {
    Outcome::Retry {
        id,
        due_ms: at,
        error: "token send started".into(),
    }
}

fn totals_and_state_move_with_each_outcome_to_done() {
    let (_dir, store) = temp_store();
    let t = topic_with_holders(&*store, 4);
    let (id, ids) = notify(&*store, &t, T0 + 10);
    assert_eq!(ids.len(), 4);
    let n = get(&*store, id);
    assert_eq!(
        (n.state, n.totals.queued, n.totals.pending()),
        (NotificationState::Queued, 4, 4)
    );
    assert!(n.all_queued);
    assert_eq!(n.started_ms, None);

    record(&*store, &[started(ids[0], T0 + 20)]);
    let n = get(&*store, id);
    assert_eq!(
        (n.state, n.started_ms),
        (NotificationState::Sending, Some(T0 + 20))
    );

    record(
        &*store,
        &[
            Outcome::Sent {
                id: ids[0],
                message_id: "m0".into(),
                at_ms: T0 + 30,
            },
            Outcome::Failed {
                id: ids[1],
                error: "bad".into(),
                at_ms: T0 + 30,
            },
            Outcome::DeliveredUnconfirmed {
                id: ids[2],
                at_ms: T0 + 30,
            },
        ],
    );
    let n = get(&*store, id);
    assert_eq!(n.state, NotificationState::Sending);
    assert_eq!(
        (n.totals.sent, n.totals.failed, n.totals.unconfirmed),
        (1, 1, 1)
    );
    assert_eq!(n.totals.pending(), 1);

    record(
        &*store,
        &[Outcome::Refused {
            id: ids[3],
            reason: "policy".into(),
            at_ms: T0 + 40,
        }],
    );
    let n = get(&*store, id);
    assert_eq!(n.state, NotificationState::Done);
    assert_eq!(n.totals.refused, 1);
    assert_eq!(n.finished_ms, Some(T0 + 40));
    assert_eq!(n.totals.pending(), 0);
    let err = store.cancel_notification(&page(), id, T0 + 50).unwrap_err();
    assert!(
        matches!(err, StoreError::NotificationFinished { state: "done", .. }),
        "{err}"
    );
    assert_consistent(&store);
}

fn a_notification_without_holders_is_done_at_once_and_counts_no_token_and_expired() {
    let (_dir, store) = temp_store();
    let t = topic_with_holders(&*store, 0);
    store
        .add_token(&page(), &psid(9), token(&t, "old", T0, T0 + 5), T0)
        .unwrap();
    let (id, ids) = notify(&*store, &t, T0 + 10);
    assert!(ids.is_empty());
    let n = get(&*store, id);
    assert_eq!(n.state, NotificationState::Done);
    assert_eq!((n.totals.queued, n.totals.expired), (0, 1));
}

fn cancel_removes_unsent_messages_and_gives_their_tokens_back() {
    let (_dir, store) = temp_store();
    let t = topic_with_holders(&*store, 5);
    let (id, ids) = notify(&*store, &t, T0 + 10);
    // One message sent, one whose send started (it may reach Messenger: it finishes normally).
    record(
        &*store,
        &[started(ids[0], T0 + 20), started(ids[1], T0 + 20)],
    );
    record(
        &*store,
        &[Outcome::Sent {
            id: ids[0],
            message_id: "m0".into(),
            at_ms: T0 + 21,
        }],
    );
    assert_eq!(ledger(&*store, &t, T0 + 30).spent, 5);

    let cancel = store.cancel_notification(&page(), id, T0 + 30).unwrap();
    assert_eq!((cancel.removed, cancel.tokens_restored), (3, 3));
    let n = cancel.notification;
    assert_eq!(n.state, NotificationState::Cancelled);
    assert_eq!(
        (n.totals.sent, n.totals.cancelled, n.totals.pending()),
        (1, 3, 1)
    );
    assert_eq!(n.finished_ms, Some(T0 + 30));

    // The removed messages are gone from the outbox; the started one is still due.
    let due: Vec<OutboxId> = store
        .due_outbound(T0 + 30, 100)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(due, vec![ids[1]]);
    assert_eq!(store.outbox_stats().unwrap().pending, 1);
    for m in &ids[2..] {
        assert_eq!(store.outbound(*m).unwrap(), None);
    }
    // Tokens of the cancelled messages are usable again; the ledger moved them back.
    let l = ledger(&*store, &t, T0 + 30);
    assert_eq!((l.issued, l.usable, l.spent), (5, 3, 2));
    assert_eq!(l.days.last().unwrap().sends, 2);
    let holders = store.topic_holders(&page(), &t, T0 + 30).unwrap();
    assert_eq!(holders.len(), 3);

    // The started one finishes normally and counts; the state stays cancelled.
    record(
        &*store,
        &[Outcome::Sent {
            id: ids[1],
            message_id: "m1".into(),
            at_ms: T0 + 40,
        }],
    );
    let n = get(&*store, id);
    assert_eq!(
        (n.state, n.totals.sent, n.totals.pending()),
        (NotificationState::Cancelled, 2, 0)
    );
    let err = store.cancel_notification(&page(), id, T0 + 50).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotificationFinished {
                state: "cancelled",
                ..
            }
        ),
        "{err}"
    );

    // A second notification reaches exactly the subscribers whose tokens came back.
    let (second, again) = notify(&*store, &t, T0 + 60);
    assert_eq!(again.len(), 3);
    assert_eq!(get(&*store, second).totals.queued, 3);
    assert_eq!(ledger(&*store, &t, T0 + 60).usable, 0);
    assert_consistent(&store);
}

fn cancel_of_an_unknown_notification_is_not_found() {
    let (_dir, store) = temp_store();
    topic_with_holders(&*store, 0);
    let err = store
        .cancel_notification(&page(), NotificationId(424_242), T0)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotificationNotFound { .. }),
        "{err}"
    );
    assert_eq!(
        store
            .notification(&page(), NotificationId(424_242))
            .unwrap(),
        None
    );
}

fn totals_survive_a_reopen_and_the_rest_drains_to_done() {
    let dir = temp_location();
    let (id, ids, t) = {
        let store = reopen(&dir);
        let t = topic_with_holders(&*store, 3);
        let (id, ids) = notify(&*store, &t, T0 + 10);
        record(&*store, &[started(ids[0], T0 + 20)]);
        record(
            &*store,
            &[Outcome::Sent {
                id: ids[0],
                message_id: "m0".into(),
                at_ms: T0 + 21,
            }],
        );
        store.flush().unwrap();
        (id, ids, t)
    };
    let store = reopen(&dir);
    let n = get(&*store, id);
    assert_eq!(n.state, NotificationState::Sending);
    assert_eq!(
        (n.totals.queued, n.totals.sent, n.totals.pending()),
        (3, 1, 2)
    );
    let listed = store.notifications(&page(), Some(&t)).unwrap();
    assert_eq!(listed, vec![n]);
    assert!(
        store
            .notifications(&page(), Some(&TopicId::from("other")))
            .unwrap()
            .is_empty()
    );
    for m in &ids[1..] {
        record(&*store, &[started(*m, T0 + 30)]);
        record(
            &*store,
            &[Outcome::Sent {
                id: *m,
                message_id: "m".into(),
                at_ms: T0 + 31,
            }],
        );
    }
    let n = get(&*store, id);
    assert_eq!((n.state, n.totals.sent), (NotificationState::Done, 3));
    assert_eq!(ledger(&*store, &t, T0 + 40).spent, 3);
}

/// A flow notification with `runs` expected runs (`expired` tokens swept before them).
fn flow_notification(store: &dyn Store, t: &TopicId, runs: u64, expired: u64) -> NotificationId {
    let record = store
        .create_notification(
            &page(),
            t,
            &NotificationContent::Flow { flow: "f".into() },
            T0,
        )
        .unwrap();
    let expected = store
        .expect_notification_runs(&page(), record.id, runs, expired, T0)
        .unwrap();
    assert_eq!(expected.runs.expected, Some(runs));
    record.id
}

/// Commits subscriber `n`'s run of notification `id` with one token send per `sends`, plus
/// `no_token` sends its step skipped; returns the queued ids.
fn run_step(
    store: &dyn Store,
    t: &TopicId,
    id: NotificationId,
    n: u32,
    sends: usize,
    no_token: u64,
    failed: bool,
) -> Vec<OutboxId> {
    store
        .commit_step(StepCommit {
            event: Some(EventId(format!("notify:{id}:{n}"))),
            outbound: vec![token_message(t); sends],
            notification_run: Some(NotificationRun {
                notification: id,
                no_token,
                failed,
            }),
            ..bare_commit(&psid(n), Session::default(), T0 + 1)
        })
        .unwrap()
        .outbox_ids
}

fn flow_runs_count_in_their_commits_and_the_last_one_closes_the_queuing() {
    let (_dir, store) = temp_store();
    let t = topic_with_holders(&*store, 3);
    let id = flow_notification(&*store, &t, 3, 2);
    let a = run_step(&*store, &t, id, 0, 1, 0, false);
    // A send the step skipped for want of a token counts as no_token.
    let b = run_step(&*store, &t, id, 1, 1, 1, false);
    let n = get(&*store, id);
    assert_eq!((n.runs.done, n.all_queued), (2, false));
    assert_eq!(
        (n.totals.queued, n.totals.no_token, n.totals.expired),
        (2, 1, 2)
    );
    assert_eq!(
        store.outbound(a[0]).unwrap().unwrap().notification,
        Some(id)
    );
    record(
        &*store,
        &[Outcome::Sent {
            id: a[0],
            message_id: "m".into(),
            at_ms: T0 + 2,
        }],
    );
    // The last run (it failed) closes the queuing; one message is still pending.
    assert!(run_step(&*store, &t, id, 2, 0, 0, true).is_empty());
    let n = get(&*store, id);
    assert_eq!(
        (n.state, n.all_queued, n.runs.done, n.runs.failed),
        (NotificationState::Sending, true, 3, 1)
    );
    assert_eq!(n.runs.first_failed, Some(psid(2)));
    record(
        &*store,
        &[Outcome::Sent {
            id: b[0],
            message_id: "m".into(),
            at_ms: T0 + 4,
        }],
    );
    let n = get(&*store, id);
    assert_eq!((n.state, n.totals.sent), (NotificationState::Done, 2));
    assert_eq!(ledger(&*store, &t, T0 + 5).spent, 2);
    assert_consistent(&store);
}

fn runs_that_commit_before_their_count_is_set_close_it_when_it_is() {
    let (_dir, store) = temp_store();
    let t = topic_with_holders(&*store, 1);
    let record_ = store
        .create_notification(
            &page(),
            &t,
            &NotificationContent::Flow { flow: "f".into() },
            T0,
        )
        .unwrap();
    run_step(&*store, &t, record_.id, 0, 0, 1, false);
    assert!(!get(&*store, record_.id).all_queued);
    let n = store
        .expect_notification_runs(&page(), record_.id, 1, 0, T0 + 2)
        .unwrap();
    assert_eq!(
        (n.state, n.all_queued, n.totals.no_token),
        (NotificationState::Done, true, 1)
    );
    // No runs at all: done at once.
    let empty = flow_notification(&*store, &t, 0, 0);
    assert_eq!(get(&*store, empty).state, NotificationState::Done);
}

fn a_run_journaled_again_after_a_crash_counts_once() {
    let (_dir, store) = temp_store();
    let t = topic_with_holders(&*store, 1);
    let id = flow_notification(&*store, &t, 1, 0);
    run_step(&*store, &t, id, 0, 1, 0, false);
    // The same run's event again (a replay): refused as processed, nothing counted twice.
    let again = store.commit_steps(vec![StepCommit {
        event: Some(EventId(format!("notify:{id}:0"))),
        outbound: vec![token_message(&t)],
        notification_run: Some(NotificationRun {
            notification: id,
            no_token: 0,
            failed: false,
        }),
        ..bare_commit(&psid(0), Session::default(), T0 + 3)
    }]);
    assert!(
        matches!(
            again.unwrap().as_slice(),
            [Err(StoreError::EventAlreadyProcessed { .. })]
        ),
        "a replayed run is refused as processed"
    );
    let n = get(&*store, id);
    assert_eq!((n.runs.done, n.totals.queued), (1, 1));
}

fn messages_queued_after_a_cancel_are_removed_at_once_and_their_tokens_kept() {
    let (_dir, store) = temp_store();
    let t = topic_with_holders(&*store, 2);
    let id = flow_notification(&*store, &t, 2, 0);
    let cancel = store.cancel_notification(&page(), id, T0 + 1).unwrap();
    assert_eq!(cancel.removed, 0);
    // A flow run that commits after the cancel: its message never goes out.
    let ids = run_step(&*store, &t, id, 0, 1, 0, false);
    assert!(
        ids.is_empty(),
        "removed in the commit that queued it: {ids:?}"
    );
    let n = get(&*store, id);
    assert_eq!(
        (n.state, n.totals.queued, n.totals.cancelled),
        (NotificationState::Cancelled, 1, 1)
    );
    assert_eq!(ledger(&*store, &t, T0 + 3).usable, 2);
    assert_consistent(&store);
}

fn finished_notifications_are_swept_after_the_history_window_running_ones_never() {
    let (_dir, store) = temp_store();
    let t = topic_with_holders(&*store, 2);
    let (done, ids) = notify(&*store, &t, T0 + 10);
    for m in &ids {
        record(
            &*store,
            &[Outcome::Sent {
                id: *m,
                message_id: "m".into(),
                at_ms: T0 + 20,
            }],
        );
    }
    assert_eq!(get(&*store, done).state, NotificationState::Done);
    store
        .add_token(&page(), &psid(7), token(&t, "late", T0, T0 + YEAR), T0)
        .unwrap();
    let (running, _) = notify(&*store, &t, T0 + 30);
    let policy = RetentionPolicy {
        dedup_ms: DAY_MS,
        history_ms: DAY_MS,
    };

    let report = store.sweep_retention(T0 + DAY_MS, &policy, 1_000).unwrap();
    assert_eq!(report.notifications, 0, "inside the window: {report:?}");
    let report = store
        .sweep_retention(T0 + 2 * DAY_MS, &policy, 1_000)
        .unwrap();
    assert_eq!(report.notifications, 1, "{report:?}");
    assert_eq!(store.notification(&page(), done).unwrap(), None);
    assert_eq!(get(&*store, running).state, NotificationState::Queued);
    assert_consistent(&store);
}

on_both_backends!(
    totals_survive_a_reopen_and_the_rest_drains_to_done,
    totals_and_state_move_with_each_outcome_to_done,
    a_notification_without_holders_is_done_at_once_and_counts_no_token_and_expired,
    cancel_removes_unsent_messages_and_gives_their_tokens_back,
    cancel_of_an_unknown_notification_is_not_found,
    flow_runs_count_in_their_commits_and_the_last_one_closes_the_queuing,
    runs_that_commit_before_their_count_is_set_close_it_when_it_is,
    a_run_journaled_again_after_a_crash_counts_once,
    messages_queued_after_a_cancel_are_removed_at_once_and_their_tokens_kept,
    finished_notifications_are_swept_after_the_history_window_running_ones_never,
);
