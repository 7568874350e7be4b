//! Retention: old finished records go, records still needed stay, counters do not move.

use super::*;
use botflow_storage::{
    Appended, EventId, NewJournalEvent, OutboundStatus, RetentionPolicy, TokenMark, TokenState,
};

const DAY: u64 = 24 * 60 * 60 * 1000;

fn policy() -> RetentionPolicy {
    RetentionPolicy {
        dedup_ms: 3 * DAY,
        history_ms: 30 * DAY,
    }
}

fn event(n: u32, received_ms: u64) -> NewJournalEvent {
    NewJournalEvent {
        page: page(),
        event: EventId(format!("mid.{n}")),
        psid: psid(n),
        payload: json!({"message": {"mid": format!("mid.{n}"), "text": "hi"}}),
        received_ms,
    }
}

/// Journals event `n` at `at` and processes it with a step commit at the same time.
fn journal_and_process(store: &dyn Store, n: u32, at: u64) {
    let e = event(n, at);
    store
        .journal_append_batch(std::slice::from_ref(&e))
        .unwrap();
    store
        .commit_step(StepCommit {
            event: Some(e.event.clone()),
            ..bare_commit(&e.psid, Session::default(), at)
        })
        .unwrap();
}

fn redeliver(store: &dyn Store, n: u32, at: u64) -> Appended {
    store
        .journal_append_batch(&[event(n, at)])
        .unwrap()
        .remove(0)
}

/// Sweeps until nothing more is due, returning the summed report.
fn sweep_all(store: &dyn Store, now: u64) -> botflow_storage::SweepReport {
    let mut total = botflow_storage::SweepReport::default();
    loop {
        let report = store.sweep_retention(now, &policy(), 1_000).unwrap();
        total.dedup_records += report.dedup_records;
        total.messages += report.messages;
        total.tokens += report.tokens;
        if !report.more {
            return total;
        }
    }
}

fn a_redelivery_inside_the_dedup_window_is_a_duplicate_and_after_it_is_new() {
    let (_dir, store) = temp_store();
    let t0 = 1_000 * DAY;
    journal_and_process(&*store, 1, t0);

    // Inside the window: the sweep keeps the record, the redelivery is recognised.
    let report = sweep_all(&*store, t0 + 3 * DAY - 1);
    assert_eq!(report.dedup_records, 0);
    assert_eq!(redeliver(&*store, 1, t0 + 3 * DAY - 1), Appended::Duplicate);

    // After the window: the record is gone and the same event is journaled as new.
    let report = sweep_all(&*store, t0 + 3 * DAY + 1);
    assert_eq!(report.dedup_records, 1);
    assert!(matches!(
        redeliver(&*store, 1, t0 + 3 * DAY + 2),
        Appended::New { .. }
    ));
    assert_eq!(store.unprocessed_events().unwrap().len(), 1);
    assert_consistent(&store);
}

fn unprocessed_events_and_their_dedup_records_are_never_swept() {
    let (_dir, store) = temp_store();
    let t0 = 1_000 * DAY;
    store.journal_append_batch(&[event(1, t0)]).unwrap();
    let report = sweep_all(&*store, t0 + 365 * DAY);
    assert_eq!(report.removed(), 0);
    assert_eq!(store.unprocessed_events().unwrap().len(), 1);
    assert_eq!(redeliver(&*store, 1, t0 + 365 * DAY), Appended::Duplicate);
    assert_consistent(&store);
}

fn finished_messages_go_after_the_history_window_and_pending_ones_stay() {
    let (_dir, store) = temp_store();
    let t0 = 1_000 * DAY;
    let p = psid(1);
    let ids = store
        .commit_step(StepCommit {
            outbound: vec![text_message(1), text_message(2)],
            ..bare_commit(&p, Session::default(), t0)
        })
        .unwrap()
        .outbox_ids;
    store.mark_sent(ids[0], "m.1", t0 + 10).unwrap();
    let stats = store.outbox_stats().unwrap();

    assert_eq!(sweep_all(&*store, t0 + 30 * DAY).messages, 0);
    assert!(store.outbound(ids[0]).unwrap().is_some());

    let report = sweep_all(&*store, t0 + 10 + 30 * DAY + 1);
    assert_eq!(report.messages, 1);
    assert!(store.outbound(ids[0]).unwrap().is_none());
    let left = store.messages_for(&page(), &p).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, ids[1]);
    assert_eq!(left[0].status, OutboundStatus::Pending);
    // The pending message is still the head of its queue, and the figures did not move.
    let due = store.due_outbound(t0 + 31 * DAY, 10).unwrap();
    assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[1]]);
    assert_eq!(store.outbox_stats().unwrap(), stats);
    assert_consistent(&store);
}

fn used_up_tokens_go_after_the_history_window_and_needed_ones_stay() {
    let (_dir, store) = temp_store();
    let t0 = 1_000 * DAY;
    let topic = store.create_topic(&page(), "Restock", t0).unwrap().id;
    let p = psid(1);
    for (value, expires) in [
        ("spent", t0 + 400 * DAY),
        ("invalid", t0 + 400 * DAY),
        ("expiring", t0 + DAY),
        ("usable", t0 + 400 * DAY),
    ] {
        store
            .add_token(&page(), &p, token(&topic, value, t0, expires), t0)
            .unwrap();
    }
    store
        .mark_token(
            &page(),
            "invalid",
            TokenMark::Invalid {
                reason: "refused".into(),
            },
            t0,
        )
        .unwrap();
    assert_eq!(store.expire_tokens(t0 + DAY).unwrap(), 1);
    // The oldest usable token ("spent", added first) pays for a message that stays pending.
    let committed = store
        .commit_step(StepCommit {
            outbound: vec![token_message(&topic)],
            ..bare_commit(&p, Session::default(), t0 + DAY)
        })
        .unwrap();
    let message = committed.outbox_ids[0];
    assert_eq!(
        store.outbound(message).unwrap().unwrap().token.as_deref(),
        Some("spent")
    );
    let usable_before = store.list_topics(&page(), t0).unwrap()[0].usable_tokens;

    let later = t0 + 40 * DAY;
    let report = sweep_all(&*store, later);
    assert_eq!(report.tokens, 2, "{report:?}");
    assert!(store.get_token(&page(), "invalid").unwrap().is_none());
    assert!(store.get_token(&page(), "expiring").unwrap().is_none());
    let spent = store.get_token(&page(), "spent").unwrap().unwrap();
    assert!(matches!(spent.state, TokenState::Spent { .. }));
    assert!(store.get_token(&page(), "usable").unwrap().is_some());
    assert_eq!(
        store.list_topics(&page(), t0).unwrap()[0].usable_tokens,
        usable_before
    );
    assert_consistent(&store);

    // Once its message is sent, the spent token and the message go a window later.
    store.mark_sent(message, "m.1", later).unwrap();
    let report = sweep_all(&*store, later + 31 * DAY);
    assert_eq!((report.messages, report.tokens), (1, 1), "{report:?}");
    assert!(store.get_token(&page(), "spent").unwrap().is_none());
    assert!(store.get_token(&page(), "usable").unwrap().is_some());
    assert_consistent(&store);
}

#[test]
fn each_sweep_removes_at_most_its_limit_and_says_when_more_is_due() {
    let (_dir, store) = temp_sled();
    let t0 = 1_000 * DAY;
    for n in 0..10 {
        journal_and_process(&store, n, t0 + u64::from(n));
    }
    let now = t0 + 4 * DAY;
    let mut removed = Vec::new();
    loop {
        let report = store.sweep_retention(now, &policy(), 3).unwrap();
        assert!(report.removed() <= 3);
        removed.push(report.dedup_records);
        if !report.more {
            break;
        }
    }
    assert_eq!(removed.iter().sum::<u64>(), 10, "{removed:?}");
    assert_eq!(removed[..3], [3, 3, 3]);
    assert_eq!(store.retention_backlog(), 0);
}

#[test]
fn the_version_cache_keeps_at_most_its_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(
        dir.path(),
        StoreOptions {
            flush_every_ms: None,
            version_cache_entries: 4,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let flow = botflow_flow::FlowId::from("f");
    for n in 0..10 {
        store
            .publish_document(&page(), plain_flow("f", &format!("v{n}")), 1)
            .unwrap();
    }
    for version in 1..=10 {
        let valid = store.valid_flow(&page(), &flow, version).unwrap();
        assert!(valid.is_some(), "version {version}");
        assert!(store.cached_versions() <= 4, "{}", store.cached_versions());
    }
    // A dropped version is read again from the store.
    assert!(store.valid_flow(&page(), &flow, 1).unwrap().is_some());
}

#[test]
fn a_database_written_before_the_retention_index_is_indexed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_000 * DAY;
    let p = psid(7);
    let sent = {
        let store = open(dir.path());
        journal_and_process(&store, 1, t0);
        journal_and_process(&store, 2, t0);
        let id = store
            .commit_step(StepCommit {
                outbound: vec![text_message(1)],
                ..bare_commit(&p, Session::default(), t0)
            })
            .unwrap()
            .outbox_ids[0];
        store.mark_sent(id, "m.1", t0).unwrap();
        // Make it look like an older release wrote it: no index, no flag, and event 2's record
        // without the time it was processed.
        let db = store.raw_db();
        db.open_tree("retention").unwrap().clear().unwrap();
        db.open_tree("meta")
            .unwrap()
            .remove("retention_indexed")
            .unwrap();
        let keys = db.open_tree("event_keys").unwrap();
        for item in keys.iter() {
            let (key, value) = item.unwrap();
            let mut record: Value = serde_json::from_slice(&value[1..]).unwrap();
            if record.to_string().contains("\"seq\"") && key.ends_with(b"mid.2") {
                record.as_object_mut().unwrap().remove("processed_ms");
                let mut bytes = vec![value[0]];
                bytes.extend(serde_json::to_vec(&record).unwrap());
                keys.insert(key, bytes).unwrap();
            }
        }
        store.flush().unwrap();
        id
    };
    let store = open(dir.path());
    assert!(
        store.retention_backlog() >= 3,
        "{}",
        store.retention_backlog()
    );
    let now = t0 + 31 * DAY;
    let report = sweep_all(&store, now);
    // Event 1 and the message go; event 2's age is unknown, so it is kept a window from now.
    assert_eq!(
        (report.dedup_records, report.messages),
        (1, 1),
        "{report:?}"
    );
    assert!(store.outbound(sent).unwrap().is_none());
    assert_eq!(redeliver(&store, 2, now), Appended::Duplicate);
    assert_eq!(sweep_all(&store, now + 3 * DAY + 1).dedup_records, 1);
    assert!(matches!(
        redeliver(&store, 2, now + 4 * DAY),
        Appended::New { .. }
    ));
    assert_consistent(&store);
}

on_both_backends!(
    a_redelivery_inside_the_dedup_window_is_a_duplicate_and_after_it_is_new,
    unprocessed_events_and_their_dedup_records_are_never_swept,
    finished_messages_go_after_the_history_window_and_pending_ones_stay,
    used_up_tokens_go_after_the_history_window_and_needed_ones_stay,
);
