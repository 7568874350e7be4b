//! The inbound journal: dedup, arrival order, processed in the step commit, durable appends.

use super::*;
use botflow_storage::log::SimDir;
use botflow_storage::{Appended, EventId, NewJournalEvent, StoreError};
use std::sync::Arc;

fn event(n: u32, p: u32) -> NewJournalEvent {
    NewJournalEvent {
        page: page(),
        event: EventId(format!("mid.{n}")),
        psid: psid(p),
        payload: json!({"message": {"mid": format!("mid.{n}"), "text": format!("text {n}")}}),
        received_ms: u64::from(n),
    }
}

fn redeliveries_are_duplicates_and_unprocessed_events_come_back_in_order() {
    let (_dir, store) = temp_store();
    let e1 = event(1, 1);
    let first = store
        .journal_append(&e1.page, &e1.event, &e1.psid, &e1.payload, 1)
        .unwrap();
    assert!(matches!(first, Appended::New { .. }));
    let again = store
        .journal_append(&e1.page, &e1.event, &e1.psid, &e1.payload, 2)
        .unwrap();
    assert_eq!(again, Appended::Duplicate);
    // A batch with a redelivery inside it and one of an earlier batch.
    let outcomes = store
        .journal_append_batch(&[event(2, 2), event(3, 1), event(2, 2), event(1, 1)])
        .unwrap();
    assert!(matches!(outcomes[0], Appended::New { .. }));
    assert!(matches!(outcomes[1], Appended::New { .. }));
    assert_eq!(&outcomes[2..], &[Appended::Duplicate, Appended::Duplicate]);

    let pending: Vec<String> = store
        .unprocessed_events()
        .unwrap()
        .into_iter()
        .map(|e| e.event.to_string())
        .collect();
    assert_eq!(pending, vec!["mid.1", "mid.2", "mid.3"]);
    let seqs: Vec<u64> = store
        .unprocessed_events()
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

fn processing_is_committed_with_the_session_and_only_once() {
    let (_dir, store) = temp_store();
    let e = event(1, 1);
    store
        .journal_append_batch(std::slice::from_ref(&e))
        .unwrap();
    let mut session = Session::default();
    session.fields.insert("answer".into(), "42".into());
    let commit = StepCommit {
        event: Some(e.event.clone()),
        outbound: vec![text_message(1)],
        ..bare_commit(&e.psid, session.clone(), 10)
    };
    store.commit_step(commit.clone()).unwrap();
    assert!(store.unprocessed_events().unwrap().is_empty());
    assert_eq!(store.load_session(&page(), &e.psid).unwrap(), Some(session));

    // Processing it again is refused and changes nothing.
    let replay = StepCommit {
        session: Session::default(),
        ..commit
    };
    assert!(matches!(
        store.commit_step(replay),
        Err(StoreError::EventAlreadyProcessed { .. })
    ));
    assert_eq!(store.messages_for(&page(), &e.psid).unwrap().len(), 1);
    assert_eq!(
        store
            .load_session(&page(), &e.psid)
            .unwrap()
            .unwrap()
            .fields["answer"],
        "42"
    );
    // And a later redelivery of the webhook is still a duplicate.
    assert_eq!(
        store.journal_append_batch(&[e]).unwrap(),
        vec![Appended::Duplicate]
    );
    assert_consistent(&store);
}

#[test]
fn concurrent_appends_are_all_durable_and_distinct() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(open(dir.path()));
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..50u32)
                        .map(|i| {
                            let e = event(t * 1000 + i, t);
                            match store.journal_append_batch(&[e]).unwrap()[0] {
                                Appended::New { seq } => seq,
                                Appended::Duplicate => panic!("fresh event reported duplicate"),
                            }
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 400);
    }
    let store = open(dir.path());
    let pending = store.unprocessed_events().unwrap();
    assert_eq!(pending.len(), 400);
    // Per subscriber, arrival order is each writer's order.
    for t in 0..8u32 {
        let mine: Vec<u64> = pending
            .iter()
            .filter(|e| e.psid == psid(t))
            .map(|e| e.received_ms)
            .collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
    }
}

/// Opens the store in `path` with its event log in `log` (a simulated directory).
fn open_on(path: &std::path::Path, log: &SimDir, segment_bytes: u64) -> SledStore {
    SledStore::open(
        path,
        StoreOptions {
            flush_every_ms: None,
            cache_capacity_bytes: 16 * 1024 * 1024,
            log_dir: Some(Arc::new(log.clone())),
            log_segment_bytes: segment_bytes,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn keys(entries: &[botflow_storage::JournalEntry]) -> Vec<String> {
    entries.iter().map(|e| e.event.0.clone()).collect()
}

#[test]
fn an_acknowledged_batch_survives_a_power_loss_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimDir::new();
    let store = Arc::new(open_on(dir.path(), &sim, 64 * 1024 * 1024));
    let acked = store
        .journal_append_batch(&[event(1, 1), event(2, 2), event(3, 1)])
        .unwrap();
    assert!(acked.iter().all(|a| matches!(a, Appended::New { .. })));

    // A fourth event is written but its fdatasync hangs: it is not acknowledged.
    sim.hold_syncs(true);
    let late = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.journal_append_batch(&[event(4, 3)]))
    };
    while sim.blocked_syncs() == 0 {
        std::thread::yield_now();
    }
    // Power loss now: every unsynced page is lost (or, in the second image, every one kept).
    let lost = sim.crash(|| false);
    let kept = sim.crash(|| true);
    sim.hold_syncs(false);
    late.join().unwrap().unwrap();
    drop(store);

    for (image, expected) in [
        (&lost, vec!["mid.1", "mid.2", "mid.3"]),
        (&kept, vec!["mid.1", "mid.2", "mid.3", "mid.4"]),
    ] {
        let store = open_on(dir.path(), image, 64 * 1024 * 1024);
        let pending = store.unprocessed_events().unwrap();
        assert_eq!(keys(&pending), expected);
        assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
        // Redeliveries of the acknowledged events are duplicates; the lost one is new.
        let again = store
            .journal_append_batch(&[event(1, 1), event(4, 3)])
            .unwrap();
        assert_eq!(again[0], Appended::Duplicate);
        assert_eq!(
            matches!(again[1], Appended::New { .. }),
            expected.len() == 3
        );
        assert_consistent(&store);
    }
}

/// The keys of the unprocessed events a store opened on `log` (a crashed copy) finds.
fn unprocessed_after_reopen(log: &SimDir) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    keys(
        &open_on(dir.path(), log, 64 * 1024 * 1024)
            .unprocessed_events()
            .unwrap(),
    )
}

/// A store whose log is a `SimDir` (its syncs can be held or failed), with a runtime to await
/// its deferred waits on.
fn store_on_sim() -> (
    tempfile::TempDir,
    SimDir,
    SledStore,
    tokio::runtime::Runtime,
) {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimDir::new();
    let store = open_on(dir.path(), &sim, 64 * 1024 * 1024);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    (dir, sim, store, runtime)
}

#[test]
fn deferred_appends_and_flushes_resolve_only_once_the_log_is_synced() {
    let (_dir, sim, store, runtime) = store_on_sim();
    let pending = |wait: botflow_storage::DurableWait| {
        runtime.block_on(async {
            let mut wait = Box::pin(wait.wait());
            match tokio::time::timeout(std::time::Duration::from_millis(100), &mut wait).await {
                Ok(done) => Err(done),
                Err(_) => Ok(wait),
            }
        })
    };
    sim.hold_syncs(true);
    // The answers are final at once; their durability is what the wait stands for.
    let (appended, durable) = store
        .journal_append_batch_deferred(&[event(1, 1), event(2, 2)])
        .unwrap();
    assert!(appended.iter().all(|a| matches!(a, Appended::New { .. })));
    let durable = pending(durable).expect("resolved while the fdatasync hangs");
    let flushed = store
        .flush_deferred()
        .expect("the sled store waits without a thread");
    let flushed = pending(flushed).expect("a deferred flush resolved while the fdatasync hangs");
    // Power loss now: nothing the waits stand for may be counted on.
    let lost = sim.crash(|| false);
    sim.hold_syncs(false);
    runtime.block_on(durable).unwrap();
    runtime.block_on(flushed).unwrap();
    assert!(unprocessed_after_reopen(&lost).is_empty());
    // Nothing pending: the waits of a redelivery and of a flush resolve at once.
    let (again, durable) = store.journal_append_batch_deferred(&[event(1, 1)]).unwrap();
    assert_eq!(again, vec![Appended::Duplicate]);
    sim.hold_syncs(true);
    assert!(
        pending(durable).is_err(),
        "a redelivery of a synced event waits for nothing"
    );
    assert!(pending(store.flush_deferred().unwrap()).is_err());
    sim.hold_syncs(false);
    // A failed fdatasync fails the wait: the webhook must not be acknowledged.
    sim.fail_next_syncs(1);
    let (_, durable) = store.journal_append_batch_deferred(&[event(3, 1)]).unwrap();
    let failed = runtime.block_on(durable.wait()).unwrap_err();
    assert!(failed.is_fatal(), "{failed}");
}

#[test]
fn a_redelivery_of_an_event_stepped_before_its_sync_waits_for_its_record() {
    // Nothing in the store stops a caller from committing an event's step (in memory) before
    // the event is durable; a redelivery then must still not be acknowledged first.
    let (_dir, sim, store, runtime) = store_on_sim();
    let resolves = |wait: botflow_storage::DurableWait| {
        runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(100), wait.wait())
                .await
                .is_ok()
        })
    };
    sim.hold_syncs(true);
    // Released before the store is dropped, so a failed assertion fails instead of hanging
    // in the store's final sync.
    struct Release<'a>(&'a SimDir);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.hold_syncs(false);
        }
    }
    let _release = Release(&sim);
    let e = event(1, 1);
    let (appended, durable) = store
        .journal_append_batch_deferred(std::slice::from_ref(&e))
        .unwrap();
    assert!(matches!(appended[..], [Appended::New { .. }]));
    store
        .commit_step(StepCommit {
            event: Some(e.event.clone()),
            // As the runtime commits: the dispatcher's flush waits for the disk, not the step.
            durable: false,
            ..bare_commit(&e.psid, Session::default(), 10)
        })
        .unwrap();
    let (again, redelivered) = store
        .journal_append_batch_deferred(std::slice::from_ref(&e))
        .unwrap();
    assert_eq!(again, vec![Appended::Duplicate]);
    assert!(
        !resolves(redelivered),
        "a redelivery was acknowledged before the event's record was durable"
    );
    assert!(!resolves(durable));
    // Power loss now: the event is gone, and no 200 said otherwise.
    let lost = sim.crash(|| false);
    sim.hold_syncs(false);
    assert!(unprocessed_after_reopen(&lost).is_empty());
    // Once synced, a redelivery is acknowledged at once.
    let (_, synced) = store
        .journal_append_batch_deferred(std::slice::from_ref(&e))
        .unwrap();
    assert!(resolves(synced));
}

#[test]
fn a_failed_fdatasync_poisons_the_journal_and_a_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimDir::new();
    let store = open_on(dir.path(), &sim, 64 * 1024 * 1024);
    store.journal_append_batch(&[event(1, 1)]).unwrap();
    sim.fail_next_syncs(1);
    let failed = store.journal_append_batch(&[event(2, 1)]).unwrap_err();
    assert!(failed.is_fatal(), "{failed}");
    // Never retried: every later append fails too, even though syncs would work again.
    let again = store.journal_append_batch(&[event(3, 1)]).unwrap_err();
    assert!(again.is_fatal(), "{again}");
    let attempts = sim.sync_attempts();
    drop(store);
    assert_eq!(sim.sync_attempts(), attempts, "no sync after the failure");

    // A restart recovers from what is on disk: the acknowledged event, and a redelivery of the
    // failed ones is accepted.
    let store = open_on(dir.path(), &sim.crash(|| false), 64 * 1024 * 1024);
    assert_eq!(keys(&store.unprocessed_events().unwrap()), vec!["mid.1"]);
    let redelivered = store
        .journal_append_batch(&[event(2, 1), event(3, 1)])
        .unwrap();
    assert!(
        redelivered
            .iter()
            .all(|a| matches!(a, Appended::New { .. }))
    );
    assert_consistent(&store);
}

#[test]
fn processed_segments_are_deleted_and_an_unprocessed_event_keeps_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimDir::new();
    // About four events per segment.
    let store = open_on(dir.path(), &sim, 600);
    let events: Vec<_> = (1..=20).map(|n| event(n, n % 3)).collect();
    for e in &events {
        store.journal_append_batch(std::slice::from_ref(e)).unwrap();
    }
    let segments = store.event_log().segment_names().len();
    assert!(segments >= 4, "{segments} segments");
    // Process every event but the sixth.
    for e in events.iter().filter(|e| e.event.0 != "mid.6") {
        store
            .commit_step(StepCommit {
                event: Some(e.event.clone()),
                ..bare_commit(&e.psid, Session::default(), 10)
            })
            .unwrap();
    }
    assert!(store.checkpoint().unwrap().segments_deleted > 0);
    // Segments are named after their first LSN; the sixth event's LSN is its seq.
    let sixth = store.unprocessed_events().unwrap()[0].seq;
    let left = store.event_log().segment_names();
    let first: u64 = left[0].trim_end_matches(".seg").parse().unwrap();
    assert!(
        first > 1 && first <= sixth,
        "only the segments below the sixth event's ({sixth}) go: {left:?}"
    );
    assert_eq!(keys(&store.unprocessed_events().unwrap()), vec!["mid.6"]);
    drop(store);

    // After a restart the kept segments' processed events stay processed.
    let store = open_on(dir.path(), &sim, 600);
    assert_eq!(keys(&store.unprocessed_events().unwrap()), vec!["mid.6"]);
    assert_eq!(
        store.journal_append_batch(&events[..3]).unwrap(),
        vec![Appended::Duplicate; 3]
    );
    let e = &events[5];
    store
        .commit_step(StepCommit {
            event: Some(e.event.clone()),
            ..bare_commit(&e.psid, Session::default(), 10)
        })
        .unwrap();
    assert!(store.checkpoint().unwrap().segments_deleted > 0);
    assert_eq!(store.event_log().segment_names().len(), 1);
    assert!(store.unprocessed_events().unwrap().is_empty());

    // The last segment is never deleted; once the retention sweep removes the dedup records of
    // its processed events, the processed floor still keeps them from coming back.
    store
        .raw_db()
        .open_tree("event_keys")
        .unwrap()
        .clear()
        .unwrap();
    store.flush().unwrap();
    drop(store);
    let store = open_on(dir.path(), &sim, 600);
    assert!(store.unprocessed_events().unwrap().is_empty());
}

#[test]
fn an_unprocessed_event_journaled_in_sled_by_an_older_release_moves_into_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let e = event(9, 1);
    {
        let store = open(dir.path());
        // The two records an older release wrote for an unprocessed event.
        let db = store.raw_db();
        let mut key = Vec::new();
        for part in [page().0.as_str(), "mid.9"] {
            key.extend_from_slice(&(part.len() as u32).to_be_bytes());
            key.extend_from_slice(part.as_bytes());
        }
        let record = json!({"seq": 77, "processed": false, "entry": {
            "seq": 77, "page": page().0, "event": "mid.9", "psid": e.psid.0,
            "payload": e.payload, "received_ms": 9}});
        let pointer = json!({"page": page().0, "event": "mid.9"});
        let encode = |v: &Value| {
            let mut bytes = vec![1u8];
            bytes.extend(serde_json::to_vec(v).unwrap());
            bytes
        };
        db.open_tree("event_keys")
            .unwrap()
            .insert(key, encode(&record))
            .unwrap();
        db.open_tree("journal")
            .unwrap()
            .insert(77u64.to_be_bytes(), encode(&pointer))
            .unwrap();
        store.flush().unwrap();
    }
    let store = open(dir.path());
    let pending = store.unprocessed_events().unwrap();
    assert_eq!(keys(&pending), vec!["mid.9"]);
    assert_eq!(pending[0].payload, e.payload);
    assert_eq!(
        store
            .journal_append_batch(std::slice::from_ref(&e))
            .unwrap(),
        vec![Appended::Duplicate]
    );
    assert!(store.raw_db().open_tree("journal").unwrap().is_empty());
    store
        .commit_step(StepCommit {
            event: Some(e.event.clone()),
            ..bare_commit(&e.psid, Session::default(), 10)
        })
        .unwrap();
    assert!(store.unprocessed_events().unwrap().is_empty());
    assert_consistent(&store);
    drop(store);
    let store = open(dir.path());
    assert!(store.unprocessed_events().unwrap().is_empty());
}

fn a_batch_of_steps_commits_together_and_isolates_a_replayed_event() {
    let (_dir, store) = temp_store();
    let t = store.create_topic(&page(), "Restock", 1).unwrap().id;
    store
        .add_token(&page(), &psid(3), token(&t, "tok", 1, 10_000), 1)
        .unwrap();
    let (e0, e1) = (event(1, 1), event(2, 2));
    store
        .journal_append_batch(&[e0.clone(), e1.clone()])
        .unwrap();
    store
        .commit_step(StepCommit {
            event: Some(e0.event.clone()),
            ..bare_commit(&psid(1), Session::default(), 5)
        })
        .unwrap();

    let tagged = |tag: &str| {
        let mut session = Session::default();
        session.tags.insert(tag.into());
        session
    };
    let results = store
        .commit_steps(vec![
            StepCommit {
                event: Some(e1.event.clone()),
                outbound: vec![text_message(1)],
                ..bare_commit(&psid(2), tagged("a"), 10)
            },
            // A replay of the event processed above: refused alone.
            StepCommit {
                event: Some(e0.event.clone()),
                outbound: vec![text_message(2)],
                ..bare_commit(&psid(1), tagged("replayed"), 10)
            },
            // The same event twice in one batch: only the first commits.
            StepCommit {
                event: Some(e1.event.clone()),
                ..bare_commit(&psid(2), tagged("twice"), 10)
            },
            StepCommit {
                outbound: vec![token_message(&t)],
                ..bare_commit(&psid(3), tagged("c"), 10)
            },
        ])
        .unwrap();
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1],
        Err(StoreError::EventAlreadyProcessed { .. })
    ));
    assert!(matches!(
        results[2],
        Err(StoreError::EventAlreadyProcessed { .. })
    ));
    let last = results[3].as_ref().unwrap();
    assert_eq!(last.outbox_ids.len(), 1);
    assert_eq!(
        store.load_session(&page(), &psid(2)).unwrap(),
        Some(tagged("a"))
    );
    assert_eq!(
        store.load_session(&page(), &psid(1)).unwrap(),
        Some(Session::default())
    );
    assert!(store.messages_for(&page(), &psid(1)).unwrap().is_empty());
    assert!(store.unprocessed_events().unwrap().is_empty());
    assert_eq!(store.outbox_stats().unwrap().pending, 2);
    assert_consistent(&store);
}

#[test]
fn an_index_entry_without_its_event_is_skipped_and_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.journal_append_batch(&[event(1, 1)]).unwrap();
        // What a crash right after the first write of an append leaves behind.
        let mut value = vec![1u8];
        value.extend_from_slice(br#"{"page":"page-1","event":"mid.lost"}"#);
        let journal = store.raw_db().open_tree("journal").unwrap();
        journal.insert(u64::MAX.to_be_bytes(), value).unwrap();
        let pending = store.unprocessed_events().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(store.verify_integrity().unwrap().len(), 1);
        store.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.unprocessed_events().unwrap().len(), 1);
    assert_consistent(&store);
}

on_both_backends!(
    redeliveries_are_duplicates_and_unprocessed_events_come_back_in_order,
    processing_is_committed_with_the_session_and_only_once,
    a_batch_of_steps_commits_together_and_isolates_a_replayed_event,
);
