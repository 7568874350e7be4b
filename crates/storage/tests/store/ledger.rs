//! The per-topic token ledger: every token transition, the daily series, and that it survives a
//! retention sweep, a reopen and a database written before it existed.

use super::*;
use botflow_storage::{
    DAY_MS, LEDGER_DAYS, OutboundStatus, Outcome, RetentionPolicy, TokenAdded, TokenMark,
    TopicLedger,
};

/// A time well into the epoch, at the start of a UTC day.
const T0: u64 = 20_000 * DAY_MS;
const YEAR: u64 = 365 * DAY_MS;

fn ledger(store: &dyn Store, topic: &TopicId, now_ms: u64) -> TopicLedger {
    store.topic_ledger(&page(), topic, now_ms).unwrap().unwrap()
}

/// The counters of a ledger, in the order issued, usable, spent, expired, invalidated,
/// delivered-unconfirmed.
fn counts(ledger: &TopicLedger) -> [u64; 6] {
    [
        ledger.issued,
        ledger.usable,
        ledger.spent,
        ledger.expired,
        ledger.invalidated,
        ledger.delivered_unconfirmed,
    ]
}

fn topic(store: &dyn Store) -> TopicId {
    store.ensure_page(&page(), T0).unwrap();
    store.create_topic(&page(), "Restock", T0).unwrap().id
}

fn opt_in(store: &dyn Store, n: u32, t: &TopicId, value: &str, at: u64) -> TokenAdded {
    store
        .add_token(&page(), &psid(n), token(t, value, at, at + YEAR), at)
        .unwrap()
}

/// Notifies the topic at `at`; returns the queued messages' ids.
fn notify(store: &dyn Store, t: &TopicId, at: u64) -> Vec<botflow_storage::OutboxId> {
    let body_for = |_: &Psid| json!({"message": {"text": "back"}});
    notify_text(store, t, &body_for, at).unwrap();
    store
        .due_outbound(at, 100)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect()
}

fn an_opt_in_is_issued_and_usable_and_a_redelivery_or_unknown_topic_is_not_counted() {
    let (_dir, store) = temp_store();
    let t = topic(&*store);
    assert_eq!(counts(&ledger(&*store, &t, T0)), [0; 6]);

    assert_eq!(opt_in(&*store, 1, &t, "tok-1", T0), TokenAdded::New);
    assert_eq!(opt_in(&*store, 1, &t, "tok-1", T0), TokenAdded::Duplicate);
    let missing = TopicId::from("no-such-topic");
    let added = store
        .add_token(
            &page(),
            &psid(2),
            token(&missing, "tok-2", T0, T0 + YEAR),
            T0,
        )
        .unwrap();
    assert_eq!(added, TokenAdded::TopicMissing);
    // Already expired on arrival: issued and expired at once.
    let added = store
        .add_token(&page(), &psid(3), token(&t, "tok-3", T0 - YEAR, T0), T0)
        .unwrap();
    assert_eq!(added, TokenAdded::Expired);

    assert_eq!(counts(&ledger(&*store, &t, T0)), [2, 1, 0, 1, 0, 0]);
    assert_eq!(store.topic_ledger(&page(), &missing, T0).unwrap(), None);
    assert_consistent(&store);
}

fn a_send_spends_and_its_outcome_can_leave_it_delivered_unconfirmed_or_invalid() {
    let (_dir, store) = temp_store();
    let t = topic(&*store);
    for n in 1..=3 {
        opt_in(&*store, n, &t, &format!("tok-{n}"), T0);
    }
    let ids = notify(&*store, &t, T0 + 10);
    assert_eq!(ids.len(), 3);
    assert_eq!(counts(&ledger(&*store, &t, T0 + 10)), [3, 0, 3, 0, 0, 0]);

    let results = store
        .mark_outcomes(&[
            Outcome::DeliveredUnconfirmed {
                id: ids[0],
                at_ms: T0 + 20,
            },
            Outcome::Failed {
                id: ids[1],
                error: "(#10) token invalid".into(),
                at_ms: T0 + 20,
            },
            Outcome::Sent {
                id: ids[2],
                message_id: "m.3".into(),
                at_ms: T0 + 20,
            },
        ])
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // The failed send's token went from spent to invalidated; the unconfirmed one stays spent.
    assert_eq!(counts(&ledger(&*store, &t, T0 + 20)), [3, 0, 2, 0, 1, 1]);
    let today = ledger(&*store, &t, T0 + 20).days[LEDGER_DAYS - 1];
    assert_eq!((today.opt_ins, today.sends), (3, 3));
    assert_consistent(&store);
}

fn marking_by_hand_spends_or_invalidates_and_a_second_mark_counts_nothing() {
    let (_dir, store) = temp_store();
    let t = topic(&*store);
    opt_in(&*store, 1, &t, "tok-1", T0);
    opt_in(&*store, 2, &t, "tok-2", T0);
    assert!(
        store
            .mark_token(&page(), "tok-1", TokenMark::Spent, T0 + 1)
            .unwrap()
    );
    let invalid = TokenMark::Invalid {
        reason: "(#100) no longer valid".into(),
    };
    assert!(
        store
            .mark_token(&page(), "tok-2", invalid.clone(), T0 + 1)
            .unwrap()
    );
    assert!(!store.mark_token(&page(), "tok-2", invalid, T0 + 2).unwrap());
    assert!(
        !store
            .mark_token(&page(), "tok-1", TokenMark::Spent, T0 + 2)
            .unwrap()
    );
    assert_eq!(counts(&ledger(&*store, &t, T0 + 2)), [2, 0, 1, 0, 1, 0]);
    assert_eq!(ledger(&*store, &t, T0 + 2).days[LEDGER_DAYS - 1].sends, 1);
}

fn a_token_past_its_expiry_counts_as_expired_before_and_after_the_sweep() {
    let (_dir, store) = temp_store();
    let t = topic(&*store);
    store
        .add_token(&page(), &psid(1), token(&t, "short", T0, T0 + 100), T0)
        .unwrap();
    opt_in(&*store, 2, &t, "long", T0);
    assert_eq!(counts(&ledger(&*store, &t, T0 + 99)), [2, 2, 0, 0, 0, 0]);
    // Not swept yet: the ledger already shows it expired.
    assert_eq!(counts(&ledger(&*store, &t, T0 + 100)), [2, 1, 0, 1, 0, 0]);
    assert_eq!(store.expire_tokens(T0 + 100).unwrap(), 1);
    assert_eq!(counts(&ledger(&*store, &t, T0 + 100)), [2, 1, 0, 1, 0, 0]);
}

fn a_forced_delete_invalidates_the_usable_tokens_and_the_topic_keeps_its_final_ledger() {
    let (_dir, store) = temp_store();
    let t = topic(&*store);
    opt_in(&*store, 1, &t, "tok-1", T0);
    opt_in(&*store, 2, &t, "tok-2", T0);
    store
        .mark_token(&page(), "tok-1", TokenMark::Spent, T0 + 1)
        .unwrap();
    let deleted = store.delete_topic(&page(), &t, true, T0 + 2).unwrap();
    assert_eq!(deleted.invalidated_tokens, 1);
    assert_eq!(counts(&ledger(&*store, &t, T0 + 2)), [2, 0, 1, 0, 1, 0]);
}

fn the_daily_series_has_thirty_utc_days_ending_today() {
    let (_dir, store) = temp_store();
    let t = topic(&*store);
    let now = T0 + 40 * DAY_MS + 5;
    // One opt-in 31 days ago (outside), two 29 days ago (the oldest day shown), one today.
    opt_in(&*store, 1, &t, "old", now - 31 * DAY_MS);
    opt_in(&*store, 2, &t, "edge-a", now - 29 * DAY_MS);
    opt_in(&*store, 3, &t, "edge-b", now - 29 * DAY_MS);
    // Sends on the day before, then the opt-in of today.
    notify(&*store, &t, now - DAY_MS);
    opt_in(&*store, 4, &t, "today", now - 1);

    let days = ledger(&*store, &t, now).days;
    assert_eq!(days.len(), LEDGER_DAYS);
    let today = now / DAY_MS;
    assert_eq!(days[0].day, today - 29);
    assert_eq!(days[LEDGER_DAYS - 1].day, today);
    assert!(days.windows(2).all(|w| w[1].day == w[0].day + 1));
    let opt_ins: Vec<u64> = days.iter().map(|d| d.opt_ins).collect();
    let sends: Vec<u64> = days.iter().map(|d| d.sends).collect();
    let mut want_opt_ins = vec![0; LEDGER_DAYS];
    want_opt_ins[0] = 2;
    want_opt_ins[LEDGER_DAYS - 1] = 1;
    // The three subscribers who held a token the day before.
    let mut want_sends = vec![0; LEDGER_DAYS];
    want_sends[LEDGER_DAYS - 2] = 3;
    assert_eq!(opt_ins, want_opt_ins);
    assert_eq!(sends, want_sends);
    assert_eq!(ledger(&*store, &t, now).issued, 4);
}

fn the_ledger_survives_the_retention_sweep_and_a_reopen() {
    let dir = temp_location();
    let store = reopen(&dir);
    let t = topic(&*store);
    opt_in(&*store, 1, &t, "tok-1", T0);
    opt_in(&*store, 2, &t, "tok-2", T0);
    let ids = notify(&*store, &t, T0 + 1);
    let results = store
        .mark_outcomes(&[
            Outcome::DeliveredUnconfirmed {
                id: ids[0],
                at_ms: T0 + 2,
            },
            Outcome::Sent {
                id: ids[1],
                message_id: "m.2".into(),
                at_ms: T0 + 2,
            },
        ])
        .unwrap();
    assert!(results.iter().all(Result::is_ok));
    let before = ledger(&*store, &t, T0 + 2);
    assert_eq!(counts(&before), [2, 0, 2, 0, 0, 1]);

    let later = T0 + 60 * DAY_MS;
    let policy = RetentionPolicy {
        dedup_ms: 3 * DAY_MS,
        history_ms: 30 * DAY_MS,
    };
    let report = store.sweep_retention(later, &policy, 1_000).unwrap();
    assert_eq!((report.messages, report.tokens), (2, 2));
    assert_eq!(store.get_token(&page(), "tok-1").unwrap(), None);
    assert_eq!(counts(&ledger(&*store, &t, later)), counts(&before));
    drop(store);

    let store = reopen(&dir);
    assert_eq!(ledger(&*store, &t, T0 + 2), before);
    assert_eq!(counts(&ledger(&*store, &t, later)), counts(&before));
}

#[test]
fn a_database_written_before_the_ledger_gets_it_built_from_its_tokens_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = topic(&store);
    opt_in(&store, 1, &t, "tok-1", T0);
    opt_in(&store, 2, &t, "tok-2", T0 - DAY_MS);
    opt_in(&store, 3, &t, "tok-3", T0);
    let ids = notify(&store, &t, T0 + 1);
    store
        .mark_outcomes(&[Outcome::DeliveredUnconfirmed {
            id: ids[0],
            at_ms: T0 + 2,
        }])
        .unwrap();
    store
        .mark_outcomes(&[Outcome::Failed {
            id: ids[1],
            error: "(#10) invalid".into(),
            at_ms: T0 + 2,
        }])
        .unwrap();
    let built_live = ledger(&store, &t, T0 + 2);
    assert_eq!(counts(&built_live), [3, 0, 2, 0, 1, 1]);
    // Forget the ledger as a database of the previous release would not have it.
    let db = store.raw_db();
    db.drop_tree("ledger").unwrap();
    db.drop_tree("ledger_days").unwrap();
    db.open_tree("meta")
        .unwrap()
        .remove("ledger_built")
        .unwrap();
    db.flush().unwrap();
    drop(store);

    let store = open(dir.path());
    // A spent-then-invalidated token's send day is not in its record any more.
    let rebuilt = ledger(&store, &t, T0 + 2);
    assert_eq!(counts(&rebuilt), counts(&built_live));
    let opt_ins: Vec<u64> = rebuilt.days.iter().map(|d| d.opt_ins).collect();
    assert_eq!(
        opt_ins,
        built_live
            .days
            .iter()
            .map(|d| d.opt_ins)
            .collect::<Vec<_>>()
    );
    assert_eq!(rebuilt.days[LEDGER_DAYS - 1].sends, 2);
    assert!(matches!(
        store.messages_for(&page(), &psid(1)).unwrap()[0].status,
        OutboundStatus::DeliveredUnconfirmed { .. }
    ));
}

on_both_backends!(
    the_ledger_survives_the_retention_sweep_and_a_reopen,
    an_opt_in_is_issued_and_usable_and_a_redelivery_or_unknown_topic_is_not_counted,
    a_send_spends_and_its_outcome_can_leave_it_delivered_unconfirmed_or_invalid,
    marking_by_hand_spends_or_invalidates_and_a_second_mark_counts_nothing,
    a_token_past_its_expiry_counts_as_expired_before_and_after_the_sweep,
    a_forced_delete_invalidates_the_usable_tokens_and_the_topic_keeps_its_final_ledger,
    the_daily_series_has_thirty_utc_days_ending_today,
);
