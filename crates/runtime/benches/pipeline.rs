//! The whole path: journal (durable, batched like webhook deliveries) → scheduler → step →
//! durable commit → dispatcher → the fake Graph API over HTTP, with 10,000 subscribers.
//! Target on a 2-core machine: over 10,000 events/s. Run with
//! `cargo bench -p botflow-runtime --bench pipeline`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use botflow_flow::FlowDocument;
use botflow_messenger::fake::FakeGraphApi;
use botflow_messenger::{ClientConfig, SendClient, parse_webhook};
use botflow_runtime::{Runtime, RuntimeConfig};
use botflow_storage::{
    Appended, EventId, JournalEntry, NewJournalEvent, PageId, Psid, SledStore, Store, StoreOptions,
};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SUBSCRIBERS: usize = 10_000;
const EVENTS_PER_SUBSCRIBER: usize = 2;
/// Events per journal batch, like one webhook delivery carrying several events.
const BATCH: usize = 100;

const FLOW: &str = r#"{"format": 1, "id": "reply", "name": "Reply", "triggers": [{"type": "default"}],
  "start": "ack", "blocks": [
    {"id": "ack", "type": "send_message", "messages": [{"type": "text", "text": "got it"}]}]}"#;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(dir.path(), StoreOptions::default()).unwrap());
    let page = PageId::from("bench-page");
    store.ensure_page(&page, 0).unwrap();
    let doc: FlowDocument = serde_json::from_str(FLOW).unwrap();
    store.publish_document(&page, doc, 0).unwrap();
    // The cost of one durable write on this disk, for context.
    let probe = Instant::now();
    for i in 0..20 {
        store
            .ensure_page(&PageId::from(format!("probe-{i}")), 0)
            .unwrap();
    }
    println!(
        "pipeline: one durable write alone takes {:.2?}",
        probe.elapsed() / 20
    );
    let fake = FakeGraphApi::start().await;
    let mut client = ClientConfig::new("token");
    client.graph_base_url = fake.base_url().to_owned();
    let config = RuntimeConfig {
        workers: std::env::var("BENCH_WORKERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(16),
        max_sends_in_flight: 64,
        // Measure the pipeline, not Messenger's per-Page pace (250/s by default).
        page_rate_per_sec: 1_000_000,
        outbox_poll: Duration::from_millis(20),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::start(Arc::clone(&store), SendClient::new(client).unwrap(), config)
        .await
        .unwrap();

    // Build the webhook events first (parsing is the server's cost, not measured here).
    let mut records = Vec::with_capacity(SUBSCRIBERS * EVENTS_PER_SUBSCRIBER);
    for round in 0..EVENTS_PER_SUBSCRIBER {
        for s in 0..SUBSCRIBERS {
            let body = json!({"object": "page", "entry": [{"id": "bench-page", "time": 1, "messaging": [
                {"sender": {"id": format!("u{s}")}, "recipient": {"id": "bench-page"}, "timestamp": 1,
                 "message": {"mid": format!("m{s}-{round}"), "text": "hello"}}]}]});
            let parsed = parse_webhook(body.to_string().as_bytes()).unwrap();
            let event = parsed.events().next().unwrap().clone();
            records.push(NewJournalEvent {
                page: page.clone(),
                event: EventId::from(event.dedup_key()),
                psid: Psid::from(event.sender.as_str()),
                payload: serde_json::to_value(&event).unwrap(),
                received_ms: 0,
            });
        }
    }
    let total = records.len();
    let cpu_start = process_cpu();
    let started = Instant::now();
    // Four concurrent "webhook handlers", each journaling its batches durably, then submitting.
    let chunks: Vec<Vec<NewJournalEvent>> = records.chunks(total / 4).map(<[_]>::to_vec).collect();
    let runtime = Arc::new(runtime);
    let mut handlers = Vec::new();
    for chunk in chunks {
        let store = Arc::clone(&store);
        let runtime = Arc::clone(&runtime);
        handlers.push(tokio::spawn(async move {
            let mut journal_calls = Vec::new();
            for batch in chunk.chunks(BATCH) {
                let mut batch = batch.to_vec();
                let received = now_ms();
                for r in &mut batch {
                    r.received_ms = received;
                }
                let store2 = Arc::clone(&store);
                let (batch, appended, took) = tokio::task::spawn_blocking(move || {
                    let call = Instant::now();
                    let appended = store2.journal_append_batch(&batch).unwrap();
                    (batch, appended, call.elapsed())
                })
                .await
                .unwrap();
                journal_calls.push(took);
                let entries: Vec<JournalEntry> = batch
                    .into_iter()
                    .zip(appended)
                    .filter_map(|(r, a)| match a {
                        Appended::New { seq } => Some(JournalEntry {
                            seq,
                            page: r.page,
                            event: r.event,
                            psid: r.psid,
                            payload: r.payload,
                            received_ms: r.received_ms,
                        }),
                        Appended::Duplicate => None,
                    })
                    .collect();
                runtime.submit(entries).await.unwrap();
            }
            journal_calls
        }));
    }
    // How long each durable journal call took: sled 0.34 makes every write wait while a
    // transaction (step commits, outcomes) holds its store-wide lock.
    let mut journal_calls = Vec::new();
    for h in handlers {
        journal_calls.extend(h.await.unwrap());
    }
    let journaled = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut processed_at = None;
    let mut sent_when_processed = 0;
    loop {
        let metrics = runtime.metrics();
        if processed_at.is_none() && metrics.events_processed.get() as usize >= total {
            processed_at = Some(started.elapsed());
            sent_when_processed = metrics.messages_sent.get();
        }
        if metrics.messages_sent.get() as usize >= total {
            break;
        }
        assert!(Instant::now() < deadline, "bench did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu().zip(cpu_start).map(|(end, begin)| end - begin);
    let processed = processed_at.unwrap_or(elapsed);
    runtime.shutdown().await.unwrap();
    assert_eq!(fake.sent_messages().len(), total);
    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    println!(
        "pipeline: {SUBSCRIBERS} subscribers, {total} events, 1 message each, durable commits"
    );
    println!("pipeline: journaled (durable, batches of {BATCH}) in {journaled:.2?}");
    journal_calls.sort();
    if let (Some(max), false) = (journal_calls.last(), journal_calls.is_empty()) {
        let mean = journal_calls.iter().sum::<Duration>() / journal_calls.len() as u32;
        println!(
            "pipeline: one journal call ({BATCH} events) took {mean:.2?} on average, {:.2?} at most",
            max
        );
    }
    println!(
        "pipeline: processed (step + durable commit) in {processed:.2?}: {:.0} events/s",
        rate(processed)
    );
    println!("pipeline: {sent_when_processed} messages were sent when processing finished");
    println!(
        "pipeline: sent to the fake Graph API in {elapsed:.2?}: {:.0} events/s end to end; target > 10,000/s",
        rate(elapsed)
    );
    if let Some(cpu) = cpu {
        // On a shared machine the wall clock includes time other processes held the cores.
        println!(
            "pipeline: this process used {cpu:.2?} of CPU (of {:.2?} available on 2 cores): {:.0} events per CPU-second",
            elapsed * 2,
            total as f64 / cpu.as_secs_f64()
        );
    }
}

/// CPU time (user + system) this process has used, from /proc/self/stat (Linux, 100 Hz ticks).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}
