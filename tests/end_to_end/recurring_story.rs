//! The Recurring Notifications story over HTTP against the real `botflow serve` and the fake
//! Graph API: the request template, the opt-in storing a recurring token, a notification paid
//! by it, a second one inside the period sending nothing to that holder, stop then resume, and an
//! "expired" answer from Messenger retiring the token; and a flow notification whose `otn_send`
//! pays with the recurring token of a holder without an OTN token, once per period.

use crate::support::{
    ADMIN_TOKEN, PAGE_ID, ServerProcess, botflow_bin, example_flow, now_ms, sent_matching,
    wait_until,
};
use botflow_messenger::fake::{FakeGraphApi, SentMessage};
use botflow_server::delivery::{envelope, recurring_optin, recurring_status, text_message};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Posts one event in its own signed delivery and checks the 200.
async fn deliver(server: &ServerProcess, event: Value) {
    let body = envelope(PAGE_ID, now_ms(), vec![event]);
    assert_eq!(server.webhook(&body.to_string()).await.status(), 200);
}

/// The subscriber asks for deals and opts in with `token`; returns once the thanks arrived.
async fn subscribe(server: &ServerProcess, fake: &FakeGraphApi, psid: &str, token: &str) {
    deliver(
        server,
        text_message(PAGE_ID, psid, &format!("m-{psid}"), "deals", now_ms()),
    )
    .await;
    let request = sent_matching(fake, "the recurring request template", |m| {
        m.psid == psid
            && m.message.pointer("/attachment/payload/template_type")
                == Some(&json!("notification_messages"))
    })
    .await;
    let template = &request.message["attachment"]["payload"];
    assert_eq!(template["notification_messages_frequency"], "WEEKLY");
    assert_eq!(template["title"], "Weekly deals from our shop");
    assert_eq!(
        template["image_url"],
        "https://shop.example.com/img/deals.png"
    );
    let payload = template["payload"].as_str().unwrap().to_owned();
    fake.register_notification_token(token, psid);
    deliver(
        server,
        recurring_optin(PAGE_ID, psid, &payload, token, "WEEKLY", now_ms()),
    )
    .await;
    sent_matching(fake, "the on_optin thanks", |m| {
        m.psid == psid && m.text().is_some_and(|t| t.starts_with("Subscribed"))
    })
    .await;
}

/// Sends a text notification and returns its counts once the queue is drained.
async fn notify(server: &ServerProcess, topic: &str, text: &str) -> Value {
    let (status, counts) = server
        .api_json(
            Method::POST,
            &format!("/api/pages/{PAGE_ID}/topics/{topic}/notify"),
            Some(json!({ "text": text })),
        )
        .await;
    assert_eq!(status, 202, "{counts}");
    drained(server).await;
    counts
}

/// The notification a notify answer names.
async fn notification(server: &ServerProcess, counts: &Value) -> Value {
    let id = counts["id"].as_u64().unwrap_or_else(|| panic!("{counts}"));
    let (status, record) = server
        .api_json(
            Method::GET,
            &format!("/api/pages/{PAGE_ID}/notifications/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{record}");
    record
}

async fn drained(server: &ServerProcess) {
    wait_until("an empty outbound queue", WAIT, || async {
        (server.metric("botflow_outbox_pending").await == 0.0).then_some(())
    })
    .await;
}

fn sent_text(fake: &FakeGraphApi, text: &str) -> Vec<SentMessage> {
    fake.sent_messages()
        .into_iter()
        .filter(|m| m.text() == Some(text))
        .collect()
}

async fn ledger(server: &ServerProcess, topic: &str) -> Value {
    let (status, ledger) = server
        .api_json(
            Method::GET,
            &format!("/api/pages/{PAGE_ID}/topics/{topic}/ledger"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{ledger}");
    ledger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recurring_story_end_to_end() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), fake.base_url(), None).await;

    // Publishing the example flow creates its topic by name.
    let flow: Value = example_flow("weekly-deals");
    let flows = format!("/api/pages/{PAGE_ID}/flows");
    let (status, draft) = server
        .api_json(Method::PUT, &format!("{flows}/weekly-deals"), Some(flow))
        .await;
    assert_eq!(status, 200, "{draft}");
    let (status, published) = server
        .api_json(Method::POST, &format!("{flows}/weekly-deals/publish"), None)
        .await;
    assert_eq!(status, 201, "{published}");
    let topic = published["topics_created"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Opt-in: the token is stored, counted apart from one-time tokens.
    subscribe(&server, &fake, "7770001", "rec-a").await;
    let counts = ledger(&server, &topic).await;
    assert_eq!(counts["recurring"]["issued"], 1, "{counts}");
    assert_eq!(counts["recurring"]["active"], 1, "{counts}");
    assert_eq!(counts["issued"], 0, "{counts}");

    // A notification reaches the holder with the recurring token as recipient.
    let counts = notify(&server, &topic, "Deal 1").await;
    assert_eq!(
        (
            counts["queued"].as_u64(),
            counts["recurring_queued"].as_u64()
        ),
        (Some(0), Some(1)),
        "{counts}"
    );
    let sent = sent_text(&fake, "Deal 1");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].psid.as_str(), sent[0].token.as_deref()),
        ("7770001", Some("rec-a"))
    );
    assert!(sent[0].messaging_type.is_none());

    // A second notification inside the period sends nothing to that holder; the token stays.
    let counts = notify(&server, &topic, "Deal 2").await;
    assert_eq!(counts["recurring_queued"], 0, "{counts}");
    assert_eq!(counts["recurring_not_due"], 1, "{counts}");
    assert!(sent_text(&fake, "Deal 2").is_empty());

    // A second subscriber opts in, then stops: nothing goes to them.
    subscribe(&server, &fake, "7770002", "rec-b").await;
    deliver(
        &server,
        recurring_status(PAGE_ID, "7770002", "rec-b", true, now_ms()),
    )
    .await;
    wait_until("the stop to be stored", WAIT, || async {
        let counts = ledger(&server, &topic).await;
        (counts["recurring"]["stopped"] == 1).then_some(())
    })
    .await;
    let counts = notify(&server, &topic, "Deal 3").await;
    assert_eq!(counts["recurring_stopped"], 1, "{counts}");
    assert_eq!(counts["recurring_queued"], 0, "{counts}");
    assert!(sent_text(&fake, "Deal 3").is_empty());

    // Resume: the next notification reaches them (their token never paid, so it is due).
    deliver(
        &server,
        recurring_status(PAGE_ID, "7770002", "rec-b", false, now_ms()),
    )
    .await;
    wait_until("the resume to be stored", WAIT, || async {
        let counts = ledger(&server, &topic).await;
        (counts["recurring"]["active"] == 2).then_some(())
    })
    .await;
    let counts = notify(&server, &topic, "Deal 4").await;
    assert_eq!(counts["recurring_queued"], 1, "{counts}");
    let sent = sent_text(&fake, "Deal 4");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].token.as_deref(), Some("rec-b"));
    // The recurring message is the notification's: its totals count it and it reached done.
    let record = notification(&server, &counts).await;
    assert_eq!(record["state"], "done", "{record}");
    let totals = &record["totals"];
    assert_eq!(
        (&totals["queued"], &totals["recurring"], &totals["sent"]),
        (&json!(1), &json!(1), &json!(1)),
        "{record}"
    );

    // A token Messenger answers "expired" for is retired and never tried again.
    subscribe(&server, &fake, "7770003", "rec-c").await;
    assert!(fake.expire_token("rec-c"));
    let counts = notify(&server, &topic, "Deal 5").await;
    assert_eq!(counts["recurring_queued"], 1, "{counts}");
    assert!(sent_text(&fake, "Deal 5").is_empty());
    let record = notification(&server, &counts).await;
    assert_eq!(record["state"], "done", "{record}");
    assert_eq!(record["totals"]["failed"], 1, "{record}");
    wait_until("the expired token to be retired", WAIT, || async {
        let counts = ledger(&server, &topic).await;
        (counts["recurring"]["retired"] == 1).then_some(counts)
    })
    .await;
    let counts = notify(&server, &topic, "Deal 6").await;
    assert_eq!(counts["recurring_queued"], 0, "{counts}");
    assert_eq!(counts["recurring_not_due"], 2, "{counts}");
    // `botflow notify` reports the recurring holders apart.
    let out = std::process::Command::new(botflow_bin())
        .args(["notify", "Weekly deals", "--text", "Deal 7"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BOTFLOW_SERVER", &server.base_url)
        .env("BOTFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("BOTFLOW_PAGE_ID", PAGE_ID)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let (id, rest) = line
        .strip_prefix("notification ")
        .and_then(|rest| rest.split_once(' '))
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(id.parse::<u64>().is_ok(), "{line:?}");
    assert_eq!(
        rest,
        "of topic \"Weekly deals\": 0 messages queued, 0 without a usable opt-in, 0 expired; \
         recurring: 0 messages queued, 2 not due, 0 stopped, 0 expired\n"
    );
    let counts = ledger(&server, &topic).await;
    assert_eq!(counts["recurring"]["issued"], 3, "{counts}");
    assert_eq!(counts["recurring"]["active"], 2, "{counts}");
    assert_eq!(counts["recurring"]["sends"], 3, "{counts}");
}

/// Publishes a flow document over the admin API; returns the publish answer.
async fn publish(server: &ServerProcess, flow: Value) -> Value {
    let id = flow["id"].as_str().unwrap().to_owned();
    let flows = format!("/api/pages/{PAGE_ID}/flows");
    let (status, draft) = server
        .api_json(Method::PUT, &format!("{flows}/{id}"), Some(flow))
        .await;
    assert_eq!(status, 200, "{draft}");
    let (status, published) = server
        .api_json(Method::POST, &format!("{flows}/{id}/publish"), None)
        .await;
    assert_eq!(status, 201, "{published}");
    published
}

/// Sends a flow notification and returns its counts once the queue is drained.
async fn notify_flow(server: &ServerProcess, topic: &str, flow: &str) -> Value {
    let (status, counts) = server
        .api_json(
            Method::POST,
            &format!("/api/pages/{PAGE_ID}/topics/{topic}/notify"),
            Some(json!({ "flow": flow })),
        )
        .await;
    assert_eq!(status, 202, "{counts}");
    drained(server).await;
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_notification_pays_otn_send_with_the_recurring_token_once_per_period() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), fake.base_url(), None).await;
    let flow: Value = example_flow("weekly-deals");
    let published = publish(&server, flow).await;
    let topic = published["topics_created"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    publish(
        &server,
        json!({
            "format": 1, "id": "deals-notify", "name": "Deals (notification)",
            "start": "send",
            "blocks": [
                {"id": "send", "type": "otn_send", "topic": {"id": topic},
                 "message": {"type": "text", "text": "Flow deal for {{first_name|you}}"},
                 "on_no_token": "missed", "next": "paid"},
                {"id": "paid", "type": "action",
                 "actions": [{"type": "add_tag", "tag": "deals-paid"}]},
                {"id": "missed", "type": "action",
                 "actions": [{"type": "add_tag", "tag": "deals-missed"}]}
            ]
        }),
    )
    .await;
    // A recurring-only holder: no OTN token of the topic.
    subscribe(&server, &fake, "7780001", "rec-f").await;

    let counts = notify_flow(&server, &topic, "deals-notify").await;
    assert_eq!(
        (
            counts["queued"].as_u64(),
            counts["recurring_queued"].as_u64(),
            counts["no_token"].as_u64()
        ),
        (Some(0), Some(1), Some(0)),
        "{counts}"
    );
    let sent: Vec<SentMessage> = fake
        .sent_messages()
        .into_iter()
        .filter(|m| m.text().is_some_and(|t| t.starts_with("Flow deal")))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].psid.as_str(), sent[0].token.as_deref()),
        ("7780001", Some("rec-f"))
    );
    assert!(sent[0].messaging_type.is_none());
    let record = notification(&server, &counts).await;
    assert_eq!(record["state"], "done", "{record}");
    let totals = &record["totals"];
    assert_eq!(
        (&totals["queued"], &totals["recurring"], &totals["sent"]),
        (&json!(1), &json!(1), &json!(1)),
        "{record}"
    );

    // Inside the week the flow does not run for that holder again and nothing is sent.
    let counts = notify_flow(&server, &topic, "deals-notify").await;
    assert_eq!(counts["recurring_queued"], 0, "{counts}");
    assert_eq!(counts["recurring_not_due"], 1, "{counts}");
    let again = fake
        .sent_messages()
        .into_iter()
        .filter(|m| m.text().is_some_and(|t| t.starts_with("Flow deal")))
        .count();
    assert_eq!(again, 1);

    // The CLI shows the recurring count: `notifications show` and `notify --wait`.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(botflow_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("BOTFLOW_SERVER", &server.base_url)
            .env("BOTFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("BOTFLOW_PAGE_ID", PAGE_ID)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = cli(&["notifications", "show", &record["id"].to_string()]);
    assert!(shown.contains("  recurring    1\n"), "{shown}");
    subscribe(&server, &fake, "7780002", "rec-g").await;
    let waited = cli(&["notify", "Weekly deals", "--flow", "deals-notify", "--wait"]);
    let (first, last) = waited
        .split_once('\n')
        .unwrap_or_else(|| panic!("{waited:?}"));
    assert!(
        first.ends_with(
            "of topic \"Weekly deals\": 0 messages queued, 0 without a usable opt-in, 0 expired; \
             recurring: 1 message queued, 1 not due, 0 stopped, 0 expired"
        ),
        "{waited:?}"
    );
    assert!(
        last.ends_with(" done: 1/1 sent (1 by recurring token)\n"),
        "{waited:?}"
    );
    let counts = ledger(&server, &topic).await;
    assert_eq!(counts["recurring"]["sends"], 2, "{counts}");
}
