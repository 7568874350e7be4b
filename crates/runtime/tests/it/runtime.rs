//! The scheduler and the dispatcher against a real sled store and the fake Graph API:
//! redeliveries, the 24-hour window, retries, token outcomes, timers across restarts, resume,
//! and per-subscriber order with 1,000 subscribers at once.

use crate::support::*;
use botflow_messenger::fake::{FakeGraphApi, Fault};
use botflow_messenger::{ClientConfig, RetryPolicy, SendClient};
use botflow_runtime::{Clock, ManualClock, NotifyContent, Runtime, RuntimeConfig};
use botflow_storage::{OutboundStatus, Psid, TokenState};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn statuses(store: &dyn botflow_storage::Store, psid: &str) -> Vec<OutboundStatus> {
    store
        .messages_for(&page(), &Psid::from(psid))
        .unwrap()
        .into_iter()
        .map(|m| m.status)
        .collect()
}

fn all_done(
    store: &dyn botflow_storage::Store,
    psid: &str,
    count: usize,
) -> Option<Vec<OutboundStatus>> {
    let s = statuses(store, psid);
    (s.len() == count && s.iter().all(|s| !s.is_pending())).then_some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), ECHO);
    let fake = FakeGraphApi::start().await;
    let runtime = start(&store, &fake, fast_config()).await;
    let now = runtime.clock().now_ms();
    let start_event = journal(store.as_ref(), text("u", "m-0", "hi"), now).unwrap();
    let answer = journal(store.as_ref(), text("u", "m-1", "42"), now).unwrap();
    // The journal drops a redelivery with the same mid...
    assert!(journal(store.as_ref(), text("u", "m-1", "42"), now).is_none());
    // ...an entry handed over twice while it is queued runs once...
    runtime
        .submit(vec![start_event, answer.clone(), answer.clone()])
        .await
        .unwrap();
    wait_for_sent(&fake, 1).await;
    wait_for("both events processed", LONG, || {
        store.unprocessed_events().unwrap().is_empty().then_some(())
    })
    .await;
    runtime.shutdown().await.unwrap();
    assert_eq!(runtime.metrics().events_processed.get(), 2);

    // ...and one handed over again later (a replay) is refused by the commit.
    let runtime = start(&store, &fake, fast_config()).await;
    runtime.submit(vec![answer]).await.unwrap();
    wait_for("the replay refused", LONG, || {
        (runtime.metrics().events_already_processed.get() == 1).then_some(())
    })
    .await;
    runtime.shutdown().await.unwrap();
    let sent: Vec<_> = fake
        .sent_messages()
        .iter()
        .map(|m| m.text().unwrap().to_owned())
        .collect();
    assert_eq!(sent, ["ack 42"]);
    assert_eq!(runtime.metrics().events_processed.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_messages_outside_the_24_hour_window_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), &workspace_file("flows/restock.json"));
    let fake = FakeGraphApi::start().await;
    let clock = ManualClock::new(1_800_000_000_000);
    let config = RuntimeConfig {
        clock: Arc::new(clock.clone()),
        ..fast_config()
    };
    let runtime = start(&store, &fake, config).await;
    // An event that arrived 25 hours ago (a backlog after an outage) is processed now: its
    // replies may no longer be sent.
    let old = journal(
        store.as_ref(),
        text("late", "m-1", "restock"),
        clock.now_ms() - 25 * HOUR,
    )
    .unwrap();
    let fresh = journal(
        store.as_ref(),
        text("fresh", "m-2", "restock"),
        clock.now_ms(),
    )
    .unwrap();
    runtime.submit(vec![old, fresh]).await.unwrap();
    let late = wait_for("late replies recorded", LONG, || {
        all_done(store.as_ref(), "late", 2)
    })
    .await;
    for status in late {
        assert!(
            matches!(status, OutboundStatus::RefusedByPolicy { ref reason, .. } if reason.contains("24-hour")),
            "{status:?}"
        );
    }
    wait_for("fresh replies recorded", LONG, || {
        all_done(store.as_ref(), "fresh", 2)
    })
    .await;
    runtime.shutdown().await.unwrap();
    assert!(fake.sent_messages().iter().all(|m| m.psid == "fresh"));
    assert_eq!(fake.sent_messages().len(), 2);
    assert_eq!(runtime.metrics().messages_refused.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_in_order_and_permanent_token_errors_invalidate_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), &workspace_file("flows/restock.json"));
    let topic = topic_id(store.as_ref(), "Red sneakers restock");
    let fake = FakeGraphApi::start().await;
    // The client tries twice per dispatch; three 503s force a dispatcher-level retry.
    fake.inject(Fault::Status(503), 3);
    let runtime = start(&store, &fake, fast_config()).await;
    let now = runtime.clock().now_ms();
    let e = journal(store.as_ref(), text("ada", "m-1", "restock"), now).unwrap();
    runtime.submit(vec![e]).await.unwrap();
    let sent = wait_for_sent(&fake, 2).await;
    assert_eq!(
        sent[0].text(),
        Some("Hi there! The red sneakers are sold out."),
        "order kept across retries"
    );
    assert!(
        sent[1]
            .message
            .pointer("/attachment/payload/template_type")
            .is_some()
    );
    assert!(runtime.metrics().messages_retried.get() >= 1);

    let payload = last_optin_payload(&fake, "ada").unwrap();
    let token = fake.issue_otn_token("ada");
    let e = journal(store.as_ref(), optin("ada", &payload, &token), now).unwrap();
    runtime.submit(vec![e]).await.unwrap();
    wait_for_sent(&fake, 3).await;
    wait_for("replies recorded", LONG, || {
        all_done(store.as_ref(), "ada", 3)
    })
    .await;
    fake.inject(
        Fault::GraphError {
            status: 400,
            code: 100,
            subcode: None,
            message: "The token is invalid".into(),
        },
        1,
    );
    let counts = runtime
        .notify_topic(&page(), &topic, NotifyContent::Text("Back!".into()), now)
        .await
        .unwrap();
    assert_eq!(counts.queued, 1);
    let statuses = wait_for("token send recorded", LONG, || {
        all_done(store.as_ref(), "ada", 4)
    })
    .await;
    assert!(
        matches!(statuses[3], OutboundStatus::Failed { .. }),
        "{:?}",
        statuses[3]
    );
    let stored = store.get_token(&page(), &token).unwrap().unwrap();
    assert!(
        matches!(stored.state, TokenState::Invalid { .. }),
        "{stored:?}"
    );
    runtime.shutdown().await.unwrap();
    assert_eq!(runtime.metrics().messages_failed.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_token_send_is_delivered_unconfirmed_and_never_resent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), &workspace_file("flows/restock.json"));
    let topic = topic_id(store.as_ref(), "Red sneakers restock");
    let fake = FakeGraphApi::start().await;
    let mut config = ClientConfig::new("page-token");
    config.graph_base_url = fake.base_url().to_owned();
    config.timeout = Duration::from_millis(300);
    // The retry comes after the slow first attempt was handled (and spent the token).
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(900),
        max_delay: Duration::from_secs(1),
    };
    let client = SendClient::new(config).unwrap();
    let runtime = Runtime::start(Arc::clone(&store), client, fast_config())
        .await
        .unwrap();
    let now = runtime.clock().now_ms();
    let e = journal(store.as_ref(), text("bo", "m-1", "restock"), now).unwrap();
    runtime.submit(vec![e]).await.unwrap();
    wait_for_sent(&fake, 2).await;
    let payload = last_optin_payload(&fake, "bo").unwrap();
    let token = fake.issue_otn_token("bo");
    let e = journal(store.as_ref(), optin("bo", &payload, &token), now).unwrap();
    runtime.submit(vec![e]).await.unwrap();
    wait_for("opt-in replies recorded", LONG, || {
        all_done(store.as_ref(), "bo", 3)
    })
    .await;

    fake.inject(Fault::Delay(Duration::from_millis(600)), 1);
    let counts = runtime
        .notify_topic(&page(), &topic, NotifyContent::Text("Back!".into()), now)
        .await
        .unwrap();
    assert_eq!(counts.queued, 1);
    let statuses = wait_for("token send recorded", LONG, || {
        all_done(store.as_ref(), "bo", 4)
    })
    .await;
    assert!(
        matches!(statuses[3], OutboundStatus::DeliveredUnconfirmed { .. }),
        "{:?}",
        statuses[3]
    );
    runtime.shutdown().await.unwrap();
    let paid: Vec<_> = fake
        .sent_messages()
        .into_iter()
        .filter(|m| m.token.is_some())
        .collect();
    assert_eq!(paid.len(), 1, "the slow attempt delivered it once");
    let token_requests = fake
        .requests()
        .iter()
        .filter(|r| r.body.pointer("/recipient/one_time_notif_token").is_some())
        .count();
    assert_eq!(
        token_requests, 2,
        "one timed-out attempt and one retry with the same token"
    );
    assert_eq!(runtime.metrics().messages_unconfirmed.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_timers_fire_after_a_restart_and_the_journal_backlog_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), DRIP);
    let fake = FakeGraphApi::start().await;
    let clock = ManualClock::new(1_800_000_000_000);
    let config = || RuntimeConfig {
        clock: Arc::new(clock.clone()),
        ..fast_config()
    };
    let runtime = start(&store, &fake, config()).await;
    let e = journal(store.as_ref(), text("cy", "m-1", "drip"), clock.now_ms()).unwrap();
    runtime.submit(vec![e]).await.unwrap();
    wait_for_sent(&fake, 1).await;
    runtime.shutdown().await.unwrap();

    // While botflow is down: an event is journaled (answered 200) but never submitted.
    let backlog = journal(store.as_ref(), text("dee", "m-2", "drip"), clock.now_ms()).unwrap();
    assert_eq!(store.unprocessed_events().unwrap()[0].event, backlog.event);
    clock.advance(2 * HOUR + 1);

    let runtime = start(&store, &fake, config()).await;
    // The backlog event runs at the time it arrived, so its 2-hour delay is already over too.
    let sent = wait_for_sent(&fake, 4).await;
    let texts: HashMap<_, Vec<_>> = sent.iter().fold(HashMap::new(), |mut acc, m| {
        acc.entry(m.psid.clone())
            .or_default()
            .push(m.text().unwrap().to_owned());
        acc
    });
    assert_eq!(texts["cy"], ["now", "two hours later"]);
    assert_eq!(texts["dee"], ["now", "two hours later"]);
    assert!(store.unprocessed_events().unwrap().is_empty());
    runtime.shutdown().await.unwrap();
    assert_eq!(runtime.metrics().timers_fired.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_at_once_keep_their_own_order() {
    const SUBSCRIBERS: usize = 1_000;
    const ANSWERS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), ECHO);
    let fake = FakeGraphApi::start().await;
    let runtime = Arc::new(
        start(
            &store,
            &fake,
            RuntimeConfig {
                queue_capacity: 64,
                ..fast_config()
            },
        )
        .await,
    );
    let now = runtime.clock().now_ms();
    // Rounds interleave subscribers; four submitters race each other, each owning a quarter of
    // the subscribers, so only per-subscriber order is defined.
    let mut submitters = Vec::new();
    for part in 0..4 {
        let store = Arc::clone(&store);
        let runtime = Arc::clone(&runtime);
        submitters.push(tokio::spawn(async move {
            for round in 0..=ANSWERS {
                let mut batch = Vec::new();
                for s in (part..SUBSCRIBERS).step_by(4) {
                    let psid = format!("s{s}");
                    let body = if round == 0 {
                        "hi".to_owned()
                    } else {
                        round.to_string()
                    };
                    let raw = text(&psid, &format!("{psid}-{round}"), &body);
                    batch.push(journal(store.as_ref(), raw, now).unwrap());
                }
                runtime.submit(batch).await.unwrap();
            }
        }));
    }
    for s in submitters {
        s.await.unwrap();
    }
    let sent = wait_for_sent(&fake, SUBSCRIBERS * ANSWERS).await;
    let mut by_psid: HashMap<String, Vec<String>> = HashMap::new();
    for m in &sent {
        by_psid
            .entry(m.psid.clone())
            .or_default()
            .push(m.text().unwrap().to_owned());
    }
    assert_eq!(by_psid.len(), SUBSCRIBERS);
    let expected: Vec<String> = (1..=ANSWERS).map(|i| format!("ack {i}")).collect();
    for (psid, texts) in &by_psid {
        assert_eq!(texts, &expected, "order of {psid}");
    }
    runtime.shutdown().await.unwrap();
    assert_eq!(
        runtime.metrics().events_processed.get(),
        (SUBSCRIBERS * (ANSWERS + 1)) as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_page_credentials_hold_messages_instead_of_failing_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), ECHO);
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::Status(401), 1);
    let runtime = start(&store, &fake, fast_config()).await;
    let now = runtime.clock().now_ms();
    let entries = vec![
        journal(store.as_ref(), text("ed", "m-0", "hi"), now).unwrap(),
        journal(store.as_ref(), text("ed", "m-1", "7"), now).unwrap(),
    ];
    runtime.submit(entries).await.unwrap();
    // Held after the 401, then sent once the retry delay passed.
    let statuses = wait_for("the message sent after the hold", LONG, || {
        all_done(store.as_ref(), "ed", 1)
    })
    .await;
    assert!(
        matches!(statuses[0], OutboundStatus::Sent { .. }),
        "{statuses:?}"
    );
    runtime.shutdown().await.unwrap();
    assert_eq!(fake.request_count(), 2);
    assert_eq!(runtime.metrics().messages_failed.get(), 0);
    assert_eq!(runtime.metrics().messages_retried.get(), 1);
}

const SAY: &str = r#"{"format": 1, "id": "say", "name": "Say", "triggers": [{"type": "default"}],
  "start": "ask", "blocks": [
    {"id": "ask", "type": "wait_input", "field": "n", "next": "echo"},
    {"id": "echo", "type": "send_message", "messages": [{"type": "text", "text": "You said: {{n}}"}], "next": "bye"},
    {"id": "bye", "type": "send_message", "messages": [{"type": "text", "text": "bye"}]}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_long_once_rendered_is_never_sent_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), SAY);
    let fake = FakeGraphApi::start().await;
    let runtime = start(&store, &fake, fast_config()).await;
    let now = runtime.clock().now_ms();
    let long = "x".repeat(1_995);
    let events = vec![
        journal(store.as_ref(), text("u", "m-0", "hi"), now).unwrap(),
        journal(store.as_ref(), text("u", "m-1", &long), now).unwrap(),
    ];
    runtime.submit(events).await.unwrap();
    // "You said: " + 1,995 characters is 2,005: the flow goes on to `bye`, which is sent.
    wait_for_sent(&fake, 1).await;
    wait_for("both events processed", LONG, || {
        store.unprocessed_events().unwrap().is_empty().then_some(())
    })
    .await;
    runtime.shutdown().await.unwrap();
    let sent: Vec<_> = fake
        .sent_messages()
        .iter()
        .map(|m| m.text().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(
        sent,
        ["bye"],
        "the refused message never reached the Graph API"
    );
    assert_eq!(fake.request_count(), 1);
    assert_eq!(runtime.metrics().messages_failed.get(), 1);
    let session = store
        .load_session(&page(), &Psid::from("u"))
        .unwrap()
        .unwrap();
    assert_eq!(
        session.last_error.as_deref(),
        Some(
            "message of block `echo` not sent, Messenger would refuse it: \
             message.text has 2005 characters, at most 2000 allowed"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_bodies_are_checked_before_sending_and_old_wire_bodies_still_send() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store.ensure_page(&page(), 0).unwrap();
    let fake = FakeGraphApi::start().await;
    let clock = ManualClock::new(1_800_000_000_000);
    let now = clock.now_ms();
    // Queued as an earlier version did (Graph API wire JSON), then one the dispatcher must
    // refuse (a too long text, as a notification could carry): typed, as the runtime queues now.
    let legacy = serde_json::json!({"recipient": {"id": "old"}, "messaging_type": "RESPONSE",
        "message": {"text": "queued by 0.x"}});
    let too_long = botflow_runtime::outbound::request_body(
        &Psid::from("old"),
        botflow_runtime::outbound::Purpose::Update,
        botflow_messenger::OutgoingMessage::Text {
            text: "y".repeat(2_001),
        },
    );
    let session = botflow_storage::Session {
        last_interaction_ms: Some(now),
        ..botflow_storage::Session::default()
    };
    let outbound = [legacy, too_long]
        .into_iter()
        .map(|body| botflow_storage::NewOutbound {
            body,
            kind: botflow_storage::OutboundKind::Normal,
        })
        .collect();
    store
        .commit_step(botflow_storage::StepCommit {
            page: page(),
            psid: Psid::from("old"),
            event: None,
            session,
            outbound,
            tokens_added: Vec::new(),
            now_ms: now,
            durable: true,
            notification_run: None,
        })
        .unwrap();
    let config = RuntimeConfig {
        clock: Arc::new(clock.clone()),
        ..fast_config()
    };
    let runtime = start(&store, &fake, config).await;
    let done = wait_for("both messages recorded", LONG, || {
        all_done(store.as_ref(), "old", 2)
    })
    .await;
    runtime.shutdown().await.unwrap();
    assert!(matches!(done[0], OutboundStatus::Sent { .. }), "{done:?}");
    match &done[1] {
        OutboundStatus::Failed { error, .. } => assert_eq!(
            error,
            "not sent, Messenger would refuse it: message.text has 2001 characters, at most 2000 allowed"
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
    let sent: Vec<_> = fake
        .sent_messages()
        .iter()
        .map(|m| m.text().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(sent, ["queued by 0.x"]);
    assert_eq!(fake.request_count(), 1);
    assert_eq!(runtime.metrics().messages_failed.get(), 1);
}
