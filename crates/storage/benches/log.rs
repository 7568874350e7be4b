//! HotLog probe: durable appends of a webhook-sized record (about 400 bytes) from 1, 16 and 64
//! threads on a real directory; prints appends/s, fdatasyncs per append, bytes per sync and the
//! p50/p99 wait of one durable append. Every loop is bounded by time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use botflow_storage::log::{HotLog, LogOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long each measurement runs (`BOTFLOW_BENCH_MS`, default 2,000 ms).
fn run_time() -> Duration {
    let ms = std::env::var("BOTFLOW_BENCH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    Duration::from_millis(ms)
}

fn main() {
    let record = vec![b'e'; 400];
    println!(
        "HotLog durable appends of {} B records, {:?} per row:",
        record.len(),
        run_time()
    );
    for threads in [1usize, 16, 64] {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = HotLog::open_path(dir.path(), LogOptions::default()).unwrap();
        let log = Arc::new(log);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (log, stop, record) = (log.clone(), stop.clone(), record.clone());
                std::thread::spawn(move || {
                    let mut waits = Vec::new();
                    while !stop.load(Ordering::Relaxed) && waits.len() < 10_000_000 {
                        let t = Instant::now();
                        log.append_durable(&record).unwrap();
                        waits.push(t.elapsed());
                    }
                    waits
                })
            })
            .collect();
        std::thread::sleep(run_time());
        stop.store(true, Ordering::Relaxed);
        let mut waits: Vec<Duration> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let elapsed = started.elapsed().as_secs_f64();
        waits.sort();
        let at = |q: f64| waits[((waits.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
        let stats = log.stats();
        println!(
            "  {threads:>2} appenders: {:>8.0} appends/s, {:.3} fdatasyncs per append, {:>6.0} B per sync, wait p50 {:.2} ms, p99 {:.2} ms",
            stats.appends as f64 / elapsed,
            stats.syncs as f64 / stats.appends.max(1) as f64,
            stats.bytes as f64 / stats.syncs.max(1) as f64,
            at(0.5),
            at(0.99)
        );
    }
}
