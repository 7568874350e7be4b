//! The whole path in one process: webhook → journal → runtime → fake Graph API, the opt-in, topic
//! notifications and the subscriber view, with the runtime's figures on `/metrics`.

use crate::support::{PAGE_ID, TestServer, eventually, example_flow_text};
use botflow_server::delivery::{envelope, otn_optin, text_message};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PSID: &str = "42";

async fn restock_server() -> TestServer {
    TestServer::start_with_flows(vec![
        ("restock.json".into(), example_flow_text("restock")),
        (
            "restock-notify.json".into(),
            example_flow_text("restock-notify"),
        ),
    ])
    .await
}

/// Sends "restock" as `psid`, waits for the OTN request and opts in with a fresh token.
async fn opt_in(server: &TestServer, psid: &str, mid: &str) -> String {
    let hello = envelope(
        PAGE_ID,
        1,
        vec![text_message(PAGE_ID, psid, mid, "restock", 1)],
    );
    assert_eq!(
        server.webhook(&hello.to_string()).await.status(),
        StatusCode::OK
    );
    let payload: String = eventually("the OTN request", || async {
        server.fake.sent_messages().into_iter().find_map(|m| {
            let payload = m.message.pointer("/attachment/payload/payload")?.as_str()?;
            (m.psid == psid).then(|| payload.to_owned())
        })
    })
    .await;
    let token = server.fake.issue_otn_token(psid);
    let optin = envelope(
        PAGE_ID,
        2,
        vec![otn_optin(PAGE_ID, psid, &payload, &token, 2)],
    );
    assert_eq!(
        server.webhook(&optin.to_string()).await.status(),
        StatusCode::OK
    );
    token
}

async fn topic_id(server: &TestServer) -> String {
    let (_, topics) = server
        .json(server.get(&format!("/api/pages/{PAGE_ID}/topics")))
        .await;
    topics[0]["id"].as_str().unwrap().to_owned()
}

async fn usable_tokens(server: &TestServer) -> u64 {
    let (_, topics) = server
        .json(server.get(&format!("/api/pages/{PAGE_ID}/topics")))
        .await;
    topics[0]["usable_tokens"].as_u64().unwrap()
}

#[tokio::test]
async fn a_text_notification_spends_each_token_once() {
    let server = restock_server().await;
    let token = opt_in(&server, PSID, "m-1").await;
    eventually("the stored token", || async {
        (usable_tokens(&server).await == 1).then_some(())
    })
    .await;

    let (status, subscriber) = server
        .json(server.get(&format!("/api/pages/{PAGE_ID}/subscribers/{PSID}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{subscriber}");
    assert_eq!(
        subscriber["tokens_by_topic"][0]["name"],
        "Red sneakers restock"
    );
    assert_eq!(subscriber["tokens_by_topic"][0]["usable"], 1);
    assert!(subscriber["session"].is_object(), "{subscriber}");

    let notify = format!(
        "/api/pages/{PAGE_ID}/topics/{}/notify",
        topic_id(&server).await
    );
    let (status, counts) = server
        .json(server.post(&notify).json(&json!({"text": "Back!"})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{counts}");
    assert_eq!(counts["queued"], 1);
    let sent = eventually("the notification", || async {
        server
            .fake
            .sent_messages()
            .into_iter()
            .find(|m| m.text() == Some("Back!"))
    })
    .await;
    assert_eq!(sent.token.as_deref(), Some(token.as_str()));

    let (_, counts) = server
        .json(server.post(&notify).json(&json!({"text": "Again!"})))
        .await;
    assert_eq!(counts["queued"], 0, "{counts}");
    assert_eq!(usable_tokens(&server).await, 0);

    let latency = server.metric("botflow_webhook_to_send_seconds_count").await;
    assert!(
        latency >= 3.0,
        "every message of a webhook is timed: {latency}"
    );
    assert!(server.metric("botflow_events_processed_total").await >= 2.0);
    assert!(
        server
            .metric("botflow_messages_total{outcome=\"sent\"}")
            .await
            >= 4.0
    );
}

#[tokio::test]
async fn a_flow_notification_runs_the_flow_for_each_token_holder() {
    let server = restock_server().await;
    let token = opt_in(&server, PSID, "m-1").await;
    eventually("the stored token", || async {
        (usable_tokens(&server).await == 1).then_some(())
    })
    .await;
    let notify = format!(
        "/api/pages/{PAGE_ID}/topics/{}/notify",
        topic_id(&server).await
    );
    let (status, counts) = server
        .json(
            server
                .post(&notify)
                .json(&json!({"flow": "restock-notify"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{counts}");
    assert_eq!(counts["queued"], 1, "{counts}");
    // The 202 came once the one subscriber's run had committed.
    let (_, record) = server
        .json(server.get(&format!(
            "/api/pages/{PAGE_ID}/notifications/{}",
            counts["id"]
        )))
        .await;
    assert_eq!(
        record["runs"],
        json!({"expected": 1, "done": 1, "failed": 0}),
        "{record}"
    );
    assert_eq!(record["totals"]["queued"], 1, "{record}");
    let sent = eventually("the flow's otn_send message", || async {
        server
            .fake
            .sent_messages()
            .into_iter()
            .find(|m| m.text().is_some_and(|t| t.contains("back in stock")))
    })
    .await;
    assert_eq!(sent.token.as_deref(), Some(token.as_str()));
    let subscriber: Value = eventually("the tag set by the notification flow", || async {
        let (_, subscriber) = server
            .json(server.get(&format!("/api/pages/{PAGE_ID}/subscribers/{PSID}")))
            .await;
        let tagged = subscriber["tags"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t == "restock-notified"));
        tagged.then_some(subscriber)
    })
    .await;
    assert_eq!(subscriber["tokens_by_topic"], json!([]), "{subscriber}");
}

#[tokio::test]
async fn notify_rejects_unknown_topics_flows_and_bad_texts() {
    let server = restock_server().await;
    let topic = topic_id(&server).await;
    let notify = format!("/api/pages/{PAGE_ID}/topics/{topic}/notify");
    let cases = [
        (
            format!("/api/pages/{PAGE_ID}/topics/nope/notify"),
            json!({"text": "x"}),
            StatusCode::NOT_FOUND,
        ),
        // The topic exists: a flow the body names that is not published is the body's fault.
        (
            notify.clone(),
            json!({"flow": "no-such-flow"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            notify.clone(),
            json!({"text": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            notify.clone(),
            json!({"text": "x".repeat(2001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            notify.clone(),
            json!({"text": "x", "flow": "restock"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (notify.clone(), json!({}), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = server.json(server.post(&path).json(&body)).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
}

/// A notify body of the wrong shape gets a message a builder UI can show: it names the two
/// accepted fields (or the unknown one), never the server's Rust types.
#[tokio::test]
async fn notify_explains_a_body_of_the_wrong_shape() {
    let server = restock_server().await;
    let topic = topic_id(&server).await;
    let notify = format!("/api/pages/{PAGE_ID}/topics/{topic}/notify");
    let cases = [
        (json!({}), "exactly one of"),
        (json!({"text": "x", "flow": "restock"}), "exactly one of"),
        (json!({"txt": "x"}), "unknown field `txt`"),
        (
            json!({"text": "x", "colour": "red"}),
            "unknown field `colour`",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = server.json(server.post(&notify).json(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {message}");
        assert!(!message.contains("NotifyRequest"), "{body}: {message}");
    }
}

/// Shutdown processes every journaled event and lets sends in flight finish; messages not yet
/// handed to the Send API stay queued (durably) for the next start.
#[tokio::test]
async fn shutdown_finishes_queued_work() {
    let server = restock_server().await;
    let hello = envelope(
        PAGE_ID,
        1,
        vec![text_message(PAGE_ID, PSID, "m-1", "restock", 1)],
    );
    assert_eq!(
        server.webhook(&hello.to_string()).await.status(),
        StatusCode::OK
    );
    let TestServer {
        running,
        fake,
        store,
        ..
    } = server;
    running.shutdown().await.unwrap();
    assert_eq!(
        store.unprocessed_events().unwrap().len(),
        0,
        "the event was processed"
    );
    let stats = store.outbox_stats().unwrap();
    let sent = fake
        .sent_messages()
        .iter()
        .filter(|m| m.psid == PSID)
        .count() as u64;
    assert_eq!(stats.sent, sent, "every send that started was recorded");
    assert_eq!(
        stats.sent + stats.pending,
        2,
        "both answers are sent or still queued: {stats:?}"
    );
    assert_eq!(stats.failed, 0);
}

#[tokio::test]
async fn a_subscriber_is_greeted_by_the_name_from_the_user_profile_api() {
    let server = restock_server().await;
    server.fake.set_profile(
        "77",
        botflow_messenger::fake::FakeProfile::named("Grace", "Hopper"),
    );
    let say = |mid: &'static str, at: u64| {
        envelope(
            PAGE_ID,
            at,
            vec![text_message(PAGE_ID, "77", mid, "restock", at)],
        )
        .to_string()
    };
    let greetings = || {
        server
            .fake
            .sent_messages()
            .into_iter()
            .filter(|m| m.psid == "77")
            .filter_map(|m| m.text().map(str::to_owned))
            .filter(|text| text.starts_with("Hi "))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        server.webhook(&say("m-1", 1)).await.status(),
        StatusCode::OK
    );
    // The first message is answered at once, before the profile is known.
    eventually("the first greeting", || async {
        (greetings().len() == 1).then_some(())
    })
    .await;
    assert_eq!(greetings(), ["Hi there! The red sneakers are sold out."]);
    let subscriber: Value = eventually("the profile stored as fields", || async {
        let (_, subscriber) = server
            .json(server.get(&format!("/api/pages/{PAGE_ID}/subscribers/77")))
            .await;
        (subscriber["session"]["fields"]["first_name"] == "Grace").then_some(subscriber)
    })
    .await;
    assert_eq!(
        subscriber["session"]["fields"]["last_name"], "Hopper",
        "{subscriber}"
    );
    assert_eq!(
        server.webhook(&say("m-2", 2)).await.status(),
        StatusCode::OK
    );
    eventually("the second greeting", || async {
        (greetings().len() == 2).then_some(())
    })
    .await;
    assert_eq!(greetings()[1], "Hi Grace! The red sneakers are sold out.");
    assert_eq!(
        server
            .metric(r#"botflow_profile_fetches_total{outcome="ok"}"#)
            .await,
        1.0
    );
    assert_eq!(server.fake.profile_request_count(), 1);
}
