//! Simulated power loss: the file layer keeps synced bytes plus any subset of the unsynced
//! pages. After every crash, the recovered log is a prefix of what was appended that holds every
//! record acknowledged as durable, and appends continue after it.

use crate::{open_sim_preallocating, payload};
use botflow_storage::log::{HotLog, Lsn, SimDir};
use proptest::prelude::*;
use std::time::{Duration, Instant};

/// Waits (bounded) until the appender is blocked in a held sync.
fn wait_blocked(dir: &SimDir) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.blocked_syncs() == 0 {
        assert!(
            Instant::now() < deadline,
            "the appender never reached its sync"
        );
        std::thread::yield_now();
    }
}

/// Appends `count` records after `*next` (payloads by [`payload`]).
fn append(log: &HotLog, next: &mut Lsn, count: u64) {
    for _ in 0..count {
        *next += 1;
        assert_eq!(log.append(&payload(*next)).unwrap(), *next);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_acknowledged_record_survives_and_recovery_is_a_prefix(
        rounds in prop::collection::vec(
            (prop::collection::vec((1u64..6, any::<bool>()), 1..12), 1u64..40),
            1..4,
        ),
        keep in prop::collection::vec(any::<bool>(), 1..64),
        segment_bytes in prop::sample::select(vec![256u64, 2048, 1 << 20]),
        preallocate_bytes in prop::sample::select(vec![0u64, 100, 4096]),
    ) {
        let mut dir = SimDir::new();
        let mut appended: Lsn = 0;
        let mut acknowledged: Lsn = 0;
        let mut keep = keep.into_iter().cycle();
        for (ops, unsynced) in rounds {
            let (log, recovered) = open_sim_preallocating(&dir, segment_bytes, preallocate_bytes);
            // Recovered: a prefix 1..=k of what was appended, holding every acknowledged record.
            let k = recovered.records.last().map_or(0, |r| r.0);
            prop_assert!(k >= acknowledged, "lost acknowledged records: kept {k}, acked {acknowledged}");
            prop_assert!(k <= appended);
            for (i, (lsn, bytes)) in recovered.records.iter().enumerate() {
                prop_assert_eq!(*lsn, i as u64 + 1);
                prop_assert_eq!(bytes, &payload(*lsn));
            }
            appended = k;
            acknowledged = k;
            for (count, durable) in ops {
                append(&log, &mut appended, count);
                if durable {
                    log.wait_durable(appended).unwrap();
                    acknowledged = appended;
                }
            }
            // The power goes while a group is written but its sync has not returned.
            dir.hold_syncs(true);
            append(&log, &mut appended, unsynced);
            wait_blocked(&dir);
            prop_assert!(log.durable_lsn() < appended, "a held sync acknowledged nothing new");
            acknowledged = acknowledged.max(log.durable_lsn());
            let crashed = dir.crash(|| keep.next().unwrap_or(true));
            dir.hold_syncs(false);
            drop(log);
            dir = crashed;
        }
        let (_, recovered) = open_sim_preallocating(&dir, segment_bytes, preallocate_bytes);
        let k = recovered.records.last().map_or(0, |r| r.0);
        prop_assert!(k >= acknowledged && k <= appended);
    }
}
