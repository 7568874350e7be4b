//! Load benchmark: signed webhooks over loopback for a bounded time, many subscribers, keep-alive
//! connections; reports events/s and the p50/p99 time from the webhook to the message reaching
//! the fake Graph API. The same load against a bare axum handler that only parses the JSON gives
//! this machine's ceiling, and the report gives botflow's ratio to it.
//!
//! Each run has two rounds, one event per webhook and `BOTFLOW_BENCH_BATCH` (default 25) events
//! per webhook (Messenger batches events under load), each with four phases: the bare handler;
//! a diagnostic handler doing only the webhook's own steps (signature, parse, durable journal)
//! without the runtime; botflow with no flow published (journal and step only); botflow with the
//! restock flow answering every event with two messages. `cargo bench -p botflow-server --bench load`;
//! `BOTFLOW_BENCH_SECONDS` (default 1) sets each phase's length and `BOTFLOW_BENCH_CONNECTIONS`
//! (default 16) the number of connections; the wait for answers after a phase is at most 10 s.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use botflow_messenger::fake::FakeGraphApi;
use botflow_messenger::{parse_webhook, verify_signature};
use botflow_server::ServerConfig;
use botflow_server::delivery::{envelope, signature, text_message};
use botflow_server::ingest::journal_record;
use botflow_server::metrics::HistogramSnapshot;
use botflow_storage::{SledStore, Store, StoreOptions};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const APP_SECRET: &str = "bench-secret";
const PAGE: &str = "1001";

/// One acknowledged webhook: which subscriber, when it was sent.
struct Sample {
    psid: String,
    sent_at: SystemTime,
}

struct LoadResult {
    acknowledged: Vec<Sample>,
    failed: usize,
    elapsed: Duration,
    /// CPU time of the whole process (load generator, server, runtime, fake) during the phase.
    cpu: Option<Duration>,
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (Linux; 100 Hz ticks).
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

impl LoadResult {
    fn per_second(&self) -> f64 {
        self.acknowledged.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Sends signed webhooks of `batch` events each from `connections` keep-alive connections for
/// `duration`; every event is a new subscriber writing "restock".
async fn drive(
    url: String,
    connections: usize,
    duration: Duration,
    batch: usize,
    tag: &str,
) -> LoadResult {
    let start = Instant::now();
    let cpu_at_start = process_cpu_time();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let url = url.clone();
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut acknowledged = Vec::new();
            let mut failed = 0;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = now_ms();
                let mut psids = Vec::with_capacity(batch);
                let mut events = Vec::with_capacity(batch);
                for _ in 0..batch {
                    i += 1;
                    let psid = format!("{tag}{connection:03}{i:07}");
                    events.push(text_message(
                        PAGE,
                        &psid,
                        &format!("m-{psid}"),
                        "restock",
                        t,
                    ));
                    psids.push(psid);
                }
                let body = envelope(PAGE, t, events).to_string();
                let sent_at = SystemTime::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("X-Hub-Signature-256", signature(APP_SECRET, &body))
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        acknowledged.extend(psids.into_iter().map(|psid| Sample { psid, sent_at }));
                    }
                    _ => failed += batch,
                }
            }
            (acknowledged, failed)
        }));
    }
    let mut result = LoadResult {
        acknowledged: Vec::new(),
        failed: 0,
        elapsed: Duration::ZERO,
        cpu: None,
    };
    for task in tasks {
        let (acknowledged, failed) = task.await.unwrap();
        result.acknowledged.extend(acknowledged);
        result.failed += failed;
    }
    result.elapsed = start.elapsed();
    result.cpu = process_cpu_time()
        .zip(cpu_at_start)
        .map(|(end, start)| end.saturating_sub(start));
    result
}

/// The ceiling: an axum handler that only parses the JSON body.
async fn bare_handler_ceiling(connections: usize, duration: Duration, batch: usize) -> LoadResult {
    async fn parse_only(body: Bytes) -> &'static str {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(_) => "ok",
            Err(_) => "bad",
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/webhook", post(parse_only));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let result = drive(
        format!("http://{addr}/webhook"),
        connections,
        duration,
        batch,
        "1",
    )
    .await;
    server.abort();
    result
}

/// Diagnostic: the webhook handler's own steps (signature check, envelope parse, durable journal
/// append of every event) on a sled store, without the runtime processing anything.
async fn webhook_steps_without_runtime(
    connections: usize,
    duration: Duration,
    batch: usize,
) -> LoadResult {
    async fn handler(
        State(store): State<Arc<dyn Store>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let signature = headers
            .get("X-Hub-Signature-256")
            .and_then(|v| v.to_str().ok());
        if verify_signature(APP_SECRET.as_bytes(), &body, signature).is_err() {
            return StatusCode::UNAUTHORIZED;
        }
        let Ok(delivery) = parse_webhook(&body) else {
            return StatusCode::BAD_REQUEST;
        };
        let records: Vec<_> = delivery
            .into_events()
            .iter()
            .filter_map(|event| journal_record(event, now_ms()).ok())
            .collect();
        match tokio::task::spawn_blocking(move || store.journal_append_batch(&records)).await {
            Ok(Ok(_)) => StatusCode::OK,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    let data = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(data.path(), StoreOptions::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/webhook", post(handler))
        .with_state(store);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let result = drive(
        format!("http://{addr}/webhook"),
        connections,
        duration,
        batch,
        "3",
    )
    .await;
    server.abort();
    result
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// botflow on a temp dir with the fake Graph API; with `answer` the restock flow answers every
/// event with two messages, without it no flow is published (events are journaled and processed,
/// nothing is sent).
async fn botflow_path(
    connections: usize,
    duration: Duration,
    batch: usize,
    answer: bool,
) -> (LoadResult, Vec<Duration>, usize, HistogramSnapshot) {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("BOTFLOW_LISTEN", "127.0.0.1:0".to_owned()),
        ("BOTFLOW_DATA_DIR", data.path().display().to_string()),
        ("BOTFLOW_GRAPH_API_URL", fake.base_url().to_owned()),
        ("BOTFLOW_PAGE_ID", PAGE.to_owned()),
        ("BOTFLOW_PAGE_ACCESS_TOKEN", "bench-token".to_owned()),
        ("BOTFLOW_APP_SECRET", APP_SECRET.to_owned()),
        ("BOTFLOW_VERIFY_TOKEN", "v".to_owned()),
        ("BOTFLOW_ADMIN_TOKEN", "a".to_owned()),
        // Pacing off: the bench measures botflow, not the 250/s per-Page Send API budget.
        ("BOTFLOW_SEND_RATE_PER_SECOND", "1000000".to_owned()),
    ]);
    let config = ServerConfig::from_sources(None, |name| env.get(name).cloned(), false).unwrap();
    let restock = include_str!("../../../flows/restock.json");
    let flows = match answer {
        true => vec![("restock.json".into(), restock.into())],
        false => Vec::new(),
    };
    let server = botflow_server::app::start(config, flows).await.unwrap();
    let url = format!("http://{}/webhook", server.local_addr());
    let result = drive(url, connections, duration, batch, "2").await;

    // Wait (bounded) for the first answer of every acknowledged event to reach the fake.
    let drain_deadline = Instant::now() + Duration::from_secs(if answer { 10 } else { 0 });
    let first_sent = loop {
        let mut first: HashMap<String, SystemTime> = HashMap::new();
        for message in fake.sent_messages() {
            first.entry(message.psid).or_insert(message.sent_at);
        }
        if first.len() >= result.acknowledged.len() || Instant::now() > drain_deadline {
            break first;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut latencies: Vec<Duration> = result
        .acknowledged
        .iter()
        .filter_map(|s| first_sent.get(&s.psid)?.duration_since(s.sent_at).ok())
        .collect();
    latencies.sort();
    let answered = latencies.len();
    let journal = server.state().metrics.journal_append.snapshot();
    server.shutdown().await.unwrap();
    (result, latencies, answered, journal)
}

fn print_phase(name: &str, result: &LoadResult, answered: Option<usize>) {
    let answered = match answered {
        Some(n) => format!(", {n} answered"),
        None => String::new(),
    };
    let cpu = match result.cpu {
        Some(cpu) => format!(
            ", {:.2} cores busy",
            cpu.as_secs_f64() / result.elapsed.as_secs_f64()
        ),
        None => String::new(),
    };
    println!(
        "  {name:<34} {:>8.0} events/s  ({} acknowledged, {} failed{answered}{cpu})",
        result.per_second(),
        result.acknowledged.len(),
        result.failed
    );
}

fn print_journal(journal: &HistogramSnapshot) {
    let ms = |q| {
        journal
            .quantile_upper_bound(q)
            .map_or("over 30 s".to_owned(), |s| format!("<= {:.0} ms", s * 1e3))
    };
    println!(
        "    durable journaling of a delivery (the wait before its 200): p50 {}, p99 {}",
        ms(0.5),
        ms(0.99)
    );
}

fn print_latency(latencies: &[Duration]) {
    println!(
        "  webhook -> fake Graph API (first message): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(latencies, 0.50).as_secs_f64() * 1e3,
        percentile(latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}

fn main() {
    let seconds = env_number("BOTFLOW_BENCH_SECONDS", 1);
    let connections = env_number("BOTFLOW_BENCH_CONNECTIONS", 16) as usize;
    let batched = env_number("BOTFLOW_BENCH_BATCH", 25) as usize;
    let duration = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "load: {connections} keep-alive connections over loopback, {seconds} s per phase, a new subscriber per event, Send API pacing off"
        );
        for batch in [1, batched] {
            println!("{batch} event(s) per webhook:");
            let ceiling = bare_handler_ceiling(connections, duration, batch).await;
            print_phase("bare axum handler (parse JSON)", &ceiling, None);
            let steps = webhook_steps_without_runtime(connections, duration, batch).await;
            print_phase("webhook steps only, no runtime", &steps, None);
            let (journal_only, _, _, journal) =
                botflow_path(connections, duration, batch, false).await;
            print_phase("botflow, no flow (journal + step)", &journal_only, None);
            print_journal(&journal);
            let (full, latencies, answered, journal) =
                botflow_path(connections, duration, batch, true).await;
            print_phase("botflow, restock flow (2 messages)", &full, Some(answered));
            print_journal(&journal);
            print_latency(&latencies);
            let ratio = |r: &LoadResult| 100.0 * r.per_second() / ceiling.per_second().max(1.0);
            println!(
                "  ratio to the bare handler (target >= 40%): {:.1}% with the flow answering, {:.1}% with no flow, {:.1}% for the webhook steps alone",
                ratio(&full),
                ratio(&journal_only),
                ratio(&steps)
            );
        }
    });
}
