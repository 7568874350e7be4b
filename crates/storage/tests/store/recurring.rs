//! Recurring tokens: opt-in, the period rule of the recurring notification pass, stop/resume,
//! retire on a permanent send error, and the ledger's separate counters.

use super::*;
use botflow_flow::Frequency;
use botflow_storage::{
    NotificationContent, NotificationId, NotificationState, OutboundStatus, OutboxId, Outcome,
    RecurringChange, RecurringChanged, RecurringNotifyOutcome, RecurringOptin, RecurringPass,
    RecurringStatus, StoreError, TokenSendOutcome,
};
use std::collections::HashSet;

const HOUR: u64 = 3_600_000;
const CAP: u64 = 48 * HOUR;

fn optin(topic: &TopicId, token: &str, frequency: Frequency, at: u64) -> RecurringChange {
    RecurringChange::Optin(RecurringOptin {
        topic: topic.clone(),
        token: token.into(),
        frequency,
        timezone: Some("UTC".into()),
        expires_ms: None,
        created_ms: at,
    })
}

fn body(psid: &Psid) -> Value {
    json!({"to": psid.as_str(), "text": "Deals!"})
}

/// The recurring pass of a new text notification at `now`, skipping `reached`.
fn notify(
    store: &dyn Store,
    topic: &TopicId,
    reached: &[Psid],
    now: u64,
) -> RecurringNotifyOutcome {
    let reached: HashSet<Psid> = reached.iter().cloned().collect();
    let record = store
        .create_notification(&page(), topic, &NotificationContent::Text, now)
        .unwrap();
    let pass = RecurringPass {
        notification: record.id,
        reached: &reached,
        cap_ms: CAP,
    };
    let outcome = store
        .notify_topic_recurring(&page(), topic, &pass, &body, now)
        .unwrap();
    store
        .close_notification_queuing(&page(), record.id, now)
        .unwrap();
    outcome
}

fn pending_tokens(store: &dyn Store, p: &Psid) -> Vec<String> {
    store
        .messages_for(&page(), p)
        .unwrap()
        .into_iter()
        .filter(|m| m.status.is_pending())
        .map(|m| m.token.unwrap_or_default())
        .collect()
}

fn a_recurring_token_pays_once_per_period_and_is_never_spent() {
    let (_dir, store) = temp_store();
    let t = store.create_topic(&page(), "Weekly deals", 1).unwrap().id;
    let (a, b) = (psid(1), psid(2));
    let change = optin(&t, "rec-a", Frequency::Weekly, 10);
    assert_eq!(
        store.recurring_change(&page(), &a, &change, 10).unwrap(),
        RecurringChanged::Stored
    );
    // A redelivered opt-in changes nothing.
    assert_eq!(
        store.recurring_change(&page(), &a, &change, 11).unwrap(),
        RecurringChanged::Unchanged
    );
    store
        .recurring_change(&page(), &b, &optin(&t, "rec-b", Frequency::Daily, 10), 10)
        .unwrap();

    // b was reached by an OTN token in this notification: only a is paid by its recurring token.
    let first = notify(&*store, &t, std::slice::from_ref(&b), 1_000);
    assert_eq!((first.queued, first.skipped), (1, 1));
    assert_eq!(pending_tokens(&*store, &a), vec!["rec-a"]);
    let stored = store.recurring_token(&page(), "rec-a").unwrap().unwrap();
    assert_eq!(stored.status, RecurringStatus::Active);
    assert_eq!(stored.last_sent_ms, Some(1_000));

    // Inside the week nothing goes to a; b (daily, never sent) gets its first message.
    let second = notify(&*store, &t, &[], 1_000 + 6 * 24 * HOUR);
    assert_eq!((second.queued, second.not_due), (1, 1));
    assert_eq!(pending_tokens(&*store, &a).len(), 1);
    assert_eq!(pending_tokens(&*store, &b), vec!["rec-b"]);
    // Daily, but the 48 h cap holds b back one day later.
    let third = notify(&*store, &t, &[], 1_000 + 7 * 24 * HOUR);
    assert_eq!((third.queued, third.not_due), (1, 1));
    assert_eq!(pending_tokens(&*store, &a).len(), 2);

    let ledger = store
        .topic_ledger(&page(), &t, 1_000 + 7 * 24 * HOUR)
        .unwrap()
        .unwrap();
    assert_eq!(ledger.recurring.issued, 2);
    assert_eq!(ledger.recurring.active, 2);
    assert_eq!(ledger.recurring.sends, 3);
    // One-time tokens are counted apart and untouched.
    assert_eq!((ledger.issued, ledger.spent), (0, 0));
    let today = ledger.days.last().unwrap();
    assert_eq!((today.recurring_sends, today.sends), (1, 0));
    let first_day = ledger.days.iter().find(|d| d.day == 0).unwrap();
    assert_eq!((first_day.recurring_opt_ins, first_day.opt_ins), (2, 0));
}

fn stop_holds_sends_until_resume_and_a_newer_optin_replaces_the_token() {
    let (_dir, store) = temp_store();
    let t = store.create_topic(&page(), "News", 1).unwrap().id;
    let a = psid(1);
    store
        .recurring_change(&page(), &a, &optin(&t, "r1", Frequency::Daily, 5), 5)
        .unwrap();
    let stop = RecurringChange::Stop { token: "r1".into() };
    assert_eq!(
        store.recurring_change(&page(), &a, &stop, 6).unwrap(),
        RecurringChanged::Stopped
    );
    assert_eq!(
        store.recurring_change(&page(), &a, &stop, 7).unwrap(),
        RecurringChanged::Unchanged
    );
    let stopped = notify(&*store, &t, &[], 100);
    assert_eq!((stopped.queued, stopped.stopped), (0, 1));
    let ledger = store.topic_ledger(&page(), &t, 100).unwrap().unwrap();
    assert_eq!((ledger.recurring.active, ledger.recurring.stopped), (0, 1));

    let resume = RecurringChange::Resume { token: "r1".into() };
    assert_eq!(
        store.recurring_change(&page(), &a, &resume, 200).unwrap(),
        RecurringChanged::Resumed
    );
    assert_eq!(notify(&*store, &t, &[], 300).queued, 1);

    // A newer opt-in of the same topic replaces (retires) the older token.
    store
        .recurring_change(&page(), &a, &optin(&t, "r2", Frequency::Monthly, 400), 400)
        .unwrap();
    let old = store.recurring_token(&page(), "r1").unwrap().unwrap();
    assert!(matches!(old.status, RecurringStatus::Retired { .. }));
    assert_eq!(
        store.recurring_change(&page(), &a, &resume, 401).unwrap(),
        RecurringChanged::UnknownToken
    );
    assert_eq!(notify(&*store, &t, &[], 500).queued, 1);
    assert_eq!(pending_tokens(&*store, &a), vec!["r1", "r2"]);
    let ledger = store.topic_ledger(&page(), &t, 500).unwrap().unwrap();
    assert_eq!(
        (
            ledger.recurring.issued,
            ledger.recurring.active,
            ledger.recurring.retired
        ),
        (2, 1, 1)
    );
}

fn a_permanent_send_error_or_the_expiry_retires_the_token() {
    let (_dir, store) = temp_store();
    let t = store.create_topic(&page(), "Alerts", 1).unwrap().id;
    let (a, b) = (psid(1), psid(2));
    store
        .recurring_change(&page(), &a, &optin(&t, "ra", Frequency::Daily, 1), 1)
        .unwrap();
    let expiring = RecurringChange::Optin(RecurringOptin {
        expires_ms: Some(50),
        ..match optin(&t, "rb", Frequency::Daily, 1) {
            RecurringChange::Optin(o) => o,
            _ => unreachable!(),
        }
    });
    store.recurring_change(&page(), &b, &expiring, 1).unwrap();

    let outcome = notify(&*store, &t, &[], 100);
    assert_eq!((outcome.queued, outcome.expired), (1, 1));
    let rb = store.recurring_token(&page(), "rb").unwrap().unwrap();
    assert!(
        matches!(rb.status, RecurringStatus::Retired { ref reason, .. } if reason == "expired")
    );

    let message = store.messages_for(&page(), &a).unwrap().remove(0);
    assert_eq!(
        message.kind,
        OutboundKind::RecurringToken { topic: t.clone() }
    );
    store
        .mark_failed(message.id, "(#100) The notification token has expired", 120)
        .unwrap();
    assert!(matches!(
        store.outbound(message.id).unwrap().unwrap().status,
        OutboundStatus::Failed { .. }
    ));
    let ra = store.recurring_token(&page(), "ra").unwrap().unwrap();
    assert!(
        matches!(ra.status, RecurringStatus::Retired { ref reason, .. } if reason.contains("expired"))
    );
    // Retired tokens are no longer holders: a later notification reaches nobody.
    assert_eq!(
        notify(&*store, &t, &[], 10 * CAP),
        RecurringNotifyOutcome::default()
    );
    let ledger = store.topic_ledger(&page(), &t, 10 * CAP).unwrap().unwrap();
    assert_eq!(
        (
            ledger.recurring.issued,
            ledger.recurring.active,
            ledger.recurring.retired
        ),
        (2, 0, 2)
    );
}

fn an_optin_for_a_missing_topic_or_a_stop_of_an_unknown_token_stores_nothing() {
    let (_dir, store) = temp_store();
    let a = psid(1);
    let missing = TopicId::from("no-such-topic");
    assert_eq!(
        store
            .recurring_change(&page(), &a, &optin(&missing, "x", Frequency::Daily, 1), 1)
            .unwrap(),
        RecurringChanged::TopicMissing
    );
    assert!(store.recurring_token(&page(), "x").unwrap().is_none());
    assert_eq!(
        store
            .recurring_change(&page(), &a, &RecurringChange::Stop { token: "y".into() }, 1)
            .unwrap(),
        RecurringChanged::UnknownToken
    );
}

/// One thing that happens to a subscriber's recurring token in the property test.
#[derive(Debug, Clone)]
enum Op {
    /// Time passes, in hours.
    Advance(u64),
    Notify,
    Stop,
    Resume,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (1u64..200).prop_map(Op::Advance),
        4 => Just(Op::Notify),
        1 => Just(Op::Stop),
        1 => Just(Op::Resume),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..proptest::prelude::ProptestConfig::default() })]

    /// Whatever happens, sends on one token are at least the longer of its period and the cap
    /// apart, none is queued while it is stopped, and the ledger's sends equal the messages.
    #[test]
    fn sends_keep_the_period_and_stopped_tokens_never_send(
        frequency in proptest::sample::select(vec![Frequency::Daily, Frequency::Weekly, Frequency::Monthly]),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let (_dir, store) = temp_sled();
        let t = store.create_topic(&page(), "Prop", 1).unwrap().id;
        let a = psid(1);
        store.recurring_change(&page(), &a, &optin(&t, "rp", frequency, 1), 1).unwrap();
        let (mut now, mut stopped, mut sends) = (1_000u64, false, Vec::new());
        for op in ops {
            match op {
                Op::Advance(hours) => now += hours * HOUR,
                Op::Stop => {
                    store.recurring_change(&page(), &a, &RecurringChange::Stop { token: "rp".into() }, now).unwrap();
                    stopped = true;
                }
                Op::Resume => {
                    store.recurring_change(&page(), &a, &RecurringChange::Resume { token: "rp".into() }, now).unwrap();
                    stopped = false;
                }
                Op::Notify => {
                    let outcome = notify(&store, &t, &[], now);
                    proptest::prop_assert!(!(stopped && outcome.queued > 0), "sent while stopped");
                    if outcome.queued == 1 {
                        sends.push(now);
                    }
                }
            }
        }
        let gap = frequency.period_ms().max(CAP);
        for pair in sends.windows(2) {
            proptest::prop_assert!(pair[1] - pair[0] >= gap, "sends {pair:?} closer than {gap}");
        }
        proptest::prop_assert_eq!(pending_tokens(&store, &a).len(), sends.len());
        let ledger = store.topic_ledger(&page(), &t, now).unwrap().unwrap();
        proptest::prop_assert_eq!(ledger.recurring.sends, sends.len() as u64);
    }
}

/// A whole text notification at `now` as the runtime makes it: the one-time pass, then the
/// recurring pass for the holders it did not reach, then the queuing closed. Returns the
/// notification's id and its pending messages' ids.
fn notify_text_both(
    store: &dyn Store,
    topic: &TopicId,
    now: u64,
) -> (NotificationId, Vec<OutboxId>) {
    let record = store
        .create_notification(&page(), topic, &NotificationContent::Text, now)
        .unwrap();
    let reached: HashSet<Psid> = store
        .topic_holders(&page(), topic, now)
        .unwrap()
        .into_iter()
        .collect();
    store
        .notify_topic(&page(), topic, record.id, &body, now)
        .unwrap();
    let pass = RecurringPass {
        notification: record.id,
        reached: &reached,
        cap_ms: CAP,
    };
    store
        .notify_topic_recurring(&page(), topic, &pass, &body, now)
        .unwrap();
    store
        .close_notification_queuing(&page(), record.id, now)
        .unwrap();
    let ids = store
        .due_outbound(now, 100)
        .unwrap()
        .into_iter()
        .filter(|m| m.notification == Some(record.id))
        .map(|m| m.id)
        .collect();
    (record.id, ids)
}

fn one_notification_holds_both_passes_and_a_cancel_gives_the_recurring_period_back() {
    let (_dir, store) = temp_store();
    let t0 = 1_000;
    store.ensure_page(&page(), t0).unwrap();
    let t = store.create_topic(&page(), "Deals", t0).unwrap().id;
    let (otn, rec) = (psid(1), psid(2));
    let year = 365 * 24 * HOUR;
    store
        .add_token(&page(), &otn, token(&t, "otn-1", t0, t0 + year), t0)
        .unwrap();
    store
        .add_token(&page(), &otn, token(&t, "otn-2", t0, t0 + year), t0)
        .unwrap();
    // The OTN holder also holds a recurring token: one message per subscriber, OTN first.
    for (who, value) in [(&otn, "rec-otn"), (&rec, "rec-1")] {
        store
            .recurring_change(&page(), who, &optin(&t, value, Frequency::Weekly, t0), t0)
            .unwrap();
    }

    // Both messages belong to one notification, whose totals reach done with their outcomes.
    let (first, ids) = notify_text_both(&*store, &t, t0);
    assert_eq!(ids.len(), 2);
    let n = store.notification(&page(), first).unwrap().unwrap();
    assert_eq!(
        (
            n.state,
            n.totals.queued,
            n.totals.recurring,
            n.totals.pending()
        ),
        (NotificationState::Queued, 2, 1, 2)
    );
    let sent = |id: OutboxId| Outcome::Sent {
        id,
        message_id: format!("m{}", id.0),
        at_ms: t0 + 5,
    };
    for result in store.mark_outcomes(&[sent(ids[0])]).unwrap() {
        result.unwrap();
    }
    let n = store.notification(&page(), first).unwrap().unwrap();
    assert_eq!((n.state, n.totals.sent), (NotificationState::Sending, 1));
    for result in store.mark_outcomes(&[sent(ids[1])]).unwrap() {
        result.unwrap();
    }
    let n = store.notification(&page(), first).unwrap().unwrap();
    assert_eq!(
        (n.state, n.totals.sent, n.totals.pending()),
        (NotificationState::Done, 2, 0)
    );
    let last_send = store.recurring_token(&page(), "rec-1").unwrap().unwrap();
    assert_eq!(last_send.last_sent_ms, Some(t0));

    // A week later the next notification is cancelled before anything is sent.
    let t1 = t0 + 7 * 24 * HOUR;
    let (second, ids) = notify_text_both(&*store, &t, t1);
    assert_eq!(ids.len(), 2);
    assert_eq!(
        store
            .recurring_token(&page(), "rec-1")
            .unwrap()
            .unwrap()
            .last_sent_ms,
        Some(t1)
    );
    let cancel = store.cancel_notification(&page(), second, t1 + 1).unwrap();
    assert_eq!((cancel.removed, cancel.tokens_restored), (2, 2));
    assert_eq!(
        (
            cancel.notification.totals.cancelled,
            cancel.notification.totals.pending()
        ),
        (2, 0)
    );
    for id in &ids {
        assert_eq!(store.outbound(*id).unwrap(), None);
    }
    // The OTN token is usable again; the recurring token's last send is the one that left.
    assert_eq!(
        store.topic_holders(&page(), &t, t1 + 1).unwrap(),
        vec![otn.clone()]
    );
    let token_now = store.recurring_token(&page(), "rec-1").unwrap().unwrap();
    assert_eq!(token_now.last_sent_ms, Some(t0));
    let ledger = store.topic_ledger(&page(), &t, t1 + 1).unwrap().unwrap();
    assert_eq!((ledger.usable, ledger.recurring.sends), (1, 1));

    // So the next notification reaches both again, at once.
    let (third, ids) = notify_text_both(&*store, &t, t1 + 2);
    assert_eq!(ids.len(), 2);
    let n = store.notification(&page(), third).unwrap().unwrap();
    assert_eq!((n.totals.queued, n.totals.recurring), (2, 1));
    assert_eq!(pending_tokens(&*store, &rec), vec!["rec-1"]);
    assert_eq!(pending_tokens(&*store, &otn).len(), 1);
    assert_consistent(&store);
}

fn recurring_message(topic: &TopicId) -> NewOutbound {
    NewOutbound {
        body: json!({"message": {"text": "deals"}}),
        kind: OutboundKind::RecurringToken {
            topic: topic.clone(),
        },
    }
}

fn a_step_pays_with_the_recurring_token_and_is_refused_when_it_stopped_or_paid_since_the_read() {
    let (_dir, store) = temp_store();
    let t = store.create_topic(&page(), "Weekly deals", 1).unwrap().id;
    let (a, b) = (psid(1), psid(2));
    store
        .recurring_change(&page(), &a, &optin(&t, "rec-a", Frequency::Weekly, 10), 10)
        .unwrap();
    store
        .recurring_change(&page(), &b, &optin(&t, "rec-b", Frequency::Weekly, 10), 10)
        .unwrap();
    let commit = |p: &Psid, now: u64| StepCommit {
        outbound: vec![recurring_message(&t)],
        ..bare_commit(p, Session::default(), now)
    };

    // a's token may pay: the message carries it and the send is recorded (nothing spent).
    let committed = store.commit_step(commit(&a, 1_000)).unwrap();
    assert_eq!(committed.outbox_ids.len(), 1);
    assert!(matches!(
        &committed.token_sends[..],
        [TokenSendOutcome::RecurringQueued { token, .. }] if token == "rec-a"
    ));
    assert_eq!(pending_tokens(&*store, &a), vec!["rec-a"]);
    let stored = store.recurring_token(&page(), "rec-a").unwrap().unwrap();
    assert_eq!(
        (stored.last_sent_ms, stored.status),
        (Some(1_000), RecurringStatus::Active)
    );

    // Paid again inside the week (as after a text notification's pass between read and
    // commit): refused whole, no session written, no message queued.
    let mut session = Session::default();
    session.tags.insert("seen".into());
    let again = store.commit_step(StepCommit {
        session: session.clone(),
        ..commit(&a, 2_000)
    });
    assert!(matches!(&again, Err(StoreError::TokenGone { topic, .. }) if topic == &t));
    assert_eq!(pending_tokens(&*store, &a).len(), 1);
    assert_eq!(
        store.load_session(&page(), &a).unwrap(),
        Some(Session::default())
    );

    // b stopped between the read and the commit: refused too; after a resume it pays.
    store
        .recurring_change(
            &page(),
            &b,
            &RecurringChange::Stop {
                token: "rec-b".into(),
            },
            1_500,
        )
        .unwrap();
    let stopped = store.commit_step(commit(&b, 2_000));
    assert!(matches!(&stopped, Err(StoreError::TokenGone { topic, .. }) if topic == &t));
    assert!(pending_tokens(&*store, &b).is_empty());
    store
        .recurring_change(
            &page(),
            &b,
            &RecurringChange::Resume {
                token: "rec-b".into(),
            },
            2_500,
        )
        .unwrap();
    // Two recurring sends of one topic in one step: the token pays once, so refused.
    let twice = store.commit_step(StepCommit {
        outbound: vec![recurring_message(&t), recurring_message(&t)],
        ..bare_commit(&b, Session::default(), 3_000)
    });
    assert!(matches!(&twice, Err(StoreError::TokenGone { .. })));
    store.commit_step(commit(&b, 3_000)).unwrap();
    assert_eq!(pending_tokens(&*store, &b), vec!["rec-b"]);
    let ledger = store.topic_ledger(&page(), &t, 3_000).unwrap().unwrap();
    assert_eq!(ledger.recurring.sends, 2);
    assert_consistent(&store);
}

on_both_backends!(
    a_recurring_token_pays_once_per_period_and_is_never_spent,
    stop_holds_sends_until_resume_and_a_newer_optin_replaces_the_token,
    a_permanent_send_error_or_the_expiry_retires_the_token,
    an_optin_for_a_missing_topic_or_a_stop_of_an_unknown_token_stores_nothing,
    one_notification_holds_both_passes_and_a_cancel_gives_the_recurring_period_back,
    a_step_pays_with_the_recurring_token_and_is_refused_when_it_stopped_or_paid_since_the_read,
);
