//! HotLog probe: durable appends of a webhook-sized record (about 400 bytes) from 1, 16 and 64
//! threads on a real directory, with the default 1 MiB of zeros kept ahead of the records and
//! without (the file grows with each group); prints appends/s, fdatasyncs per append, bytes per sync and the
//! p50/p99 wait of one durable append; then a raw `fdatasync` probe: write + `fdatasync` latency
//! by bytes per sync, appending to a growing file versus overwriting a zero-filled, synced one
//! (the choice between growing and preallocated segments). Every loop is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use botflow_storage::log::{HotLog, LogOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
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

/// p50 and p99 (ms) of `write` + `fdatasync` of `bytes` at a time, 400 times: appended to a
/// growing file, or written over a zero-filled file that was synced beforehand.
fn sync_probe(bytes: usize, preallocated: bool) -> (f64, f64) {
    const ROUNDS: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(dir.path().join("probe"))
        .unwrap();
    if preallocated {
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(bytes * ROUNDS).div_ceil(zeros.len()) {
            file.write_all(&zeros).unwrap();
        }
        file.sync_all().unwrap();
    }
    let data = vec![b'r'; bytes];
    let mut waits: Vec<f64> = (0..ROUNDS)
        .map(|i| {
            let t = Instant::now();
            file.write_all_at(&data, (i * bytes) as u64).unwrap();
            file.sync_data().unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    waits.sort_by(f64::total_cmp);
    (waits[ROUNDS / 2], waits[ROUNDS * 99 / 100])
}

fn main() {
    let record = vec![b'e'; 400];
    println!(
        "HotLog durable appends of {} B records, {:?} per row:",
        record.len(),
        run_time()
    );
    let rows = [1usize, 16, 64].into_iter().flat_map(|threads| {
        [
            (threads, LogOptions::default().preallocate_bytes),
            (threads, 0),
        ]
    });
    for (threads, preallocate_bytes) in rows {
        let dir = tempfile::tempdir().unwrap();
        let options = LogOptions {
            preallocate_bytes,
            ..LogOptions::default()
        };
        let (log, _) = HotLog::open_path(dir.path(), options).unwrap();
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
            "  {threads:>2} appenders, {:>7}: {:>8.0} appends/s, {:.3} fdatasyncs per append, {:>6.0} B per sync, wait p50 {:.2} ms, p99 {:.2} ms",
            match preallocate_bytes {
                0 => "growing".to_owned(),
                n => format!("{} KiB", n / 1024),
            },
            stats.appends as f64 / elapsed,
            stats.syncs as f64 / stats.appends.max(1) as f64,
            stats.bytes as f64 / stats.syncs.max(1) as f64,
            at(0.5),
            at(0.99)
        );
    }
    println!("write + fdatasync, 400 times per row (ms, p50 / p99):");
    for bytes in [512usize, 4096, 65_536] {
        let (g50, g99) = sync_probe(bytes, false);
        let (z50, z99) = sync_probe(bytes, true);
        println!(
            "  {bytes:>6} B per sync: growing file {g50:.3} / {g99:.3}, zero-filled file {z50:.3} / {z99:.3}"
        );
    }
}
