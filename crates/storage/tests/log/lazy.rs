//! Lazy appends: a record nobody waits for starts no sync of its own, rides with the next sync
//! an eager append or a waiter starts, and is synced by itself once `lazy_sync` old; a power
//! loss before then may lose it, never an acknowledged record.

use crate::{append_durable, assert_records, await_within, open_sim, payload};
use botflow_storage::log::{HotLog, LogDir, LogOptions, SimDir};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn open_lazy(dir: &SimDir, lazy_sync: Duration) -> HotLog {
    let options = LogOptions {
        preallocate_bytes: 0,
        lazy_sync,
        ..LogOptions::default()
    };
    HotLog::open(Arc::new(dir.clone()) as Arc<dyn LogDir>, options)
        .unwrap()
        .0
}

/// Polls until `done` holds, for at most `limit`; returns whether it did.
fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    done()
}

#[test]
fn a_lazy_record_starts_no_sync_until_something_waits_for_it() {
    let dir = SimDir::new();
    let log = open_lazy(&dir, Duration::from_secs(3600));
    append_durable(&log, 1, 1);
    let syncs = dir.syncs();
    let lsn = log.append_lazy(&payload(2)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(dir.syncs(), syncs, "a lazy record synced on its own");
    assert_eq!(log.durable_lsn(), 1);
    // A power loss now may lose it: it was never acknowledged.
    assert_records(&open_sim(&dir.crash(|| false), 1 << 20).1, 1);
    // Waiting asks for the sync at once (bounded, so a regression fails instead of hanging).
    await_within(Duration::from_secs(10), log.wait_durable_async(lsn))
        .expect("the waiter's sync never came")
        .unwrap();
    assert_eq!(dir.syncs(), syncs + 1);
    assert_eq!(log.durable_lsn(), 2);
}

#[test]
fn lazy_records_ride_with_the_next_eager_append() {
    let dir = SimDir::new();
    let log = open_lazy(&dir, Duration::from_secs(3600));
    let syncs = dir.syncs();
    for n in 1..=3 {
        log.append_lazy(&payload(n)).unwrap();
    }
    let eager = log.append(&payload(4)).unwrap();
    log.wait_durable(eager).unwrap();
    assert_eq!(log.durable_lsn(), 4);
    assert_eq!(
        dir.syncs(),
        syncs + 1,
        "one sync covered the lazy records and the eager one"
    );
    drop(log);
    assert_records(&open_sim(&dir.crash(|| false), 1 << 20).1, 4);
}

/// Asserts that the record at `lsn`, appended at `appended` to wait `wait` for a sync, was
/// synced by itself once that wait was over, and not before.
fn assert_synced_alone_after(log: &HotLog, lsn: u64, appended: Instant, wait: Duration) {
    assert!(
        eventually(Duration::from_secs(10), || log.durable_lsn() >= lsn),
        "the record was never synced"
    );
    assert!(
        appended.elapsed() >= wait,
        "synced before its wait of {wait:?} was over: {:?}",
        appended.elapsed()
    );
}

#[test]
fn a_lazy_record_nobody_asks_for_is_synced_once_lazy_sync_old() {
    let dir = SimDir::new();
    let log = open_lazy(&dir, Duration::from_millis(40));
    let appended = Instant::now();
    let lsn = log.append_lazy(&payload(1)).unwrap();
    assert_synced_alone_after(&log, lsn, appended, Duration::from_millis(40));
}

#[test]
fn a_waiter_dropped_before_it_is_polled_still_gets_its_sync() {
    let dir = SimDir::new();
    let log = open_lazy(&dir, Duration::from_secs(3600));
    let lsn = log.append_lazy(&payload(1)).unwrap();
    drop(log.durable_waiter(lsn));
    assert!(
        eventually(Duration::from_secs(10), || log.durable_lsn() >= lsn),
        "asking for a waiter did not start the sync"
    );
}

#[test]
fn a_record_that_may_wait_is_synced_by_itself_once_its_wait_is_over() {
    let dir = SimDir::new();
    let log = open_lazy(&dir, Duration::from_secs(3600));
    let appended = Instant::now();
    let wait = Duration::from_millis(300);
    let lsn = log.append_within(&payload(1), wait).unwrap();
    assert_synced_alone_after(&log, lsn, appended, wait);
}

#[test]
fn a_shorter_wait_moves_the_sync_of_the_records_before_it_forward() {
    let dir = SimDir::new();
    let log = open_lazy(&dir, Duration::from_secs(3600));
    let syncs = dir.syncs();
    log.append_lazy(&payload(1)).unwrap();
    let lsn = log
        .append_within(&payload(2), Duration::from_millis(20))
        .unwrap();
    // The appender slept towards the lazy record's hour: the new deadline must wake it.
    assert!(
        eventually(Duration::from_secs(10), || log.durable_lsn() >= lsn),
        "the shorter wait did not move the sync forward"
    );
    assert_eq!(dir.syncs(), syncs + 1, "one sync for both records");
    drop(log);
    assert_records(&open_sim(&dir.crash(|| false), 1 << 20).1, 2);
}

#[test]
fn a_record_that_may_wait_rides_with_the_next_eager_append_and_a_watcher_asks_for_nothing() {
    let dir = SimDir::new();
    let log = open_lazy(&dir, Duration::from_secs(3600));
    let syncs = dir.syncs();
    let first = log
        .append_within(&payload(1), Duration::from_secs(3600))
        .unwrap();
    // A watcher starts no sync: it is still waiting after a while.
    let watched = await_within(Duration::from_millis(100), log.durable_watcher(first));
    assert!(
        watched.is_err(),
        "a watcher's record was synced: {watched:?}"
    );
    assert_eq!(dir.syncs(), syncs);
    // The next eager append's sync covers it (what a step's commit does for its event).
    let watcher = log.durable_watcher(first);
    let eager = log.append(&payload(2)).unwrap();
    await_within(Duration::from_secs(10), watcher)
        .expect("the eager append's sync did not cover the waiting record")
        .unwrap();
    log.wait_durable(eager).unwrap();
    assert_eq!(dir.syncs(), syncs + 1, "one sync covered both records");
}
