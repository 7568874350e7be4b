//! The One-Time Notification story of the product brief, over HTTP against the real `botflow serve`
//! and a fake Graph API: topic by API, a flow that creates another topic inline, a user message,
//! the OTN request reaching Messenger, the opt-in, one notification sending exactly one message
//! with the token, and a second notification sending none; on the embedded store and on PostgreSQL.

use crate::support::{PAGE_ID, ServerProcess, example_flow, now_ms, sent_matching, wait_until};
use botflow_messenger::fake::FakeGraphApi;
use botflow_server::delivery::{envelope, otn_optin, text_message};
use botflow_storage::pg_test::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const PSID: &str = "5550001";
const WAIT: Duration = Duration::from_secs(30);

async fn topic_named(server: &ServerProcess, name: &str) -> Value {
    let (status, topics) = server
        .api_json(Method::GET, &format!("/api/pages/{PAGE_ID}/topics"), None)
        .await;
    assert_eq!(status, 200, "{topics}");
    topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no topic {name:?} in {topics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_otn_story_end_to_end() {
    otn_story(&[]).await;
}

/// The same story with `BOTFLOW_DATABASE_URL` set: the binary runs on PostgreSQL (a fresh
/// database on the tests' server, see `botflow_storage::pg_test`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_otn_story_end_to_end_on_postgres() {
    let database = tokio::task::spawn_blocking(TestDatabase::new)
        .await
        .unwrap();
    otn_story(&[("BOTFLOW_DATABASE_URL", database.url())]).await;
    tokio::task::spawn_blocking(move || drop(database))
        .await
        .unwrap();
}

async fn otn_story(extra_env: &[(&str, &str)]) {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_with_env(data.path(), fake.base_url(), None, extra_env).await;
    let (status, health) = server.api_json(Method::GET, "/healthz", None).await;
    assert_eq!(status, 200, "{health}");
    let expected = if extra_env.is_empty() {
        "sled"
    } else {
        "postgres"
    };
    assert_eq!(health["database"], expected, "{health}");

    // A topic created by API, listed with no opt-ins yet.
    let (status, created) = server
        .api_json(
            Method::POST,
            &format!("/api/pages/{PAGE_ID}/topics"),
            Some(json!({"name": "Summer sale"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["usable_tokens"], 0);

    // A flow whose OTN request names a topic that does not exist yet: publishing creates it.
    let flows = format!("/api/pages/{PAGE_ID}/flows");
    let (status, draft) = server
        .api_json(
            Method::PUT,
            &format!("{flows}/restock"),
            Some(example_flow("restock")),
        )
        .await;
    assert_eq!(status, 200, "{draft}");
    assert_eq!(draft["valid"], true, "{draft}");
    let (status, published) = server
        .api_json(Method::POST, &format!("{flows}/restock/publish"), None)
        .await;
    assert_eq!(status, 201, "{published}");
    assert_eq!(published["version"], 1);
    assert_eq!(
        published["topics_created"][0]["name"], "Red sneakers restock",
        "{published}"
    );
    let topic = topic_named(&server, "Red sneakers restock").await;
    let topic_id = topic["id"].as_str().unwrap().to_owned();
    assert_eq!(topic["usable_tokens"], 0);
    assert_eq!(
        topic_named(&server, "Summer sale").await["usable_tokens"],
        0
    );

    // The subscriber writes a trigger word: the welcome text and the OTN request go out.
    let t0 = now_ms();
    let hello = envelope(
        PAGE_ID,
        t0,
        vec![text_message(PAGE_ID, PSID, "m-story-1", "restock", t0)],
    );
    let response = server.webhook(&hello.to_string()).await;
    assert_eq!(response.status(), 200);
    let request = sent_matching(&fake, "the OTN request template", |m| {
        m.psid == PSID
            && m.message.pointer("/attachment/payload/template_type")
                == Some(&json!("one_time_notif_req"))
    })
    .await;
    assert_eq!(
        request.message.pointer("/attachment/payload/title"),
        Some(&json!("Tell me when red sneakers are back"))
    );
    let optin_payload = request
        .message
        .pointer("/attachment/payload/payload")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    assert!(
        optin_payload.contains(&topic_id),
        "payload {optin_payload} names the topic"
    );
    let welcome = sent_matching(&fake, "the welcome text", |m| {
        m.psid == PSID
            && m.text()
                .is_some_and(|t| t.contains("red sneakers are sold out"))
    })
    .await;
    assert!(welcome.token.is_none());

    // The subscriber taps "Notify me": the token is stored and the flow continues on on_optin.
    let token = fake.issue_otn_token(PSID);
    let t1 = now_ms();
    let optin = envelope(
        PAGE_ID,
        t1,
        vec![otn_optin(PAGE_ID, PSID, &optin_payload, &token, t1)],
    );
    assert_eq!(server.webhook(&optin.to_string()).await.status(), 200);
    sent_matching(&fake, "the on_optin thanks", |m| {
        m.psid == PSID && m.text() == Some("Done: one message when they are back.")
    })
    .await;
    let topic = topic_named(&server, "Red sneakers restock").await;
    assert_eq!(topic["usable_tokens"], 1, "{topic}");
    let (status, subscriber) = server
        .api_json(
            Method::GET,
            &format!("/api/pages/{PAGE_ID}/subscribers/{PSID}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{subscriber}");
    assert_eq!(subscriber["tokens_by_topic"][0]["topic"], topic_id.as_str());
    assert_eq!(subscriber["tokens_by_topic"][0]["usable"], 1);

    // The notification: exactly one message, paid for by that token.
    let notify = format!("/api/pages/{PAGE_ID}/topics/{topic_id}/notify");
    let sent_before = fake.sent_messages().len();
    let (status, counts) = server
        .api_json(
            Method::POST,
            &notify,
            Some(json!({"text": "The red sneakers are back!"})),
        )
        .await;
    assert_eq!(status, 202, "{counts}");
    assert_eq!(counts["queued"], 1, "{counts}");
    let delivered = sent_matching(&fake, "the notification", |m| {
        m.text() == Some("The red sneakers are back!")
    })
    .await;
    assert_eq!(delivered.token.as_deref(), Some(token.as_str()));
    assert_eq!(delivered.psid, PSID);
    assert!(fake.token(&token).unwrap().used);
    wait_until("the spent token to stop counting", WAIT, || async {
        let topic = topic_named(&server, "Red sneakers restock").await;
        (topic["usable_tokens"] == 0).then_some(())
    })
    .await;

    // A second notification finds no usable token and sends nothing.
    let (status, counts) = server
        .api_json(Method::POST, &notify, Some(json!({"text": "Second call!"})))
        .await;
    assert_eq!(status, 202, "{counts}");
    assert_eq!(counts["queued"], 0, "{counts}");
    // Wait until the server has nothing pending, then check nothing else went out.
    wait_until("an empty outbound queue", WAIT, || async {
        (server.metric("botflow_outbox_pending").await == 0.0).then_some(())
    })
    .await;
    let after: Vec<_> = fake.sent_messages().into_iter().skip(sent_before).collect();
    assert_eq!(
        after.len(),
        1,
        "exactly one notification message: {after:?}"
    );
    assert!(
        fake.sent_messages()
            .iter()
            .all(|m| m.text() != Some("Second call!")),
        "the second notification must send nothing"
    );
}
