//! Helpers shared by the runtime's integration tests: a temp sled store, the fake Graph API,
//! journaling webhook events the way the server does, and polling with a deadline.

use botflow_flow::{FlowDocument, TopicId};
use botflow_messenger::fake::FakeGraphApi;
use botflow_messenger::{ClientConfig, RetryPolicy, SendClient, parse_webhook};
use botflow_runtime::{Runtime, RuntimeConfig};
use botflow_storage::{
    Appended, EventId, JournalEntry, PageId, Psid, SledStore, Store, StoreOptions,
};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const PAGE: &str = "page-1";

pub(crate) fn page() -> PageId {
    PageId::from(PAGE)
}

pub(crate) fn open_store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir, StoreOptions::default()).unwrap())
}

pub(crate) fn workspace_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

pub(crate) fn publish(store: &dyn Store, json_text: &str) {
    let doc: FlowDocument = serde_json::from_str(json_text).unwrap();
    store.ensure_page(&page(), 0).unwrap();
    store.publish_document(&page(), doc, 0).unwrap();
}

pub(crate) fn topic_id(store: &dyn Store, name: &str) -> TopicId {
    store.find_topic_by_name(&page(), name).unwrap().unwrap().id
}

/// A client for the fake with fast retries.
pub(crate) fn client(fake: &FakeGraphApi) -> SendClient {
    client_for(fake.base_url())
}

/// A client for a fake Graph API at `base_url`, with fast retries.
pub(crate) fn client_for(base_url: &str) -> SendClient {
    let mut config = ClientConfig::new("page-token");
    config.graph_base_url = base_url.to_owned();
    // Long enough that a machine loaded by parallel builds does not time out requests the fake
    // still answers later: a timed-out send is retried (at-least-once), and the stale attempt
    // then reaches the fake after the subscriber's next message, which order tests would
    // read as an inversion. Timeout tests set their own.
    config.timeout = Duration::from_secs(10);
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    };
    SendClient::new(config).unwrap()
}

/// A runtime config that polls quickly and does not pace (tests send hundreds of messages).
pub(crate) fn fast_config() -> RuntimeConfig {
    RuntimeConfig {
        workers: 16,
        page_rate_per_sec: 100_000,
        timer_poll: Duration::from_millis(20),
        journal_poll: Duration::from_millis(20),
        outbox_poll: Duration::from_millis(20),
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        flow_cache_ttl: Duration::from_millis(0),
        // Most suites count the fake's requests; the profile suite turns fetches on.
        profiles: botflow_runtime::ProfileSettings {
            enabled: false,
            ..botflow_runtime::ProfileSettings::default()
        },
        ..RuntimeConfig::default()
    }
}

pub(crate) async fn start(
    store: &Arc<dyn Store>,
    fake: &FakeGraphApi,
    config: RuntimeConfig,
) -> Runtime {
    Runtime::start(Arc::clone(store), client(fake), config)
        .await
        .unwrap()
}

/// A webhook `messaging` object from `psid` to the Page.
pub(crate) fn messaging(psid: &str, body: Value) -> Value {
    let mut event = json!({"sender": {"id": psid}, "recipient": {"id": PAGE}, "timestamp": 1});
    if let (Value::Object(event), Value::Object(body)) = (&mut event, body) {
        event.extend(body);
    }
    event
}

pub(crate) fn text(psid: &str, mid: &str, text: &str) -> Value {
    messaging(psid, json!({"message": {"mid": mid, "text": text}}))
}

pub(crate) fn optin(psid: &str, payload: &str, token: &str) -> Value {
    messaging(
        psid,
        json!({"optin": {"type": "one_time_notif_req", "payload": payload, "one_time_notif_token": token}}),
    )
}

/// Journals one event the way the server does; `None` for a redelivery.
pub(crate) fn journal(store: &dyn Store, raw: Value, received_ms: u64) -> Option<JournalEntry> {
    let body = json!({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [raw]}]});
    let parsed = parse_webhook(body.to_string().as_bytes()).unwrap();
    let event = parsed.events().next().unwrap().clone();
    let id = EventId::from(event.dedup_key());
    let psid = Psid::from(event.sender.as_str());
    let payload = serde_json::to_value(&event).unwrap();
    match store
        .journal_append(&page(), &id, &psid, &payload, received_ms)
        .unwrap()
    {
        Appended::New { seq } => Some(JournalEntry {
            seq,
            page: page(),
            event: id,
            psid,
            payload,
            received_ms,
        }),
        Appended::Duplicate => None,
    }
}

/// Polls `check` until it returns `Some`, or panics after `deadline` with `what`.
pub(crate) async fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The OTN request payload of the last request template the fake accepted for `psid`.
pub(crate) fn last_optin_payload(fake: &FakeGraphApi, psid: &str) -> Option<String> {
    fake.sent_messages()
        .iter()
        .rev()
        .filter(|m| m.psid == psid)
        .find_map(|m| {
            m.message
                .pointer("/attachment/payload/payload")
                .and_then(Value::as_str)
                .filter(|p| p.starts_with("bf1:o:"))
                .map(str::to_owned)
        })
}

/// Waits until the fake accepted at least `count` messages; returns them.
pub(crate) async fn wait_for_sent(
    fake: &FakeGraphApi,
    count: usize,
) -> Vec<botflow_messenger::fake::SentMessage> {
    wait_for(
        &format!("{count} accepted messages"),
        Duration::from_secs(20),
        || {
            let sent = fake.sent_messages();
            (sent.len() >= count).then_some(sent)
        },
    )
    .await
}

/// How long tests wait for work to happen.
pub(crate) const LONG: Duration = Duration::from_secs(30);
/// One hour in milliseconds.
pub(crate) const HOUR: u64 = 3_600_000;

/// A flow that answers every number with "ack N" (default trigger).
pub(crate) const ECHO: &str = r#"{"format": 1, "id": "echo", "name": "Echo", "triggers": [{"type": "default"}],
  "start": "ask", "blocks": [
    {"id": "ask", "type": "wait_input", "field": "n", "next": "ack"},
    {"id": "ack", "type": "send_message", "messages": [{"type": "text", "text": "ack {{n}}"}], "next": "ask"}]}"#;

/// A flow that sends "now", waits two hours, then sends "two hours later".
pub(crate) const DRIP: &str = r#"{"format": 1, "id": "drip", "name": "Drip",
  "triggers": [{"type": "keyword", "words": ["drip"]}], "start": "first", "blocks": [
    {"id": "first", "type": "send_message", "messages": [{"type": "text", "text": "now"}], "next": "wait"},
    {"id": "wait", "type": "delay", "duration": "2h", "next": "later"},
    {"id": "later", "type": "send_message", "messages": [{"type": "text", "text": "two hours later"}]}]}"#;

/// The Graph API wire JSON of a queued message (the outbox holds messenger's typed request).
pub(crate) fn wire(message: &botflow_storage::NewOutbound) -> Value {
    botflow_runtime::outbound::decode(&message.body)
        .unwrap()
        .to_json()
}
