//! Group commit under concurrency: every waiter is covered by a sync, far fewer syncs than
//! appends, LSNs unique; a failed fdatasync poisons the log for good; a hung one acknowledges
//! nothing.

use crate::{append_durable, assert_records, open_sim, payload};
use botflow_storage::log::{HotLog, LogError, LogOptions, SimDir};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn concurrent_appenders_share_fdatasyncs_on_a_real_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (threads, per_thread) = (16u64, 100u64);
    let written: BTreeMap<u64, Vec<u8>> = {
        let (log, recovered) = HotLog::open_path(dir.path(), LogOptions::default()).unwrap();
        assert!(recovered.records.is_empty());
        let log = Arc::new(log);
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..per_thread {
                        let bytes = format!("thread {t} record {i}").into_bytes();
                        let lsn = log.append_durable(&bytes).unwrap();
                        // Covered: the watermark passed this record when the wait returned.
                        assert!(log.durable_lsn() >= lsn);
                        mine.push((lsn, bytes));
                    }
                    mine
                })
            })
            .collect();
        let written: BTreeMap<u64, Vec<u8>> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let stats = log.stats();
        assert_eq!(stats.appends, threads * per_thread);
        assert!(
            stats.syncs < stats.appends,
            "group commit shares syncs: {} syncs for {} appends",
            stats.syncs,
            stats.appends
        );
        assert!(
            stats.sync_time > std::time::Duration::ZERO,
            "the time spent in {} fdatasyncs is counted",
            stats.syncs
        );
        written
    };
    assert_eq!(
        written.len() as u64,
        threads * per_thread,
        "LSNs are unique"
    );
    let (_, recovered) = HotLog::open_path(dir.path(), LogOptions::default()).unwrap();
    let recovered: BTreeMap<u64, Vec<u8>> = recovered.records.into_iter().collect();
    assert_eq!(recovered, written);
}

#[test]
fn async_waiters_are_woken_by_the_watermark() {
    let dir = SimDir::new();
    let (log, _) = open_sim(&dir, 1 << 20);
    let log = Arc::new(log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lsns = runtime.block_on(async {
        let tasks: Vec<_> = (1..=64u64)
            .map(|n| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let lsn = log.append(&payload(n)).unwrap();
                    log.wait_durable_async(lsn).await.unwrap();
                    assert!(log.durable_lsn() >= lsn);
                    lsn
                })
            })
            .collect();
        let mut lsns = Vec::new();
        for task in tasks {
            lsns.push(task.await.unwrap());
        }
        lsns
    });
    lsns.iter().for_each(|lsn| assert!(*lsn >= 1 && *lsn <= 64));
    assert_eq!(log.durable_lsn(), 64);
}

#[test]
fn a_failed_fdatasync_poisons_the_log_and_is_never_retried() {
    let dir = SimDir::new();
    let (log, _) = open_sim(&dir, 1 << 20);
    append_durable(&log, 1, 3);
    let attempts = dir.sync_attempts();
    dir.fail_next_syncs(1);
    let error = log.append_durable(&payload(4)).unwrap_err();
    assert!(
        matches!(&error, LogError::Poisoned { cause } if cause.contains("fdatasync")),
        "{error}"
    );
    assert!(error.to_string().contains("restart"), "{error}");
    assert!(log.is_poisoned());
    assert_eq!(
        log.durable_lsn(),
        3,
        "nothing after the failed sync is reported durable"
    );
    assert!(matches!(
        log.append(&payload(5)),
        Err(LogError::Poisoned { .. })
    ));
    assert!(matches!(
        log.wait_durable(4),
        Err(LogError::Poisoned { .. })
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(matches!(
        runtime.block_on(log.wait_durable_async(4)),
        Err(LogError::Poisoned { .. })
    ));
    drop(log);
    assert_eq!(
        dir.sync_attempts(),
        attempts + 1,
        "the failed sync was not retried"
    );
    // A restart after the power went: what was synced before the failure is there.
    let (log, recovered) = open_sim(&dir.crash(|| false), 1 << 20);
    assert_records(&recovered, 3);
    assert!(!log.is_poisoned());
}

#[test]
fn while_fdatasync_hangs_nothing_new_is_acknowledged() {
    let dir = SimDir::new();
    let (log, _) = open_sim(&dir, 1 << 20);
    let log = Arc::new(log);
    append_durable(&log, 1, 2);
    dir.hold_syncs(true);
    let lsn = log.append(&payload(3)).unwrap();
    let waited = crate::await_within(Duration::from_millis(200), log.wait_durable_async(lsn));
    assert!(waited.is_err(), "a wait returned while fdatasync hung");
    assert_eq!(log.durable_lsn(), 2);
    dir.hold_syncs(false);
    log.wait_durable(lsn).unwrap();
    assert_eq!(log.durable_lsn(), 3);
}
