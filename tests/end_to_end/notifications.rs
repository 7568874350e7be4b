//! Topic notifications as resources, over HTTP against the real binary and the fake Graph API:
//! progress to `done`, a cancel mid-way that keeps unsent tokens usable, and a SIGKILL
//! mid-notification after which the totals are kept and the rest drains.

use crate::support::{PAGE_ID, ServerProcess, opt_in_restock, wait_until, workspace_root};
use botflow_messenger::fake::FakeGraphApi;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Starts the server on `data` with the example flows and the given Send API pace.
async fn start(data: &std::path::Path, fake: &FakeGraphApi, pace: &str) -> ServerProcess {
    let flows = workspace_root().join("flows");
    let env = [("BOTFLOW_SEND_RATE_PER_SECOND", pace)];
    ServerProcess::start_with_env(data, fake.base_url(), Some(&flows), &env).await
}

fn psids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

/// Notifies the topic with a text; returns the 202 body.
async fn notify(server: &ServerProcess, topic: &str, text: &str) -> Value {
    let path = format!("/api/pages/{PAGE_ID}/topics/{topic}/notify");
    let (status, body) = server
        .api_json(Method::POST, &path, Some(json!({ "text": text })))
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(body["id"].is_u64(), "{body}");
    body
}

async fn notification(server: &ServerProcess, id: u64) -> Value {
    let path = format!("/api/pages/{PAGE_ID}/notifications/{id}");
    let (status, body) = server.api_json(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the notification satisfies `ready`; returns it.
async fn wait_for(server: &ServerProcess, id: u64, what: &str, ready: fn(&Value) -> bool) -> Value {
    wait_until(what, WAIT, || async move {
        let n = notification(server, id).await;
        ready(&n).then_some(n)
    })
    .await
}

/// How many messages each token paid for, at the fake.
fn paid(fake: &FakeGraphApi) -> BTreeMap<String, usize> {
    let mut paid = BTreeMap::new();
    for message in fake.sent_messages() {
        if let Some(token) = message.token {
            *paid.entry(token).or_insert(0) += 1;
        }
    }
    paid
}

async fn usable_tokens(server: &ServerProcess, topic: &str) -> u64 {
    let path = format!("/api/pages/{PAGE_ID}/topics/{topic}/ledger");
    let (status, ledger) = server.api_json(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{ledger}");
    ledger["usable"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_progresses_to_done_with_its_totals() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &fake, "250").await;
    let (topic, tokens) = opt_in_restock(&server, &fake, &psids("81000", 5)).await;

    let queued = notify(&server, &topic, "Back in stock!").await;
    assert_eq!(
        (queued["queued"].as_u64(), queued["topic"].as_str()),
        (Some(5), Some(topic.as_str()))
    );
    let id = queued["id"].as_u64().unwrap();
    let done = wait_for(&server, id, "the notification done", |n| {
        n["state"] == "done"
    })
    .await;
    let totals = &done["totals"];
    assert_eq!(
        (totals["queued"].as_u64(), totals["sent"].as_u64()),
        (Some(5), Some(5)),
        "{done}"
    );
    assert_eq!(totals["pending"], 0, "{done}");
    assert_eq!(done["eta_ms"], Value::Null, "{done}");
    assert!(
        done["started_ms"].as_u64() <= done["finished_ms"].as_u64(),
        "{done}"
    );
    assert_eq!(paid(&fake).len(), tokens.len());

    // Listed for its topic (and not for another); a cancel now is a conflict, an unknown id 404.
    let list = format!("/api/pages/{PAGE_ID}/notifications?topic={topic}");
    let (status, listed) = server.api_json(Method::GET, &list, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id);
    let other = format!("/api/pages/{PAGE_ID}/notifications?topic=no-such-topic");
    let (_, none) = server.api_json(Method::GET, &other, None).await;
    assert_eq!(none, json!([]));
    let cancel = format!("/api/pages/{PAGE_ID}/notifications/{id}/cancel");
    let (status, body) = server.api_json(Method::POST, &cancel, None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    let unknown = format!("/api/pages/{PAGE_ID}/notifications/999999999/cancel");
    let (status, body) = server.api_json(Method::POST, &unknown, None).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_way_keeps_the_unsent_tokens_usable_for_the_next_notification() {
    const N: usize = 12;
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &fake, "4").await;
    let (topic, tokens) = opt_in_restock(&server, &fake, &psids("82000", N)).await;

    let id = notify(&server, &topic, "First").await["id"]
        .as_u64()
        .unwrap();
    let running = wait_for(&server, id, "two messages sent", |n| {
        n["totals"]["sent"].as_u64() >= Some(2)
    })
    .await;
    assert_eq!(running["state"], "sending", "{running}");
    assert!(running["eta_ms"].as_u64() > Some(0), "{running}");
    let path = format!("/api/pages/{PAGE_ID}/notifications/{id}/cancel");
    let (status, cancel) = server.api_json(Method::POST, &path, None).await;
    assert_eq!(status, 200, "{cancel}");
    assert_eq!(cancel["notification"]["state"], "cancelled", "{cancel}");
    let removed = cancel["removed"].as_u64().unwrap();
    assert!(removed > 0, "{cancel}");
    assert_eq!(cancel["tokens_restored"].as_u64(), Some(removed));

    // What had started finishes; the rest never reaches Messenger.
    let settled = wait_for(&server, id, "nothing pending", |n| {
        n["totals"]["pending"] == 0
    })
    .await;
    let totals = &settled["totals"];
    let sent = totals["sent"].as_u64().unwrap();
    assert_eq!(settled["state"], "cancelled");
    assert_eq!(
        sent + totals["cancelled"].as_u64().unwrap(),
        N as u64,
        "{settled}"
    );
    assert_eq!(paid(&fake).len() as u64, sent);
    assert_eq!(usable_tokens(&server, &topic).await, removed);

    // A second notification reaches exactly those whose messages were cancelled.
    let second = notify(&server, &topic, "Second").await;
    assert_eq!(second["queued"].as_u64(), Some(removed), "{second}");
    let second_id = second["id"].as_u64().unwrap();
    wait_for(&server, second_id, "the second done", |n| {
        n["state"] == "done"
    })
    .await;
    let paid = paid(&fake);
    assert_eq!(
        paid.len(),
        tokens.len(),
        "every token paid once in all: {paid:?}"
    );
    assert!(
        paid.values().all(|n| *n == 1),
        "no token paid twice: {paid:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_notification_keeps_its_progress_and_the_rest_drains() {
    const N: usize = 10;
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path(), &fake, "4").await;
    let (topic, tokens) = opt_in_restock(&server, &fake, &psids("83000", N)).await;

    let id = notify(&server, &topic, "Back!").await["id"]
        .as_u64()
        .unwrap();
    let before = wait_for(&server, id, "three messages sent", |n| {
        n["totals"]["sent"].as_u64() >= Some(3)
    })
    .await;
    server.kill();
    let sent_before = before["totals"]["sent"].as_u64().unwrap();

    let server = start(data.path(), &fake, "4").await;
    let after = notification(&server, id).await;
    let totals = &after["totals"];
    assert_eq!(totals["queued"].as_u64(), Some(N as u64), "{after}");
    assert!(
        totals["sent"].as_u64() >= Some(sent_before),
        "{before} then {after}"
    );
    assert_eq!(after["created_ms"], before["created_ms"]);
    assert_eq!(after["started_ms"], before["started_ms"]);
    let done = wait_for(&server, id, "the notification done", |n| {
        n["state"] == "done"
    })
    .await;
    let totals = &done["totals"];
    // A request cut by the kill may come back "token used": delivered, unconfirmed.
    let finished = totals["sent"].as_u64().unwrap() + totals["unconfirmed"].as_u64().unwrap();
    assert_eq!(finished, N as u64, "{done}");
    let paid = paid(&fake);
    assert_eq!(paid.len(), tokens.len(), "{paid:?}");
    assert!(
        paid.values().all(|n| *n == 1),
        "no token paid twice: {paid:?}"
    );
}
