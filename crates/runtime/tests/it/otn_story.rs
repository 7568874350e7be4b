//! The whole OTN story through the real runtime, a real sled store and the fake Graph API:
//! request sent → opt-in → token stored → notification sends one message → a second sends none.

use crate::support::*;
use botflow_messenger::fake::FakeGraphApi;
use botflow_runtime::NotifyContent;
use botflow_storage::{OutboundStatus, Psid, TokenState};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otn_request_optin_and_exactly_one_follow_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), &workspace_file("flows/restock.json"));
    let topic = topic_id(store.as_ref(), "Red sneakers restock");
    let fake = FakeGraphApi::start().await;
    let runtime = start(&store, &fake, fast_config()).await;

    // 1. The keyword starts the flow: a text with a button and the OTN request.
    let now = runtime.clock().now_ms();
    let first = journal(store.as_ref(), text("ada", "m-1", "restock"), now).unwrap();
    runtime.submit(vec![first]).await.unwrap();
    wait_for_sent(&fake, 2).await;
    let payload = last_optin_payload(&fake, "ada").expect("an OTN request was sent");

    // 2. The subscriber taps "Notify me": the token is stored and the flow continues.
    let token = fake.issue_otn_token("ada");
    let opt = journal(store.as_ref(), optin("ada", &payload, &token), now + 1_000).unwrap();
    runtime.submit(vec![opt]).await.unwrap();
    wait_for_sent(&fake, 3).await;
    let third = fake.sent_messages()[2].clone();
    assert_eq!(third.text(), Some("Done: one message when they are back."));
    let stored = store.get_token(&page(), &token).unwrap().unwrap();
    assert_eq!(stored.topic, topic);
    assert_eq!(stored.state, TokenState::Usable);

    // 3. A topic notification queues exactly one message, paid by that token.
    let counts = runtime
        .notify_topic(
            &page(),
            &topic,
            NotifyContent::Text("They are back!".into()),
            now + 2_000,
        )
        .await
        .unwrap();
    assert_eq!((counts.queued, counts.no_token), (1, 0));
    wait_for_sent(&fake, 4).await;
    let follow_up = fake.sent_messages()[3].clone();
    assert_eq!(follow_up.token.as_deref(), Some(token.as_str()));
    assert_eq!(follow_up.text(), Some("They are back!"));
    assert!(fake.token(&token).unwrap().used);

    // 4. A second notification finds no usable token and sends nothing.
    let again = runtime
        .notify_topic(
            &page(),
            &topic,
            NotifyContent::Text("Still here".into()),
            now + 3_000,
        )
        .await
        .unwrap();
    assert_eq!(again.queued, 0);
    let psid = Psid::from("ada");
    wait_for("every message recorded as sent", LONG, || {
        let messages = store.messages_for(&page(), &psid).unwrap();
        messages
            .iter()
            .all(|m| matches!(m.status, OutboundStatus::Sent { .. }))
            .then_some(messages)
    })
    .await;
    runtime.shutdown().await.unwrap();
    assert_eq!(fake.sent_messages().len(), 4, "nothing more was sent");
    assert_eq!(runtime.metrics().messages_sent.get(), 4);
    assert_eq!(runtime.metrics().events_processed.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_flow_spends_one_token_per_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), &workspace_file("flows/restock.json"));
    publish(store.as_ref(), &workspace_file("flows/restock-notify.json"));
    let topic = topic_id(store.as_ref(), "Red sneakers restock");
    let fake = FakeGraphApi::start().await;
    let runtime = start(&store, &fake, fast_config()).await;
    let now = runtime.clock().now_ms();
    for (i, psid) in ["u1", "u2"].iter().enumerate() {
        let e = journal(
            store.as_ref(),
            text(psid, &format!("m-{i}"), "restock"),
            now,
        )
        .unwrap();
        runtime.submit(vec![e]).await.unwrap();
    }
    wait_for_sent(&fake, 4).await;
    // Only u1 opts in.
    let payload = last_optin_payload(&fake, "u1").unwrap();
    let token = fake.issue_otn_token("u1");
    let e = journal(store.as_ref(), optin("u1", &payload, &token), now).unwrap();
    runtime.submit(vec![e]).await.unwrap();
    wait_for_sent(&fake, 5).await;

    let counts = runtime
        .notify_topic(
            &page(),
            &topic,
            NotifyContent::Flow("restock-notify".into()),
            now + 10,
        )
        .await
        .unwrap();
    assert_eq!((counts.queued, counts.no_token), (1, 0));
    wait_for_sent(&fake, 6).await;
    let sent = fake.sent_messages();
    assert_eq!(sent[5].token.as_deref(), Some(token.as_str()));
    assert!(sent[5].text().unwrap().starts_with("Good news"));
    let session = store
        .load_session(&page(), &Psid::from("u1"))
        .unwrap()
        .unwrap();
    assert!(session.tags.contains("restock-notified"));
    // The notification's record counts the token send the flow queued, through to done.
    let record = wait_for("the flow notification done", LONG, || {
        let found = store.notification(&page(), counts.notification).unwrap();
        found.filter(|n| n.state == botflow_storage::NotificationState::Done)
    })
    .await;
    assert_eq!(
        record.content,
        botflow_storage::NotificationContent::Flow {
            flow: "restock-notify".into()
        }
    );
    assert_eq!((record.totals.queued, record.totals.sent), (1, 1));
    runtime.shutdown().await.unwrap();
    assert_eq!(fake.sent_messages().len(), 6);
}
