//! Store benchmarks with raw sled doing the same flushes side by side: durable journal appends
//! with 1, 16 and 256 writer threads, durable session+outbox commits, send outcomes one by one
//! and batched (`mark_outcomes`), and the topic list with 1,000 topics and 1,000,000 tokens. Prints a table; every loop is bounded by time or count.
//! `--pg` (or the section `pg`) compares the sled and PostgreSQL stores through the trait on the
//! same operations (the tests' database: `BOTFLOW_TEST_DATABASE_URL`, or a throwaway cluster
//! started with `fsync=off`, so its durable figures are an upper bound).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use botflow_flow::TopicId;
use botflow_storage::{
    EventId, NewOutbound, NewToken, OutboundKind, OutboxId, Outcome, PageId, Psid, Session,
    SledStore, StepCommit, Store, StoreOptions,
};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long each throughput measurement runs.
const RUN: Duration = Duration::from_millis(1_500);

fn options() -> StoreOptions {
    StoreOptions::default()
}

fn open_store(dir: &std::path::Path) -> SledStore {
    SledStore::open(dir, options()).unwrap()
}

fn open_raw(dir: &std::path::Path) -> sled::Db {
    let o = options();
    sled::Config::new()
        .path(dir)
        .flush_every_ms(o.flush_every_ms)
        .cache_capacity(o.cache_capacity_bytes)
        .open()
        .unwrap()
}

fn webhook_event(thread: usize, i: u64) -> serde_json::Value {
    json!({
        "sender": {"id": format!("psid-{thread}")},
        "recipient": {"id": "page-1"},
        "timestamp": 1_700_000_000_000u64 + i,
        "message": {"mid": format!("m_{thread}_{i}"), "text": "Is the red one back in stock?"}
    })
}

/// Runs `threads` writers calling `op(thread, i)` until RUN passes; returns operations per second.
fn throughput(threads: usize, op: impl Fn(usize, u64) + Send + Sync + 'static) -> f64 {
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (op, stop, done) = (op.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
                    op(t, i);
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while started.elapsed() < RUN {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn journal_store(threads: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_store(dir.path()));
    let page = PageId::from("page-1");
    throughput(threads, move |t, i| {
        let payload = webhook_event(t, i);
        store
            .journal_append(
                &page,
                &EventId(format!("m_{t}_{i}")),
                &Psid(format!("psid-{t}")),
                &payload,
                i,
            )
            .unwrap();
    })
}

fn journal_raw(threads: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let db = open_raw(dir.path());
    let tree = db.open_tree("journal").unwrap();
    throughput(threads, move |t, i| {
        let payload = serde_json::to_vec(&webhook_event(t, i)).unwrap();
        tree.insert(format!("m_{t}_{i}"), payload).unwrap();
        db.flush().unwrap();
    })
}

fn session(n: u64) -> Session {
    let mut session = Session::default();
    session.fields.insert("first_name".into(), "Ada".into());
    session
        .fields
        .insert("email".into(), "ada@example.com".into());
    session.fields.insert("n".into(), n.to_string());
    session.tags.insert("lead".into());
    session.last_interaction_ms = Some(n);
    session
}

fn outbound(n: u64) -> Vec<NewOutbound> {
    (0..2)
        .map(|k| NewOutbound {
            body: json!({"recipient": {"id": "psid"}, "messaging_type": "RESPONSE",
                         "message": {"text": format!("Reply {n}.{k}: thanks, we got it!")}}),
            kind: OutboundKind::Normal,
        })
        .collect()
}

fn commits_store(threads: usize, durable: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_store(dir.path()));
    throughput(threads, move |t, i| {
        store
            .commit_step(StepCommit {
                page: PageId::from("page-1"),
                psid: Psid(format!("psid-{t}-{}", i % 1_000)),
                event: None,
                session: session(i),
                outbound: outbound(i),
                tokens_added: Vec::new(),
                now_ms: i,
                durable,
                notification_run: None,
            })
            .unwrap();
    })
}

/// Steps per `commit_steps` call in the batched measurement.
const BATCH: u64 = 64;

fn step(t: usize, i: u64) -> StepCommit {
    StepCommit {
        page: PageId::from("page-1"),
        psid: Psid(format!("psid-{t}-{}", i % 1_000)),
        event: None,
        session: session(i),
        outbound: outbound(i),
        tokens_added: Vec::new(),
        now_ms: i,
        durable: true,
        notification_run: None,
    }
}

/// Durable batched commits; returns steps per second.
fn batched_store(threads: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_store(dir.path()));
    let batches = throughput(threads, move |t, i| {
        let steps = (0..BATCH).map(|k| step(t, i * BATCH + k)).collect();
        for result in store.commit_steps(steps).unwrap() {
            result.unwrap();
        }
    });
    batches * BATCH as f64
}

/// Raw sled writing the same sessions and messages, `BATCH` steps per transaction and flush.
fn batched_raw(threads: usize) -> f64 {
    use sled::Transactional;
    let dir = tempfile::tempdir().unwrap();
    let db = open_raw(dir.path());
    let sessions = db.open_tree("sessions").unwrap();
    let outbox = db.open_tree("outbox").unwrap();
    let batches = throughput(threads, move |t, i| {
        let steps: Vec<(String, Vec<u8>, Vec<Vec<u8>>)> = (0..BATCH)
            .map(|k| {
                let n = i * BATCH + k;
                let messages = outbound(n)
                    .iter()
                    .map(|m| serde_json::to_vec(&m.body).unwrap())
                    .collect();
                (
                    format!("psid-{t}-{}", n % 1_000),
                    serde_json::to_vec(&session(n)).unwrap(),
                    messages,
                )
            })
            .collect();
        (&sessions, &outbox)
            .transaction(|(sessions, outbox)| {
                for (key, s, messages) in &steps {
                    sessions.insert(key.as_bytes(), s.clone())?;
                    for m in messages {
                        let id = outbox.generate_id()?;
                        outbox.insert(&id.to_be_bytes(), m.clone())?;
                    }
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .unwrap();
        db.flush().unwrap();
    });
    batches * BATCH as f64
}

fn commits_raw(threads: usize) -> f64 {
    use sled::Transactional;
    let dir = tempfile::tempdir().unwrap();
    let db = open_raw(dir.path());
    let sessions = db.open_tree("sessions").unwrap();
    let outbox = db.open_tree("outbox").unwrap();
    throughput(threads, move |t, i| {
        let s = serde_json::to_vec(&session(i)).unwrap();
        let messages: Vec<Vec<u8>> = outbound(i)
            .iter()
            .map(|m| serde_json::to_vec(&m.body).unwrap())
            .collect();
        (&sessions, &outbox)
            .transaction(|(sessions, outbox)| {
                sessions.insert(format!("psid-{t}-{}", i % 1_000).as_bytes(), s.clone())?;
                for m in &messages {
                    let id = outbox.generate_id()?;
                    outbox.insert(&id.to_be_bytes(), m.clone())?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .unwrap();
        db.flush().unwrap();
    })
}

const TOPICS: usize = 1_000;
const PER_COMMIT: u64 = 500;
/// Expiry of one token in fifty, to measure the list before a sweep.
const EXPIRING_AT: u64 = 5_000_000;

fn big_store(dir: &std::path::Path) -> SledStore {
    // A cache that holds the whole data set, as a production store of this size would have.
    SledStore::open(
        dir,
        StoreOptions {
            cache_capacity_bytes: 2 * 1024 * 1024 * 1024,
            ..options()
        },
    )
    .unwrap()
}

/// Builds 1,000 topics and `tokens_total` tokens through real step commits; returns tokens/s.
fn build_tokens(dir: &std::path::Path, tokens_total: u64) -> f64 {
    let store = big_store(dir);
    let page = PageId::from("page-1");
    let topics: Vec<TopicId> = (0..TOPICS)
        .map(|i| {
            store
                .create_topic(&page, &format!("Topic {i}"), 0)
                .unwrap()
                .id
        })
        .collect();
    let built = Instant::now();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    for c in 0..tokens_total / PER_COMMIT {
        let tokens: Vec<NewToken> = (0..PER_COMMIT)
            .map(|k| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let n = c * PER_COMMIT + k;
                NewToken {
                    topic: topics[(rng % TOPICS as u64) as usize].clone(),
                    token: format!("tok-{n:08}"),
                    created_ms: n,
                    expires_ms: if n % 50 == 0 {
                        EXPIRING_AT
                    } else {
                        u64::MAX / 2
                    },
                }
            })
            .collect();
        store
            .commit_step(StepCommit {
                page: page.clone(),
                psid: Psid(format!("psid-{c}")),
                event: None,
                session: Session::default(),
                outbound: Vec::new(),
                tokens_added: tokens,
                now_ms: 1,
                durable: false,
                notification_run: None,
            })
            .unwrap();
    }
    store.flush().unwrap();
    tokens_total as f64 / built.elapsed().as_secs_f64()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Times the topic list over 1,000 topics and 1,000,000 tokens. The data set is built once
/// (through real commits) and kept under target/ for later runs; each run works on a copy.
fn topic_list() -> Vec<(String, String)> {
    let tokens_total: u64 = std::env::var("BENCH_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "botflow-topics-{tokens_total}-format{}",
        botflow_storage::DATABASE_FORMAT
    ));
    let marker = cache.join("built-tokens-per-second");
    let build_figure = match std::fs::read_to_string(&marker) {
        Ok(rate) => format!("{rate} tokens/s (built by an earlier run, reused)"),
        Err(_) => {
            let _ = std::fs::remove_dir_all(&cache);
            let rate = build_tokens(&cache.join("db"), tokens_total);
            std::fs::write(&marker, format!("{rate:.0}")).unwrap();
            format!("{rate:.0} tokens/s")
        }
    };
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&cache.join("db"), dir.path());
    let store = big_store(dir.path());
    let page = PageId::from("page-1");
    let expiring_at = EXPIRING_AT;
    let time_list = |now: u64| -> (f64, u64) {
        let mut best = f64::MAX;
        let mut total = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let listed = store.list_topics(&page, now).unwrap();
            best = best.min(started.elapsed().as_secs_f64() * 1_000.0);
            assert_eq!(listed.len(), TOPICS);
            total = listed.iter().map(|s| s.usable_tokens).sum();
        }
        (best, total)
    };
    let (fresh_ms, fresh_total) = time_list(2);
    let (unswept_ms, unswept_total) = time_list(expiring_at);
    let swept = Instant::now();
    let expired = store.expire_tokens(expiring_at).unwrap();
    let sweep_secs = swept.elapsed().as_secs_f64();
    let (swept_ms, swept_total) = time_list(expiring_at);
    assert_eq!(fresh_total, tokens_total);
    assert_eq!(unswept_total, tokens_total - expired);
    assert_eq!(swept_total, unswept_total);
    vec![
        (
            format!("build: {tokens_total} tokens, {PER_COMMIT} per commit"),
            build_figure,
        ),
        (
            format!("list {TOPICS} topics, {tokens_total} usable tokens"),
            format!("{fresh_ms:.2} ms"),
        ),
        (
            format!("list with {expired} expired, not yet swept"),
            format!("{unswept_ms:.2} ms"),
        ),
        (
            format!("expire_tokens sweep of {expired}"),
            format!(
                "{:.0} tokens/s ({sweep_secs:.1} s)",
                expired as f64 / sweep_secs
            ),
        ),
        ("list after the sweep".into(), format!("{swept_ms:.2} ms")),
    ]
}

/// Messages per outcome measurement (one per subscriber, so each is its queue's head).
const OUTCOME_MESSAGES: u64 = 10_000;

/// A store with `OUTCOME_MESSAGES` pending messages, queued without waiting for the disk.
fn outcome_store(dir: &std::path::Path) -> (Arc<SledStore>, Vec<OutboxId>) {
    let store = Arc::new(open_store(dir));
    let mut ids = Vec::new();
    for chunk in (0..OUTCOME_MESSAGES).collect::<Vec<_>>().chunks(256) {
        let steps = chunk
            .iter()
            .map(|&n| StepCommit {
                outbound: outbound(n).into_iter().take(1).collect(),
                durable: false,
                ..step(0, n)
            })
            .collect();
        for result in store.commit_steps(steps).unwrap() {
            ids.extend(result.unwrap().outbox_ids);
        }
    }
    store.flush().unwrap();
    (store, ids)
}

/// `mark_sent` per message (durable each, group-committed) from `threads` threads; per second.
fn outcomes_single(threads: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = outcome_store(dir.path());
    let ids = Arc::new(ids);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, ids) = (Arc::clone(&store), Arc::clone(&ids));
            std::thread::spawn(move || {
                for id in ids.iter().skip(t).step_by(threads) {
                    store.mark_sent(*id, "m.1", 1).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    ids.len() as f64 / started.elapsed().as_secs_f64()
}

/// `mark_outcomes` with `batch` outcomes per call from one thread, flushing after each call
/// when `flush` (what a batch holding a token send costs); per second.
fn outcomes_batched(batch: usize, flush: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = outcome_store(dir.path());
    let started = Instant::now();
    for chunk in ids.chunks(batch) {
        let outcomes: Vec<Outcome> = chunk
            .iter()
            .map(|&id| Outcome::Sent {
                id,
                message_id: "m.1".into(),
                at_ms: 1,
            })
            .collect();
        for result in store.mark_outcomes(&outcomes).unwrap() {
            result.unwrap();
        }
        if flush {
            store.flush().unwrap();
        }
    }
    ids.len() as f64 / started.elapsed().as_secs_f64()
}

/// A fresh store of either backend through the trait, with what keeps it alive.
fn backend_store(pg: bool) -> (Box<dyn std::any::Any>, Arc<dyn Store>) {
    if pg {
        let schema = botflow_storage::pg_test::TestSchema::new();
        let store = Arc::new(schema.store());
        (Box::new(schema), store)
    } else {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open_store(dir.path()));
        (Box::new(dir), store)
    }
}

/// The same operations on sled and PostgreSQL, through `Store`.
fn pg_comparison() {
    println!(
        "{:<44} {:>14} {:>14} {:>8}",
        "through the Store trait", "sled /s", "postgres /s", "sled/pg"
    );
    let line = |what: String, sled: f64, pg: f64| {
        println!("{what:<44} {sled:>14.0} {pg:>14.0} {:>7.2}x", sled / pg);
    };
    let journal = |pg: bool, threads: usize| {
        let (guard, store) = backend_store(pg);
        let page = PageId::from("page-1");
        let rate = throughput(threads, move |t, i| {
            store
                .journal_append(
                    &page,
                    &EventId(format!("m_{t}_{i}")),
                    &Psid(format!("psid-{t}")),
                    &webhook_event(t, i),
                    i,
                )
                .unwrap();
        });
        drop(guard);
        rate
    };
    for threads in [1, 16] {
        line(
            format!("durable journal appends, {threads} threads"),
            journal(false, threads),
            journal(true, threads),
        );
    }
    let commits = |pg: bool, threads: usize| {
        let (guard, store) = backend_store(pg);
        let rate = throughput(threads, move |t, i| {
            store.commit_step(step(t, i)).unwrap();
        });
        drop(guard);
        rate
    };
    for threads in [1, 16] {
        line(
            format!("durable step commits, {threads} threads"),
            commits(false, threads),
            commits(true, threads),
        );
    }
    let batched = |pg: bool| {
        let (guard, store) = backend_store(pg);
        let rate = throughput(1, move |t, i| {
            let steps = (0..BATCH).map(|k| step(t, i * BATCH + k)).collect();
            for result in store.commit_steps(steps).unwrap() {
                result.unwrap();
            }
        }) * BATCH as f64;
        drop(guard);
        rate
    };
    line(
        format!("durable steps, {BATCH} per commit_steps, 1 thread"),
        batched(false),
        batched(true),
    );
    println!();
}

fn ratio_line(what: String, store: f64, raw: f64) {
    println!("{what:<44} {store:>14.0} {raw:>14.0} {:>7.2}x", raw / store);
}

fn header(what: &str) {
    println!(
        "{what:<44} {:>14} {:>14} {:>8}",
        "store /s", "raw sled /s", "raw/store"
    );
}

fn main() {
    // `cargo test --benches` runs this too: keep that quick.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    // An optional argument picks one section: journal, commits, outcomes or topics.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if std::env::args().any(|a| a == "--pg") || only.as_deref() == Some("pg") {
        pg_comparison();
        return;
    }
    let run = |section: &str| only.as_deref().is_none_or(|o| o == section);
    println!(
        "botflow-storage benchmarks ({} s per throughput run)\n",
        RUN.as_secs_f64()
    );
    if run("journal") {
        header("durable journal appends");
        for threads in [1, 16, 256] {
            let store = journal_store(threads);
            let raw = journal_raw(threads);
            ratio_line(format!("{threads} writer threads"), store, raw);
        }
        println!();
    }
    if run("commits") {
        header("session + 2 outbound commits");
        for threads in [1, 16] {
            let store = commits_store(threads, true);
            let raw = commits_raw(threads);
            ratio_line(format!("durable, {threads} threads"), store, raw);
        }
        for threads in [1, 4] {
            let store = batched_store(threads);
            let raw = batched_raw(threads);
            ratio_line(
                format!("durable, {BATCH} per commit_steps, {threads} threads"),
                store,
                raw,
            );
        }
        let store = commits_store(1, false);
        println!(
            "{:<44} {store:>14.0} {:>14} {:>8}",
            "non-durable, 1 thread", "-", "-"
        );
        println!();
    }
    if run("outcomes") {
        println!("send outcomes ({OUTCOME_MESSAGES} messages)");
        for threads in [1, 16] {
            let rate = outcomes_single(threads);
            println!(
                "{:<44} {rate:>14.0}",
                format!("mark_sent, durable each, {threads} threads")
            );
        }
        for (batch, flush) in [(32, false), (256, false), (32, true)] {
            let rate = outcomes_batched(batch, flush);
            let what = if flush { ", flushed" } else { "" };
            println!(
                "{:<44} {rate:>14.0}",
                format!("mark_outcomes, {batch} per call{what}")
            );
        }
        println!();
    }
    if run("topics") {
        println!("topic list");
        for (what, figure) in topic_list() {
            println!("{what:<44} {figure:>30}");
        }
    }
}
