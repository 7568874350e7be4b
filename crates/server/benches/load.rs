//! Load benchmark: signed webhooks over loopback against botflow and two in-run references on the
//! same machine, counting *answered* events (the reply reached the fake Graph API).
//!
//! Each run has two rounds, one event per webhook and `BOTFLOW_BENCH_BATCH` (default 25) events
//! per webhook (Messenger batches events under load). Each round measures, closed-loop with 16 and
//! 64 keep-alive connections and `BOTFLOW_BENCH_SECONDS` (default 10) per phase:
//! - the bare axum handler that only parses the JSON (the old reference);
//! - the **relay ceiling**: an axum handler that verifies the signature, parses the webhook and
//!   makes one Send API call per event to the fake, with no storage (the least work any one-reply
//!   bot must do here);
//! - botflow with a one-reply flow (a keyword answered with one text), and with the restock flow
//!   (two messages; 16 connections only);
//! - an open-loop phase at a fixed rate of half the one-reply flow's maximum, whose latency is
//!   taken from each webhook's *scheduled* send time to its first reply at the fake (no
//!   coordinated omission).
//!
//! The single-event round adds two diagnostics (16 connections): the webhook's own steps
//! (signature, parse, durable journal) without the runtime, and botflow with no flow. Every
//! phase prints the process CPU per answered event (load generator, server and fake share the
//! process and the two cores). The run ends with one line per round:
//! `one-reply flow: N events/s = P% of the relay ceiling; p99 webhook->send at half load: X ms`.
//! A last round runs the one-reply flow on PostgreSQL, one node and then two nodes on one
//! database (connections spread over them), beside sled and the relay ceiling in the same run:
//! on `BOTFLOW_BENCH_DATABASE_URL`, or a throwaway cluster with `fsync` on (the server binaries
//! must be installed); `BOTFLOW_BENCH_POSTGRES=0` leaves it out, `BOTFLOW_BENCH_ONLY=postgres`
//! runs it alone.
//! Each connection cycles through `BOTFLOW_BENCH_SUBSCRIBERS` (default 256) returning subscribers
//! of its own; `0` makes every event come from a new subscriber (which botflow creates and
//! whose profile it fetches: one more Graph call and step per event).
//! With the defaults a run takes about three minutes; `BOTFLOW_BENCH_SECONDS=2` makes a quick one,
//! `BOTFLOW_BENCH_ONLY=open-loop` runs the fixed-rate phase alone at `BOTFLOW_BENCH_RATE`
//! events/s (default 1,000; `BOTFLOW_BENCH_BATCH` events per webhook, default 1), and
//! `BOTFLOW_BENCH_ONLY=one-reply` (or `restock`) runs that flow's phase alone (16 connections or
//! `BOTFLOW_BENCH_CONNECTIONS`, one event per webhook), e.g. under `perf record`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// The allocator of the `botflow` binary, so the bench measures what production runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use botflow_messenger::fake::FakeGraphApi;
use botflow_messenger::{
    ClientConfig, OutgoingMessage, SendClient, SendRequest, parse_webhook, verify_signature,
};
use botflow_server::ServerConfig;
use botflow_server::delivery::{envelope, signature, text_message};
use botflow_server::ingest::journal_record;
use botflow_storage::pg_test::{TestCluster, TestDatabase};
use botflow_storage::{SledStore, Store, StoreOptions};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const APP_SECRET: &str = "bench-secret";
/// The Pages the subscribers write to (a subscriber always to the same one): on PostgreSQL each
/// Page's shard has one owner, so two nodes share the work only across Pages.
const PAGES: [&str; 8] = [
    "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008",
];
/// The one-reply flow: one keyword, one text.
const ONE_REPLY_FLOW: &str = r#"{"format": 1, "id": "hours", "name": "Opening hours",
  "triggers": [{"type": "keyword", "words": ["hours"]}], "start": "answer",
  "blocks": [{"id": "answer", "type": "send_message",
              "messages": [{"type": "text", "text": "We are open 9 to 18, Monday to Saturday."}]}]}"#;

/// What a phase runs against.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// Parse the JSON, answer 200; nothing is sent.
    Bare,
    /// Signature, parse, 200, then one Send API call per event to the fake; no storage.
    Relay,
    /// The webhook's own steps (signature, parse, durable journal append), no runtime.
    WebhookSteps,
    /// botflow with no flow published: journal and step, nothing sent.
    NoFlow,
    /// botflow with the one-reply flow.
    OneReply,
    /// botflow with the restock flow (two messages per event).
    Restock,
    /// botflow with the one-reply flow on PostgreSQL, this many nodes on one database.
    PostgresOneReply { nodes: usize },
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Bare => "bare axum handler (parse JSON)",
            Target::Relay => "relay ceiling (sig, parse, 1 send)",
            Target::WebhookSteps => "webhook steps only, no runtime",
            Target::NoFlow => "botflow, no flow (journal + step)",
            Target::OneReply => "botflow, one-reply flow",
            Target::Restock => "botflow, restock flow (2 messages)",
            Target::PostgresOneReply { nodes: 1 } => "PostgreSQL, one-reply flow, 1 node",
            Target::PostgresOneReply { .. } => "PostgreSQL, one-reply flow, 2 nodes",
        }
    }

    /// The text every event carries (the keyword of the flow under test).
    fn text(self) -> &'static str {
        match self {
            Target::Restock => "restock",
            _ => "hours",
        }
    }

    /// Messages the fake receives per answered event; 0 when nothing is sent.
    fn replies(self) -> usize {
        match self {
            Target::Bare | Target::WebhookSteps | Target::NoFlow => 0,
            Target::Relay | Target::OneReply | Target::PostgresOneReply { .. } => 1,
            Target::Restock => 2,
        }
    }
}

/// One acknowledged webhook: its events (subscriber, and how many events that subscriber sent
/// before this one), when it was (or was scheduled to be) sent, and when its 200 arrived.
struct Sample {
    events: Vec<(String, usize)>,
    sent_at: SystemTime,
    acknowledged_at: SystemTime,
}

/// Who sends the events: each load source cycles through `per_source` subscribers of its own
/// (returning subscribers: only a subscriber's first event creates it and fetches its profile),
/// or, with 0, every event comes from a new subscriber.
#[derive(Clone, Copy)]
struct Subscribers {
    per_source: u64,
}

impl Subscribers {
    fn from_env() -> Self {
        Self {
            per_source: env_number("BOTFLOW_BENCH_SUBSCRIBERS", 256),
        }
    }

    /// The `n`th webhook's (from 1) subscriber slot, and how many webhooks used it before.
    fn slot(self, n: u64) -> (u64, usize) {
        match self.per_source {
            0 => (n, 0),
            pool => ((n - 1) % pool, ((n - 1) / pool) as usize),
        }
    }

    fn describe(self) -> String {
        match self.per_source {
            0 => "a new subscriber per event".to_owned(),
            pool => format!(
                "{pool} returning subscribers per connection (a subscriber's first event creates it and fetches its profile)"
            ),
        }
    }
}

/// What the load generator saw.
#[derive(Default)]
struct Driven {
    acknowledged: Vec<Sample>,
    failed: usize,
}

/// One phase's figures.
struct PhaseResult {
    acknowledged: usize,
    failed: usize,
    /// Events answered within the phase (all of the event's replies reached the fake); for
    /// targets that send nothing, the acknowledged events.
    answered: usize,
    elapsed: Duration,
    /// CPU time of the whole process (load generator, server, runtime, fake) during the phase.
    cpu: Option<Duration>,
    /// Per webhook, scheduled send -> first reply of the webhook at the fake (sorted).
    latencies: Vec<Duration>,
    /// Per webhook, scheduled send -> its 200 (sorted): in a closed loop, the sooner the 200,
    /// the more events the load generator puts ahead of the runtime.
    acknowledgements: Vec<Duration>,
    /// Bytes in the data directory after botflow stopped (sled and the log).
    data_bytes: u64,
    /// The embedded store's log over the whole phase, from `/metrics`.
    log: Option<LogCounters>,
    /// Share of the host's CPU time stolen by the hypervisor during the phase (`/proc/stat`).
    steal: Option<f64>,
}

/// The embedded store's log counters, summed over the servers.
#[derive(Debug, Clone, Copy, Default)]
struct LogCounters {
    appends: f64,
    syncs: f64,
    /// Seconds spent in `fdatasync`.
    sync_seconds: f64,
}

/// Sums the embedded store's log counters of the servers (`None` on PostgreSQL).
async fn log_counters(servers: &[botflow_server::app::RunningServer]) -> Option<LogCounters> {
    let client = reqwest::Client::new();
    let mut sums: Option<LogCounters> = None;
    for server in servers {
        let url = format!("http://{}/metrics", server.local_addr());
        let text = client.get(&url).send().await.ok()?.text().await.ok()?;
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let sum = sums.get_or_insert_with(LogCounters::default);
        sum.appends += value("botflow_log_appends_total")?;
        sum.syncs += value("botflow_log_fdatasyncs_total")?;
        sum.sync_seconds += value("botflow_log_fdatasync_seconds_total")?;
    }
    sums
}

/// The host's CPU time so far as (stolen, all), in ticks, from the first line of `/proc/stat`
/// (Linux): steal is the eighth value.
fn host_cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    Some((*values.get(7)?, values.iter().sum()))
}

/// Bytes of the files under `path`, recursively.
fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

impl PhaseResult {
    fn answered_per_second(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64()
    }
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

/// The `n`th (from 1) signed webhook of a load source `tag`: `batch` events from subscribers
/// `{tag}{slot}{k}`, and each event's subscriber with its earlier events.
fn webhook_body(
    tag: &str,
    n: u64,
    batch: usize,
    text: &str,
    subscribers: Subscribers,
) -> (String, Vec<(String, usize)>) {
    let t = now_ms();
    let (slot, earlier) = subscribers.slot(n);
    let page = PAGES[(slot % PAGES.len() as u64) as usize];
    let mut sample = Vec::with_capacity(batch);
    let mut events = Vec::with_capacity(batch);
    for k in 0..batch {
        let psid = format!("{tag}{slot:08}{k:03}");
        events.push(text_message(
            page,
            &psid,
            &format!("m-{tag}-{n}-{k}"),
            text,
            t,
        ));
        sample.push((psid, earlier));
    }
    (envelope(page, t, events).to_string(), sample)
}

async fn post_webhook(client: &reqwest::Client, url: &str, body: String) -> bool {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", signature(APP_SECRET, &body))
        .body(body)
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// Closed loop: `connections` keep-alive connections each send the next webhook as soon as the
/// previous one is answered, until `deadline`.
async fn drive_closed(
    urls: &[String],
    connections: usize,
    deadline: Instant,
    batch: usize,
    text: &'static str,
    subscribers: Subscribers,
) -> Driven {
    let mut tasks = Vec::new();
    for connection in 0..connections {
        // Connections spread over the nodes.
        let url = urls[connection % urls.len()].clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut driven = Driven::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let (body, events) =
                    webhook_body(&format!("{connection:03}"), n, batch, text, subscribers);
                let sent_at = SystemTime::now();
                match post_webhook(&client, &url, body).await {
                    true => driven.acknowledged.push(Sample {
                        events,
                        sent_at,
                        acknowledged_at: SystemTime::now(),
                    }),
                    false => driven.failed += batch,
                }
            }
            driven
        }));
    }
    let mut all = Driven::default();
    for task in tasks {
        let driven = task.await.unwrap();
        all.acknowledged.extend(driven.acknowledged);
        all.failed += driven.failed;
    }
    all
}

/// Open loop: one webhook every `batch / rate` seconds until `deadline`, each on its own task
/// (a shared keep-alive pool), so a slow answer never delays the next send; `sent_at` is the
/// scheduled time.
async fn drive_open(
    urls: &[String],
    events_per_second: f64,
    deadline: Instant,
    batch: usize,
    text: &'static str,
    subscribers: Subscribers,
) -> Driven {
    // As many subscribers as 16 closed-loop connections would use.
    let subscribers = Subscribers {
        per_source: subscribers.per_source * 16,
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let interval = Duration::from_secs_f64(batch as f64 / events_per_second.max(1.0));
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let mut tasks = Vec::new();
    let mut n = 0u64;
    loop {
        let offset = interval.mul_f64(n as f64);
        let at = start + offset;
        if at >= deadline {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        n += 1;
        let (body, events) = webhook_body("900", n, batch, text, subscribers);
        let client = client.clone();
        let url = urls[n as usize % urls.len()].clone();
        let sent_at = start_wall + offset;
        tasks.push(tokio::spawn(async move {
            let acknowledged = post_webhook(&client, &url, body).await;
            let acknowledged_at = SystemTime::now();
            (
                acknowledged,
                Sample {
                    events,
                    sent_at,
                    acknowledged_at,
                },
            )
        }));
    }
    let mut all = Driven::default();
    for task in tasks {
        match task.await.unwrap() {
            (true, sample) => all.acknowledged.push(sample),
            (false, _) => all.failed += batch,
        }
    }
    all
}

/// The bare handler: parse the JSON, nothing else.
async fn parse_only(body: Bytes) -> &'static str {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => "ok",
        Err(_) => "bad",
    }
}

/// The relay ceiling: verify, parse, answer 200, and send one text per event to the fake.
async fn relay(
    State(client): State<Arc<SendClient>>,
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
    for event in delivery.into_events() {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            let text = "We are open 9 to 18, Monday to Saturday.".to_owned();
            let request =
                SendRequest::response(event.sender.as_str(), OutgoingMessage::Text { text });
            let _ = client.send(&request).await;
        });
    }
    StatusCode::OK
}

/// The webhook's own steps on a sled store: signature, parse, durable journal append.
async fn webhook_steps(
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

/// A running target: its webhook URL and how to stop it.
enum Running {
    Axum(tokio::task::JoinHandle<std::io::Result<()>>),
    /// botflow nodes, and the PostgreSQL database they share (dropped after them).
    Botflow(
        Vec<botflow_server::app::RunningServer>,
        Option<TestDatabase>,
    ),
}

async fn serve(app: Router) -> (Vec<String>, Running) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    (
        vec![url],
        Running::Axum(tokio::spawn(
            async move { axum::serve(listener, app).await },
        )),
    )
}

/// The PostgreSQL server of the PostgreSQL phases: `BOTFLOW_BENCH_DATABASE_URL` (a user that may
/// create databases), or a throwaway cluster with `fsync` on, started on first use.
fn bench_database_server() -> String {
    static SERVER: std::sync::OnceLock<(String, Option<TestCluster>)> = std::sync::OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var("BOTFLOW_BENCH_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => (url, None),
            _ => {
                let cluster = TestCluster::start_durable();
                (cluster.url(), Some(cluster))
            }
        })
        .0
        .clone()
}

/// Starts `nodes` botflow servers on one store: sled in `data` (one node), or a new database on
/// the bench's PostgreSQL server.
async fn start_botflow(
    target: Target,
    fake: &FakeGraphApi,
    data: &std::path::Path,
    nodes: usize,
    postgres: bool,
) -> (Vec<String>, Running) {
    let database = postgres.then(|| {
        let server = bench_database_server();
        // Creating a database talks to the server synchronously.
        std::thread::spawn(move || TestDatabase::on(&server))
            .join()
            .unwrap()
    });
    let flows = match target {
        Target::OneReply | Target::PostgresOneReply { .. } => {
            vec![("hours.json".into(), ONE_REPLY_FLOW.into())]
        }
        Target::Restock => vec![(
            "restock.json".into(),
            include_str!("../../../flows/restock.json").into(),
        )],
        _ => Vec::new(),
    };
    // The other Pages (the first comes from the environment).
    let pages_file: String = PAGES[1..]
        .iter()
        .map(|page| format!("[[pages]]\nid = \"{page}\"\naccess_token = \"bench-token\"\n"))
        .collect();
    let mut urls = Vec::new();
    let mut servers = Vec::new();
    for node in 0..nodes {
        let mut env: HashMap<&str, String> = HashMap::from([
            ("BOTFLOW_LISTEN", "127.0.0.1:0".to_owned()),
            (
                "BOTFLOW_DATA_DIR",
                data.join(format!("node-{node}")).display().to_string(),
            ),
            ("BOTFLOW_GRAPH_API_URL", fake.base_url().to_owned()),
            ("BOTFLOW_PAGE_ID", PAGES[0].to_owned()),
            ("BOTFLOW_PAGE_ACCESS_TOKEN", "bench-token".to_owned()),
            ("BOTFLOW_APP_SECRET", APP_SECRET.to_owned()),
            ("BOTFLOW_VERIFY_TOKEN", "v".to_owned()),
            ("BOTFLOW_ADMIN_TOKEN", "a".to_owned()),
            ("BOTFLOW_NODE_ID", format!("bench-{node}")),
            // Pacing off: the bench measures botflow, not the 250/s per-Page Send API budget.
            ("BOTFLOW_SEND_RATE_PER_SECOND", "1000000".to_owned()),
        ]);
        if let Some(database) = &database {
            env.insert("BOTFLOW_DATABASE_URL", database.url().to_owned());
        }
        let config = ServerConfig::from_sources(
            Some((std::path::Path::new("bench.toml"), &pages_file)),
            |name| env.get(name).cloned(),
            false,
        )
        .unwrap();
        let server = botflow_server::app::start(config, flows.clone())
            .await
            .unwrap();
        urls.push(format!("http://{}/webhook", server.local_addr()));
        servers.push(server);
    }
    if nodes > 1 {
        wait_for_balanced_leases(&servers).await;
    }
    (urls, Running::Botflow(servers, database))
}

/// Waits (bounded) until every node holds shard leases and together they hold all of them, so
/// the phase measures the nodes working, not the leases moving.
async fn wait_for_balanced_leases(servers: &[botflow_server::app::RunningServer]) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut held = Vec::new();
        for server in servers {
            let url = format!("http://{}/metrics", server.local_addr());
            let text = match client.get(&url).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let leases = text
                .lines()
                .find_map(|line| line.strip_prefix("botflow_shard_leases_held "))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            held.push(leases);
        }
        let total: f64 = held.iter().sum();
        if held.iter().all(|&h| h > 0.0)
            && total >= f64::from(botflow_storage::ownership::SHARD_COUNT)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes did not share the shard leases within a minute: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start(
    target: Target,
    fake: &FakeGraphApi,
    data: &std::path::Path,
) -> (Vec<String>, Running) {
    match target {
        Target::Bare => serve(Router::new().route("/webhook", post(parse_only))).await,
        Target::Relay => {
            let mut config = ClientConfig::new("bench-token");
            config.graph_base_url = fake.base_url().to_owned();
            let client = Arc::new(SendClient::new(config).unwrap());
            serve(
                Router::new()
                    .route("/webhook", post(relay))
                    .with_state(client),
            )
            .await
        }
        Target::WebhookSteps => {
            let store: Arc<dyn Store> =
                Arc::new(SledStore::open(data, StoreOptions::default()).unwrap());
            serve(
                Router::new()
                    .route("/webhook", post(webhook_steps))
                    .with_state(store),
            )
            .await
        }
        Target::NoFlow | Target::OneReply | Target::Restock => {
            start_botflow(target, fake, data, 1, false).await
        }
        Target::PostgresOneReply { nodes } => start_botflow(target, fake, data, nodes, true).await,
    }
}

/// How the load is generated.
#[derive(Clone, Copy)]
enum Load {
    Closed {
        connections: usize,
    },
    /// A fixed rate in events per second.
    Open {
        events_per_second: f64,
    },
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs one phase on a fresh target, fake and data directory.
async fn phase(target: Target, load: Load, duration: Duration, batch: usize) -> PhaseResult {
    let subscribers = Subscribers::from_env();
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let (urls, running) = start(target, &fake, data.path()).await;
    let text = target.text();
    let cpu_at_start = process_cpu_time();
    let host_at_start = host_cpu_ticks();
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let deadline = start + duration;
    let driven = match load {
        Load::Closed { connections } => {
            drive_closed(&urls, connections, deadline, batch, text, subscribers).await
        }
        Load::Open { events_per_second } => {
            drive_open(&urls, events_per_second, deadline, batch, text, subscribers).await
        }
    };
    let elapsed = start.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_at_start)
        .map(|(end, start)| end.saturating_sub(start));
    let steal = host_cpu_ticks()
        .zip(host_at_start)
        .map(|((steal, all), (steal0, all0))| {
            steal.saturating_sub(steal0) as f64 / all.saturating_sub(all0).max(1) as f64
        });
    let acknowledged: usize = driven.acknowledged.iter().map(|s| s.events.len()).sum();
    let replies = target.replies();
    let end_wall = start_wall + elapsed;
    // For the open-loop phase, wait (bounded) for the replies of every acknowledged event so the
    // latency tail is not cut off; closed-loop phases count only what arrived within the phase.
    if matches!(load, Load::Open { .. }) && replies > 0 {
        let wait_deadline = Instant::now() + Duration::from_secs(10);
        while fake.sent_messages().len() < acknowledged * replies && Instant::now() < wait_deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Per subscriber, when its messages reached the fake, in order: botflow keeps each
    // subscriber's order, so the `i`th event's replies are the `i`th group of `replies`.
    let mut by_psid: HashMap<String, Vec<SystemTime>> = HashMap::new();
    for message in fake.sent_messages() {
        by_psid
            .entry(message.psid)
            .or_default()
            .push(message.sent_at);
    }
    for times in by_psid.values_mut() {
        times.sort();
    }
    // The event's replies, when all of them arrived: (first, last).
    let replies_of = |psid: &str, earlier: usize| -> Option<(SystemTime, SystemTime)> {
        let times = by_psid.get(psid)?;
        let first = *times.get(earlier * replies)?;
        let last = *times.get((earlier + 1) * replies - 1)?;
        Some((first, last))
    };
    let answered = match replies {
        0 => acknowledged,
        _ => driven
            .acknowledged
            .iter()
            .flat_map(|sample| &sample.events)
            .filter(|(psid, earlier)| {
                replies_of(psid, *earlier).is_some_and(|(_, last)| last <= end_wall)
            })
            .count(),
    };
    // A webhook with no reply yet counts with the time it has waited so far (a lower bound),
    // so unanswered webhooks raise the percentiles instead of vanishing from them.
    let now = SystemTime::now();
    let mut latencies: Vec<Duration> = driven
        .acknowledged
        .iter()
        .map(|sample| {
            let first = sample
                .events
                .iter()
                .filter_map(|(psid, earlier)| {
                    by_psid
                        .get(psid)
                        .and_then(|times| times.get(earlier * replies.max(1)))
                        .copied()
                })
                .min()
                .unwrap_or(now);
            first.duration_since(sample.sent_at).unwrap_or_default()
        })
        .collect();
    latencies.sort();
    let mut acknowledgements: Vec<Duration> = driven
        .acknowledged
        .iter()
        .map(|s| {
            s.acknowledged_at
                .duration_since(s.sent_at)
                .unwrap_or_default()
        })
        .collect();
    acknowledgements.sort();
    let mut log = None;
    match running {
        Running::Axum(handle) => handle.abort(),
        Running::Botflow(servers, database) => {
            log = log_counters(&servers).await;
            for server in servers {
                server.shutdown().await.unwrap();
            }
            // Dropping the database talks to the server synchronously.
            tokio::task::spawn_blocking(move || drop(database))
                .await
                .unwrap();
        }
    }
    // The store closes (with a last checkpoint) when the server's last handle goes.
    let data_bytes = {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut bytes = dir_bytes(data.path());
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = dir_bytes(data.path());
            if now == bytes || Instant::now() > deadline {
                break now;
            }
            bytes = now;
        }
    };
    PhaseResult {
        acknowledged,
        failed: driven.failed,
        answered,
        elapsed,
        cpu,
        latencies,
        acknowledgements,
        data_bytes,
        log,
        steal,
    }
}

fn print_phase(label: &str, load: Load, result: &PhaseResult, replies: usize) {
    let load = match load {
        Load::Closed { connections } => format!("{connections} conn"),
        Load::Open { events_per_second } => format!("{events_per_second:.0}/s open"),
    };
    let cpu = match result.cpu {
        Some(cpu) if result.answered > 0 => format!(
            ", {:.2} cores busy, {:.0} µs CPU per event",
            cpu.as_secs_f64() / result.elapsed.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / result.answered as f64
        ),
        _ => String::new(),
    };
    let latency = match replies {
        0 => String::new(),
        _ => format!(
            "; webhook->first reply p50 {:.1} ms, p99 {:.1} ms; webhook->200 p50 {:.1} ms, p99 {:.1} ms",
            percentile(&result.latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&result.latencies, 0.99).as_secs_f64() * 1e3,
            percentile(&result.acknowledgements, 0.50).as_secs_f64() * 1e3,
            percentile(&result.acknowledgements, 0.99).as_secs_f64() * 1e3
        ),
    };
    let disk = match result.data_bytes {
        0 => String::new(),
        bytes => format!(
            ", data dir {:.1} KB per event",
            bytes as f64 / 1e3 / result.acknowledged.max(1) as f64
        ),
    };
    let log = match result.log {
        Some(log) if result.acknowledged > 0 => {
            let events = result.acknowledged as f64;
            format!(
                ", log {:.2} appends and {:.2} fdatasyncs per event, fdatasync mean {:.2} ms",
                log.appends / events,
                log.syncs / events,
                log.sync_seconds * 1e3 / log.syncs.max(1.0)
            )
        }
        _ => String::new(),
    };
    // The machine's weather: CPU the hypervisor gave to other guests meanwhile.
    let steal = match result.steal {
        Some(steal) => format!(", host steal {:.1}%", steal * 100.0),
        None => String::new(),
    };
    println!(
        "  {label:<36} {load:>11} {:>8.0} answered events/s ({} acknowledged, {} failed, {} answered{cpu}{disk}{log}{steal}){latency}",
        result.answered_per_second(),
        result.acknowledged,
        result.failed,
        result.answered
    );
}

/// One round's summary line.
struct Summary {
    one_reply: f64,
    relay: f64,
    p99_half_load: Duration,
}

/// The best closed-loop rate of `target` over `connections`, printing each phase.
async fn best_rate(target: Target, connections: &[usize], duration: Duration, batch: usize) -> f64 {
    let mut best = 0.0_f64;
    for &connections in connections {
        let load = Load::Closed { connections };
        let result = phase(target, load, duration, batch).await;
        print_phase(target.label(), load, &result, target.replies());
        best = best.max(result.answered_per_second());
    }
    best
}

/// p99 webhook -> first reply of `target` at a fixed rate of half `max`, printing the phase.
async fn half_load_p99(target: Target, max: f64, duration: Duration, batch: usize) -> Duration {
    let load = Load::Open {
        events_per_second: max / 2.0,
    };
    let half = phase(target, load, duration, batch).await;
    print_phase(&format!("{}, half load", target.label()), load, &half, 1);
    percentile(&half.latencies, 0.99)
}

async fn round(duration: Duration, batch: usize) -> Summary {
    println!("{batch} event(s) per webhook:");
    let bare = best_rate(Target::Bare, &[16], duration, batch).await;
    let relay = best_rate(Target::Relay, &[16, 64], duration, batch).await;
    if batch == 1 {
        best_rate(Target::WebhookSteps, &[16], duration, batch).await;
        best_rate(Target::NoFlow, &[16], duration, batch).await;
    }
    let one_reply = best_rate(Target::OneReply, &[16, 64], duration, batch).await;
    let restock = best_rate(Target::Restock, &[16], duration, batch).await;
    println!(
        "  ratio to the relay ceiling (targets: one-reply >= 60%, restock >= 40%): one-reply {:.1}%, restock {:.1}%; relay ceiling = {:.1}% of the bare handler",
        100.0 * one_reply / relay.max(1.0),
        100.0 * restock / relay.max(1.0),
        100.0 * relay / bare.max(1.0)
    );
    let p99_half_load = half_load_p99(Target::OneReply, one_reply, duration, batch).await;
    Summary {
        one_reply,
        relay,
        p99_half_load,
    }
}

/// The one-reply flow on PostgreSQL (one node, then two on one database) beside the same flow on
/// sled and the relay ceiling, all measured in this run; one summary line per store.
async fn postgres_round(duration: Duration) -> Vec<String> {
    println!("PostgreSQL (fsync on), 1 event per webhook:");
    let relay = best_rate(Target::Relay, &[16, 64], duration, 1).await;
    let mut lines = Vec::new();
    for target in [
        Target::OneReply,
        Target::PostgresOneReply { nodes: 1 },
        Target::PostgresOneReply { nodes: 2 },
    ] {
        let best = best_rate(target, &[16, 64], duration, 1).await;
        let p99 = half_load_p99(target, best, duration, 1).await;
        lines.push(format!(
            "{}: {best:.0} events/s = {:.1}% of the relay ceiling; p99 webhook->send at half load: {:.1} ms",
            target.label(),
            100.0 * best / relay.max(1.0),
            p99.as_secs_f64() * 1e3
        ));
    }
    lines
}

fn main() {
    let seconds = env_number("BOTFLOW_BENCH_SECONDS", 10);
    let batched = env_number("BOTFLOW_BENCH_BATCH", 25) as usize;
    let duration = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var("BOTFLOW_BENCH_ONLY").as_deref() {
        Ok(only @ ("one-reply" | "restock")) => {
            // One phase alone (for a profiler): the one-reply or the restock flow, 16
            // connections, 1 event per webhook unless `BOTFLOW_BENCH_BATCH` says otherwise.
            let target = if only == "restock" {
                Target::Restock
            } else {
                Target::OneReply
            };
            let load = Load::Closed {
                connections: env_number("BOTFLOW_BENCH_CONNECTIONS", 16) as usize,
            };
            let batch = env_number("BOTFLOW_BENCH_BATCH", 1) as usize;
            let result = runtime.block_on(phase(target, load, duration, batch));
            print_phase(target.label(), load, &result, target.replies());
            return;
        }
        Ok("postgres") => {
            // The PostgreSQL comparison alone.
            for line in runtime.block_on(postgres_round(duration)) {
                println!("{line}");
            }
            return;
        }
        Ok("open-loop") => {
            // The latency phase alone, at `BOTFLOW_BENCH_RATE` events/s (default 1,000).
            let load = Load::Open {
                events_per_second: env_number("BOTFLOW_BENCH_RATE", 1_000) as f64,
            };
            let batch = env_number("BOTFLOW_BENCH_BATCH", 1) as usize;
            let result = runtime.block_on(phase(Target::OneReply, load, duration, batch));
            print_phase("botflow, one-reply flow, fixed rate", load, &result, 1);
            return;
        }
        _ => {}
    }
    runtime.block_on(async {
        println!(
            "load: closed loop over loopback, {seconds} s per phase, {}, Send API pacing off; answered = every reply of the event reached the fake within the phase",
            Subscribers::from_env().describe()
        );
        let mut summaries = Vec::new();
        for batch in [1, batched] {
            summaries.push(round(duration, batch).await);
        }
        let postgres = match std::env::var("BOTFLOW_BENCH_POSTGRES").as_deref() {
            Ok("0") => Vec::new(),
            _ => postgres_round(duration).await,
        };
        for summary in summaries {
            println!(
                "one-reply flow: {:.0} events/s = {:.1}% of the relay ceiling; p99 webhook->send at half load: {:.1} ms",
                summary.one_reply,
                100.0 * summary.one_reply / summary.relay.max(1.0),
                summary.p99_half_load.as_secs_f64() * 1e3
            );
        }
        for line in postgres {
            println!("{line}");
        }
    });
}
