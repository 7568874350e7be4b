//! Tests of `HotLog`, the group-committed segment log: recovery from torn tails and damaged
//! segments, simulated power loss, concurrent group commit, fsync failure, segment deletion,
//! and SIGKILL of a child process appending to a real directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod concurrency;
mod crash;
mod lazy;
mod power_loss;
mod recovery;

use botflow_storage::log::{HotLog, LogDir, LogOptions, Lsn, Recovered, SimDir};
use std::sync::Arc;

/// The payload of record `n` in these tests: distinct, with a varying length.
pub(crate) fn payload(n: u64) -> Vec<u8> {
    format!("record-{n}-{}", "x".repeat((n % 97) as usize)).into_bytes()
}

/// Opens a log on a simulated directory, without preallocation: each segment holds exactly
/// its frames, which the tests of raw segment bytes rely on.
pub(crate) fn open_sim(dir: &SimDir, segment_bytes: u64) -> (HotLog, Recovered) {
    open_sim_preallocating(dir, segment_bytes, 0)
}

/// Opens a log on a simulated directory that keeps `preallocate_bytes` of zeros ahead of its
/// records.
pub(crate) fn open_sim_preallocating(
    dir: &SimDir,
    segment_bytes: u64,
    preallocate_bytes: u64,
) -> (HotLog, Recovered) {
    HotLog::open(
        Arc::new(dir.clone()) as Arc<dyn LogDir>,
        LogOptions {
            segment_bytes,
            preallocate_bytes,
            ..LogOptions::default()
        },
    )
    .unwrap()
}

/// Runs `future` on a current-thread runtime for at most `limit` (`Err`: it did not finish).
pub(crate) fn await_within<F: std::future::Future>(
    limit: std::time::Duration,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async { tokio::time::timeout(limit, future).await })
}

/// Appends records `from..=to` (payloads by [`payload`]) and waits until they are durable.
pub(crate) fn append_durable(log: &HotLog, from: u64, to: u64) -> Lsn {
    let mut last = 0;
    for n in from..=to {
        last = log.append(&payload(n)).unwrap();
        assert_eq!(last, n, "LSNs are consecutive from 1");
    }
    log.wait_durable(last).unwrap();
    last
}

/// Asserts the recovered records are exactly 1..=n with their payloads.
pub(crate) fn assert_records(recovered: &Recovered, n: u64) {
    let lsns: Vec<Lsn> = recovered.records.iter().map(|r| r.0).collect();
    assert_eq!(lsns, (1..=n).collect::<Vec<_>>());
    for (lsn, bytes) in &recovered.records {
        assert_eq!(bytes, &payload(*lsn), "payload of LSN {lsn}");
    }
}

/// A small deterministic generator (xorshift) for tests that pick random moments.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
