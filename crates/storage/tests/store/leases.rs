//! Shard ownership: on both backends a single store owns the Pages it works on and polls its
//! journal in bounded reads; on PostgreSQL two nodes (two `PgStore`s with different node ids on
//! one schema) share the shards fairly, a commit under a stale epoch is refused and changes
//! nothing, a takeover cannot happen while a commit is in flight (`FOR SHARE`), epochs only grow.

use super::*;
use botflow_storage::pg_test::TestSchema;
use botflow_storage::{EventId, PgOptions, SHARD_COUNT, StoreError, shard_of};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn a_store_owns_the_pages_it_works_on_and_polls_its_journal_in_bounded_reads() {
    let (_guard, store) = temp_store();
    let ownership = store.ownership();
    assert!(ownership.owns(page().as_str()));
    assert!(ownership.may_send(page().as_str(), Instant::now()));
    assert_eq!(ownership.held_count(), SHARD_COUNT as usize);
    for n in 0..5 {
        store
            .journal_append(
                &page(),
                &EventId::from(format!("e{n}").as_str()),
                &psid(n),
                &json!({"n": n}),
                n.into(),
            )
            .unwrap();
    }
    let all = store.unprocessed_events().unwrap();
    assert_eq!(all.len(), 5);
    let first = store.poll_unprocessed(2).unwrap();
    assert_eq!(
        first.iter().map(|e| e.seq).collect::<Vec<_>>(),
        all[..2].iter().map(|e| e.seq).collect::<Vec<_>>(),
        "the oldest first"
    );
}

on_both_backends!(a_store_owns_the_pages_it_works_on_and_polls_its_journal_in_bounded_reads);

/// A node on `schema` with `id` and lease TTL `ttl_ms`.
fn node(schema: &TestSchema, id: &str, ttl_ms: u64) -> PgStore {
    PgStore::connect_with(&PgOptions {
        node_id: Some(id.to_owned()),
        lease_ttl: Duration::from_millis(ttl_ms),
        ..schema.options()
    })
    .unwrap()
}

fn held(store: &PgStore) -> BTreeSet<u32> {
    store.ownership().held().keys().copied().collect()
}

/// A raw connection to the test database, on the schema.
fn raw(schema: &TestSchema) -> ::postgres::Client {
    let url = botflow_storage::pg_test::shared_url();
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("SET search_path = {}", schema.name()))
        .unwrap();
    client
}

/// A step commit processing `event` of psid 1 on the test Page.
fn event_commit(event: &str, now_ms: u64) -> StepCommit {
    StepCommit {
        event: Some(EventId::from(event)),
        outbound: vec![text_message(now_ms)],
        ..bare_commit(&psid(1), Session::default(), now_ms)
    }
}

fn journal(store: &dyn Store, event: &str, now_ms: u64) {
    store
        .journal_append(&page(), &EventId::from(event), &psid(1), &json!({}), now_ms)
        .unwrap();
}

#[test]
fn two_nodes_share_the_shards_fairly_without_overlap() {
    let schema = TestSchema::new();
    std::thread::spawn(move || {
        let a = node(&schema, "a", 60_000);
        assert_eq!(
            held(&a).len(),
            SHARD_COUNT as usize,
            "alone, a node takes every shard"
        );
        let b = node(&schema, "b", 60_000);
        assert!(held(&b).is_empty(), "every lease is a's and valid");
        // a sees two live nodes and gives up its surplus; b takes it at its next round
        a.lease_round().unwrap();
        assert_eq!(held(&a).len(), SHARD_COUNT as usize / 2);
        a.lease_round().unwrap(); // releases in the database
        b.lease_round().unwrap();
        let (ha, hb) = (held(&a), held(&b));
        assert_eq!(hb.len(), SHARD_COUNT as usize / 2, "b holds its fair share");
        assert!(ha.is_disjoint(&hb), "no shard is held twice");
        assert_eq!(ha.union(&hb).count(), SHARD_COUNT as usize);
        // a graceful handover: b may not send for a shard before the released_at + 1 s pause
        let moved = *hb.iter().next().unwrap();
        let lease = b.ownership().lease(moved).unwrap();
        assert!(lease.dispatch_after.is_some(), "{lease:?}");
        // the database agrees
        let rows = raw(&schema)
            .query(
                "SELECT owner, count(*) FROM shard_leases GROUP BY owner ORDER BY owner",
                &[],
            )
            .unwrap();
        let counts: Vec<(Option<String>, i64)> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(
            counts,
            vec![(Some("a".to_owned()), 128), (Some("b".to_owned()), 128)]
        );
        // a graceful stop hands everything back
        drop(a);
        b.lease_round().unwrap();
        assert_eq!(held(&b).len(), SHARD_COUNT as usize);
    })
    .join()
    .unwrap();
}

#[test]
fn a_commit_under_a_stale_epoch_is_refused_and_changes_nothing() {
    let schema = TestSchema::new();
    std::thread::spawn(move || {
        // a long TTL: no round runs by itself, so a's view stays stale (a paused node)
        let a = node(&schema, "a", 60_000);
        a.ensure_page(&page(), 1).unwrap();
        journal(&a, "e1", 1);
        let shard = i32::try_from(shard_of(page().as_str())).unwrap();
        let before = a
            .ownership()
            .lease(shard_of(page().as_str()))
            .unwrap()
            .epoch;
        // another node took the shard over behind a's back
        raw(&schema)
            .execute(
                "UPDATE shard_leases SET owner = 'b', epoch = epoch + 1 WHERE shard = $1",
                &[&shard],
            )
            .unwrap();
        let err = a.commit_step(event_commit("e1", 2)).unwrap_err();
        match err {
            StoreError::OwnershipLost {
                shard: s, epoch, ..
            } => {
                assert_eq!((s, epoch), (shard_of(page().as_str()), before));
            }
            other => panic!("expected OwnershipLost, got {other}"),
        }
        // nothing was written: the event is unprocessed, no session, no message
        let mut raw = raw(&schema);
        let unprocessed: i64 = raw
            .query_one(
                "SELECT count(*) FROM journal WHERE processed_ms IS NULL",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(unprocessed, 1);
        assert!(a.load_session(&page(), &psid(1)).unwrap().is_none());
        assert!(a.messages_for(&page(), &psid(1)).unwrap().is_empty());
        // outcomes and token marks are fenced too
        let outcome = a.mark_sent(botflow_storage::OutboxId(1), "m", 3);
        assert!(outcome.is_err());
        // a's next round sees the loss: work reads skip the shard, sends stop
        a.lease_round().unwrap();
        assert!(!a.ownership().owns(page().as_str()));
        assert!(a.unprocessed_events().unwrap().is_empty());
        assert!(matches!(
            a.commit_step(event_commit("e1", 4)),
            Err(StoreError::OwnershipLost { epoch: 0, .. })
        ));
    })
    .join()
    .unwrap();
}

#[test]
fn a_takeover_waits_for_a_commit_in_flight_and_epochs_only_grow() {
    let schema = TestSchema::new();
    std::thread::spawn(move || {
        let a = std::sync::Arc::new(node(&schema, "a", 60_000));
        a.ensure_page(&page(), 1).unwrap();
        journal(&*a, "e1", 1);
        journal(&*a, "e2", 2);
        let shard = i32::try_from(shard_of(page().as_str())).unwrap();
        let epoch_a = a
            .ownership()
            .lease(shard_of(page().as_str()))
            .unwrap()
            .epoch;
        let mut raw = raw(&schema);
        // a's leases expire in the database while a still believes in them (a paused node),
        // and a is gone from the membership
        raw.batch_execute(
            "UPDATE shard_leases SET lease_until = now() - interval '1 second';
             DELETE FROM nodes WHERE node_id = 'a'",
        )
        .unwrap();
        // hold a's commit in flight: its subscriber row is locked by someone else
        let mut blocker = raw.transaction().unwrap();
        blocker
            .execute(
                "SELECT 1 FROM subscribers WHERE page_id = $1 AND psid = $2 FOR UPDATE",
                &[&page().as_str(), &psid(1).as_str()],
            )
            .unwrap();
        let committing = {
            let a = std::sync::Arc::clone(&a);
            std::thread::spawn(move || a.commit_step(event_commit("e1", 3)))
        };
        // wait (bounded) until the commit passed its fence and waits for the row
        let mut watcher = self::raw(&schema);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                     AND query LIKE '%INSERT INTO subscribers%'",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the commit never reached the row lock"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // a forced takeover of the shard waits for the commit (FOR SHARE): it times out
        watcher.batch_execute("SET lock_timeout = '200ms'").unwrap();
        let forced = watcher.execute(
            "UPDATE shard_leases SET owner = 'x', epoch = epoch + 1 WHERE shard = $1",
            &[&shard],
        );
        let code = forced.unwrap_err().code().cloned();
        assert_eq!(code, Some(::postgres::error::SqlState::LOCK_NOT_AVAILABLE));
        // a new node takes every expired lease but that one (SKIP LOCKED)
        let b = node(&schema, "b", 60_000);
        assert!(!b.ownership().owns(page().as_str()));
        assert_eq!(held(&b).len(), SHARD_COUNT as usize - 1);
        // the commit in flight completes under a's epoch
        blocker.commit().unwrap();
        committing.join().unwrap().unwrap();
        // then b takes the shard over, at a higher epoch, and a commits nothing more
        b.lease_round().unwrap();
        let epoch_b = b
            .ownership()
            .lease(shard_of(page().as_str()))
            .unwrap()
            .epoch;
        assert!(epoch_b > epoch_a, "{epoch_b} > {epoch_a}");
        assert!(matches!(
            a.commit_step(event_commit("e2", 4)),
            Err(StoreError::OwnershipLost { .. })
        ));
        b.commit_step(event_commit("e2", 5)).unwrap();
        let epochs: Vec<Option<i64>> = raw
            .query("SELECT processed_epoch FROM journal ORDER BY seq", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            epochs,
            vec![
                Some(i64::try_from(epoch_a).unwrap()),
                Some(i64::try_from(epoch_b).unwrap())
            ],
            "each event records the epoch it was processed under"
        );
    })
    .join()
    .unwrap();
}

#[test]
fn a_starting_node_closes_the_queuing_of_a_gone_node_never_of_a_live_one() {
    let schema = TestSchema::new();
    std::thread::spawn(move || {
        let a = node(&schema, "a", 60_000);
        a.ensure_page(&page(), 1).unwrap();
        let topic = a.create_topic(&page(), "Restock", 1).unwrap();
        let content = botflow_storage::NotificationContent::Text;
        let open = a
            .create_notification(&page(), &topic.id, &content, 2)
            .unwrap();
        // a is still queuing it: a second node starting leaves it open
        let b = node(&schema, "b", 60_000);
        let seen = b.notification(&page(), open.id).unwrap().unwrap();
        assert!(!seen.all_queued, "b closed a live node's queuing");
        // a stops (gracefully, so it is gone at once): the next node to start closes it
        drop(a);
        let c = node(&schema, "c", 60_000);
        let seen = c.notification(&page(), open.id).unwrap().unwrap();
        assert!(seen.all_queued, "the queuing of a gone node stays open");
        drop((b, c));
    })
    .join()
    .unwrap();
}
