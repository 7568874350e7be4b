//! Soak bench for retention: 200,000 webhook events through the store's real path (journal →
//! step commit with a session, a reply and OTN tokens → sent outcomes) while a sweeper thread
//! applies a retention of seconds, printing the data directory's size after each 50,000 events.
//!
//! `cargo bench -p botflow-storage --bench soak` (about a minute or two on 2 cores);
//! `SOAK_EVENTS=n` changes the total, `SOAK_RETENTION_MS=n` the window (default 2,000 ms),
//! `SOAK_NO_RETENTION=1` runs without the sweeper for comparison.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use botflow_flow::TopicId;
use botflow_storage::{
    EventId, NewJournalEvent, NewOutbound, NewToken, OutboundKind, Outcome, PageId, Psid,
    RetentionPolicy, Session, SledStore, StepCommit, Store, StoreOptions, SweepReport,
};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Events per journal batch and per combined step commit (one webhook's worth, as the pipeline).
const BATCH: u64 = 100;
/// Distinct subscribers the events are spread over.
const SUBSCRIBERS: u64 = 10_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Total size of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            total += dir_bytes(&path);
        } else if let Ok(meta) = entry.metadata() {
            total += meta.len();
        }
    }
    total
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Whether event `n` is an opt-in: every fourth event in even rounds over the subscribers; the
/// same subscribers' fourth events in odd rounds spend those tokens.
fn is_optin(n: u64) -> bool {
    n % 4 == 0 && (n / SUBSCRIBERS) % 2 == 0
}

/// Whether event `n` sends a message paid by the token its subscriber got a round before.
fn is_token_send(n: u64) -> bool {
    n % 4 == 0 && (n / SUBSCRIBERS) % 2 == 1
}

/// One webhook event of subscriber `psid`: a text message or an opt-in.
fn event(page: &PageId, n: u64, psid: &Psid, now: u64) -> NewJournalEvent {
    let payload = if is_optin(n) {
        json!({"sender": {"id": psid.as_str()}, "recipient": {"id": page.as_str()}, "timestamp": now,
               "optin": {"type": "one_time_notif_req", "payload": "bf1:o:page:restock:1:ask:0:topic",
                         "one_time_notif_token": format!("otn-{n}")}})
    } else {
        json!({"sender": {"id": psid.as_str()}, "recipient": {"id": page.as_str()}, "timestamp": now,
               "message": {"mid": format!("m_{n}"), "text": "Is the red one back in stock?"}})
    };
    NewJournalEvent {
        page: page.clone(),
        event: EventId(format!("mid.soak.{n}")),
        psid: psid.clone(),
        payload,
        received_ms: now,
    }
}

/// The step of event `n`: session, a reply, an opt-in's token or a token send.
fn step(page: &PageId, topic: &TopicId, n: u64, event: &NewJournalEvent, now: u64) -> StepCommit {
    let mut session = Session::default();
    session.fields.insert("first_name".into(), "Ada".into());
    session.fields.insert("n".into(), n.to_string());
    session.last_interaction_ms = Some(now);
    let mut outbound = vec![NewOutbound {
        body: json!({"recipient": {"id": event.psid.as_str()}, "messaging_type": "RESPONSE",
                     "message": {"text": format!("Reply {n}: thanks, we got it!")}}),
        kind: OutboundKind::Normal,
    }];
    let mut tokens_added = Vec::new();
    if is_optin(n) {
        tokens_added.push(NewToken {
            topic: topic.clone(),
            token: format!("otn-{n}"),
            created_ms: now,
            expires_ms: now + 365 * 86_400_000,
        });
    } else if is_token_send(n) {
        outbound.push(NewOutbound {
            body: json!({"message": {"text": "They are back!"}}),
            kind: OutboundKind::OtnToken {
                topic: topic.clone(),
            },
        });
    }
    StepCommit {
        page: page.clone(),
        psid: event.psid.clone(),
        event: Some(event.event.clone()),
        session,
        outbound,
        tokens_added,
        now_ms: now,
        durable: false,
        notification_run: None,
    }
}

fn main() {
    let total = env_u64("SOAK_EVENTS", 200_000);
    let window = env_u64("SOAK_RETENTION_MS", 2_000);
    let retention = std::env::var("SOAK_NO_RETENTION").is_err();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Arc::new(SledStore::open(&path, StoreOptions::default()).unwrap());
    let page = PageId::from("page-1");
    store.ensure_page(&page, now_ms()).unwrap();
    let topic = store.create_topic(&page, "Restock", now_ms()).unwrap().id;
    println!(
        "soak: {total} events, {} subscribers, retention {}",
        SUBSCRIBERS,
        if retention {
            format!("{window} ms (dedup and history), swept every 100 ms in batches of 2,000")
        } else {
            "off".to_owned()
        }
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = retention.then(|| {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        std::thread::spawn(move || {
            let policy = RetentionPolicy {
                dedup_ms: window,
                history_ms: window,
            };
            let mut removed = SweepReport::default();
            while !stop.load(Ordering::Relaxed) {
                loop {
                    let report = store.sweep_retention(now_ms(), &policy, 2_000).unwrap();
                    removed.dedup_records += report.dedup_records;
                    removed.messages += report.messages;
                    removed.tokens += report.tokens;
                    if !report.more || stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            removed
        })
    });

    let started = Instant::now();
    let mut n = 0;
    while n < total {
        let now = now_ms();
        let psids: Vec<Psid> = (n..n + BATCH)
            .map(|i| Psid(format!("psid-{}", i % SUBSCRIBERS)))
            .collect();
        let events: Vec<NewJournalEvent> = (n..n + BATCH)
            .zip(&psids)
            .map(|(i, psid)| event(&page, i, psid, now))
            .collect();
        store.journal_append_batch(&events).unwrap();
        let steps = (n..n + BATCH)
            .zip(&events)
            .map(|(i, e)| step(&page, &topic, i, e, now))
            .collect();
        let committed = store.commit_steps(steps).unwrap();
        let sent_at = now_ms();
        let outcomes: Vec<Outcome> = committed
            .into_iter()
            .flat_map(|c| c.unwrap().outbox_ids)
            .map(|id| Outcome::Sent {
                id,
                message_id: format!("m.{}", id.0),
                at_ms: sent_at,
            })
            .collect();
        for result in store.mark_outcomes(&outcomes).unwrap() {
            result.unwrap();
        }
        n += BATCH;
        if n % 50_000 == 0 {
            store.flush().unwrap();
            println!(
                "after {n:>7} events: data dir {:>7.1} MB, {:>5.1} s, retention index {} entries",
                mb(dir_bytes(&path)),
                started.elapsed().as_secs_f64(),
                store.retention_backlog(),
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(sweeper) = sweeper {
        let removed = sweeper.join().unwrap();
        println!(
            "removed while running: {} dedup records, {} messages, {} tokens",
            removed.dedup_records, removed.messages, removed.tokens
        );
    }
    let problems = store.verify_integrity().unwrap();
    assert!(problems.is_empty(), "integrity problems: {problems:?}");
    println!(
        "{} events in {:.1} s ({:.0} events/s); integrity check clean",
        total,
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
}
