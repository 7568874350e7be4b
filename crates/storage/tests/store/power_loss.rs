//! Simulated power loss of the store: rounds of the crash test's random writes, then a crash of
//! the log that keeps its synced bytes plus a random subset of its unsynced pages (the kernel
//! writes pages back in any order), taken while the store still runs. The store reopened on
//! what survived (sled's last checkpoint plus the log) must hold every acknowledged write and
//! its invariants.

use super::*;
use crate::crash::{Rng, check_round, parse_acks, seed, write_round};
use botflow_storage::log::SimDir;
use std::sync::Arc;

fn open_on(path: &Path, log: &SimDir) -> SledStore {
    SledStore::open(
        path,
        StoreOptions {
            flush_every_ms: None,
            cache_capacity_bytes: 16 * 1024 * 1024,
            log_dir: Some(Arc::new(log.clone())),
            log_segment_bytes: 8 * 1024,
            // Checkpoints only where the test takes them: one running after the crash was
            // taken could copy into sled what the crashed log no longer has.
            checkpoint_every_ms: None,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn acknowledged_writes_survive_a_power_loss_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = SimDir::new();
    let mut rng = Rng(seed());
    let mut acknowledged = 0;
    for round in 0..12 {
        let store = open_on(dir.path(), &log);
        let lines = std::sync::Mutex::new(Vec::new());
        let (crashed, acks) = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                write_round(&store, round, 400, &mut |line| {
                    lines.lock().unwrap().push(line)
                })
            });
            // Let it write a while, checkpoint in half the rounds, then cut the power while
            // syncs hang, so appended but unsynced records are in flight.
            std::thread::sleep(std::time::Duration::from_millis(5 + rng.below(20)));
            if rng.below(2) == 0 {
                store.checkpoint().unwrap();
            }
            log.hold_syncs(true);
            std::thread::sleep(std::time::Duration::from_millis(rng.below(5)));
            let acks = lines.lock().unwrap().clone();
            let crashed = log.crash(|| rng.below(2) == 0);
            log.hold_syncs(false);
            writer.join().unwrap();
            (crashed, acks)
        });
        store.close_without_checkpoint();
        log = crashed;
        let store = open_on(dir.path(), &log);
        let acks = parse_acks(&acks);
        acknowledged += acks.lines;
        check_round(&store, &acks, round);
    }
    assert!(
        acknowledged > 100,
        "only {acknowledged} acknowledged writes"
    );
}
