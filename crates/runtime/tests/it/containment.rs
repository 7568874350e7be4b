//! Failures that must stay with the work they hit: a panic while processing one subscriber
//! (event, timer or notification run), and events journaled but never handed to the runtime.

use crate::support::*;
use botflow_flow::{FlowId, TopicId};
use botflow_messenger::fake::FakeGraphApi;
use botflow_runtime::{Clock, ManualClock, NotifyContent, RuntimeConfig, RuntimeError};
use botflow_storage::faults::FaultyStore;
use botflow_storage::{NewToken, Psid, Store};
use std::sync::Arc;

fn faulty(dir: &std::path::Path) -> (Arc<FaultyStore>, Arc<dyn Store>) {
    let faulty = Arc::new(FaultyStore::new(open_store(dir)));
    let store: Arc<dyn Store> = faulty.clone();
    (faulty, store)
}

/// Stores a one-day token of `topic` for `psid`, issued by the fake as Messenger would.
fn opt_in(store: &dyn Store, fake: &FakeGraphApi, topic: &TopicId, psid: &str, now: u64) {
    let token = NewToken {
        topic: topic.clone(),
        token: fake.issue_otn_token(psid),
        created_ms: now,
        expires_ms: now + 24 * HOUR,
    };
    store
        .add_token(&page(), &Psid::from(psid), token, now)
        .unwrap();
}

fn texts_to(fake: &FakeGraphApi, psid: &str) -> Vec<String> {
    fake.sent_messages()
        .iter()
        .filter(|m| m.psid == psid)
        .filter_map(|m| m.text().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_one_event_fails_that_event_and_the_subscriber_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (faults, store) = faulty(dir.path());
    publish(store.as_ref(), ECHO);
    let fake = FakeGraphApi::start().await;
    let runtime = start(&store, &fake, fast_config()).await;
    let now = runtime.clock().now_ms();
    faults.panic_on_load(&Psid::from("boom"), 1);
    let events = vec![
        journal(store.as_ref(), text("boom", "b-0", "hi"), now).unwrap(),
        journal(store.as_ref(), text("calm", "c-0", "hi"), now).unwrap(),
        journal(store.as_ref(), text("calm", "c-1", "5"), now).unwrap(),
    ];
    runtime.submit(events).await.unwrap();
    wait_for("calm's reply", LONG, || {
        (texts_to(&fake, "calm") == ["ack 5"]).then_some(())
    })
    .await;
    wait_for("the failed event recorded", LONG, || {
        store.unprocessed_events().unwrap().is_empty().then_some(())
    })
    .await;
    assert_eq!(runtime.metrics().events_failed.get(), 1);

    // The panic took only that event: the subscriber's next events run as usual.
    let more = vec![
        journal(store.as_ref(), text("boom", "b-1", "hi"), now).unwrap(),
        journal(store.as_ref(), text("boom", "b-2", "7"), now).unwrap(),
    ];
    runtime.submit(more).await.unwrap();
    wait_for("boom's reply", LONG, || {
        (texts_to(&fake, "boom") == ["ack 7"]).then_some(())
    })
    .await;
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_error_on_an_event_holds_back_the_subscribers_next_event_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (faults, store) = faulty(dir.path());
    publish(store.as_ref(), ECHO);
    let fake = FakeGraphApi::start().await;
    // One shard, so the two events of "late" share a batch behind "busy"'s.
    let runtime = start(
        &store,
        &fake,
        RuntimeConfig {
            workers: 1,
            ..fast_config()
        },
    )
    .await;
    let now = runtime.clock().now_ms();
    let greetings = vec![
        journal(store.as_ref(), text("busy", "busy-0", "hi"), now).unwrap(),
        journal(store.as_ref(), text("late", "late-0", "hi"), now).unwrap(),
    ];
    runtime.submit(greetings).await.unwrap();
    wait_for("the greetings processed", LONG, || {
        store.unprocessed_events().unwrap().is_empty().then_some(())
    })
    .await;
    // "busy"'s failed load keeps the shard in its retry pause while "late"'s events queue up.
    faults.fail_on_load(&Psid::from("busy"), 1);
    faults.fail_on_load(&Psid::from("late"), 1);
    let busy = journal(store.as_ref(), text("busy", "busy-1", "9"), now).unwrap();
    let late = vec![
        journal(store.as_ref(), text("late", "late-1", "1"), now).unwrap(),
        journal(store.as_ref(), text("late", "late-2", "2"), now).unwrap(),
    ];
    runtime.submit(vec![busy]).await.unwrap();
    runtime.submit(late).await.unwrap();
    wait_for("late's two replies", LONG, || {
        let texts = texts_to(&fake, "late");
        (texts.len() >= 2).then_some(texts)
    })
    .await;
    // The first event's load failed once; the second waited for its retry instead of
    // overtaking it.
    assert_eq!(texts_to(&fake, "late"), ["ack 1", "ack 2"]);
    assert_eq!(texts_to(&fake, "busy"), ["ack 9"]);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_a_timer_drops_that_timer_and_other_timers_fire() {
    let dir = tempfile::tempdir().unwrap();
    let (faults, store) = faulty(dir.path());
    publish(store.as_ref(), DRIP);
    let fake = FakeGraphApi::start().await;
    let clock = ManualClock::new(1_800_000_000_000);
    let config = RuntimeConfig {
        clock: Arc::new(clock.clone()),
        ..fast_config()
    };
    let runtime = start(&store, &fake, config).await;
    let events = vec![
        journal(store.as_ref(), text("boom", "b-0", "drip"), clock.now_ms()).unwrap(),
        journal(store.as_ref(), text("calm", "c-0", "drip"), clock.now_ms()).unwrap(),
    ];
    runtime.submit(events).await.unwrap();
    wait_for_sent(&fake, 2).await;
    faults.panic_on_load(&Psid::from("boom"), 1);
    clock.advance(2 * HOUR + 1);
    runtime.wake();
    wait_for("calm's timer", LONG, || {
        (texts_to(&fake, "calm") == ["now", "two hours later"]).then_some(())
    })
    .await;
    wait_for("boom's timer dropped", LONG, || {
        let session = store.load_session(&page(), &Psid::from("boom")).unwrap()?;
        session.timers.is_empty().then_some(())
    })
    .await;
    assert!(store.due_timers(clock.now_ms(), 10).unwrap().is_empty());
    assert_eq!(texts_to(&fake, "boom"), ["now"]);
    assert_eq!(runtime.metrics().events_failed.get(), 1);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_notification_run_is_an_error_for_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let (faults, store) = faulty(dir.path());
    publish(store.as_ref(), &workspace_file("flows/restock-notify.json"));
    let topic = topic_id(store.as_ref(), "Red sneakers restock");
    let fake = FakeGraphApi::start().await;
    let runtime = start(&store, &fake, fast_config()).await;
    let now = runtime.clock().now_ms();
    for psid in ["boom", "calm"] {
        opt_in(store.as_ref(), &fake, &topic, psid, now);
    }
    faults.panic_on_load(&Psid::from("boom"), 1);
    let result = runtime
        .notify_topic(
            &page(),
            &topic,
            NotifyContent::Flow(FlowId::from("restock-notify")),
            now,
        )
        .await;
    match result {
        Err(RuntimeError::NotifyFailed { psid, counts, .. }) => {
            assert_eq!(psid, "boom");
            assert_eq!(counts.queued, 1, "calm's run still queued its message");
        }
        other => panic!("expected NotifyFailed, got {other:?}"),
    }
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_journaled_but_never_handed_over_runs_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), ECHO);
    let fake = FakeGraphApi::start().await;
    let runtime = start(&store, &fake, fast_config()).await;
    let now = runtime.clock().now_ms();
    // Journaled (the webhook answered 200) but the hand-off never happened.
    journal(store.as_ref(), text("lost", "l-0", "hi"), now).unwrap();
    journal(store.as_ref(), text("lost", "l-1", "9"), now).unwrap();
    wait_for("the journal follower to run them", LONG, || {
        (texts_to(&fake, "lost") == ["ack 9"]).then_some(())
    })
    .await;
    assert_eq!(runtime.metrics().events_recovered.get(), 2);
    assert!(store.unprocessed_events().unwrap().is_empty());
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_spent_between_a_step_and_its_commit_sends_the_no_token_branch() {
    let dir = tempfile::tempdir().unwrap();
    let (faults, store) = faulty(dir.path());
    publish(store.as_ref(), &workspace_file("flows/restock-notify.json"));
    let topic = topic_id(store.as_ref(), "Red sneakers restock");
    let fake = FakeGraphApi::start().await;
    let runtime = start(&store, &fake, fast_config()).await;
    let now = runtime.clock().now_ms();
    let racer = Psid::from("racer");
    opt_in(store.as_ref(), &fake, &topic, "racer", now);
    // After the flow's step read "one token", a text notification spends it before the commit.
    let racing_topic = topic.clone();
    faults.before_next_commit(move |store| {
        let body = |psid: &Psid| {
            let news = botflow_messenger::OutgoingMessage::Text {
                text: "news".to_owned(),
            };
            botflow_runtime::outbound::request_body(
                psid,
                botflow_runtime::outbound::Purpose::OtnToken,
                news,
            )
        };
        let content = botflow_storage::NotificationContent::Text;
        let record = store
            .create_notification(&page(), &racing_topic, &content, now)
            .unwrap();
        let outcome = store
            .notify_topic(&page(), &racing_topic, record.id, &body, now)
            .unwrap();
        assert_eq!(outcome.queued, 1);
    });
    let counts = runtime
        .notify_topic(
            &page(),
            &topic,
            NotifyContent::Flow(FlowId::from("restock-notify")),
            now,
        )
        .await
        .unwrap();
    assert_eq!((counts.queued, counts.no_token), (0, 1), "{counts:?}");
    let session = store.load_session(&page(), &racer).unwrap().unwrap();
    assert!(
        session.tags.contains("restock-missed"),
        "{:?}",
        session.tags
    );
    assert!(
        !session.tags.contains("restock-notified"),
        "{:?}",
        session.tags
    );
    wait_for("the text notification sent", LONG, || {
        (texts_to(&fake, "racer") == ["news"]).then_some(())
    })
    .await;
    runtime.shutdown().await.unwrap();
    assert_eq!(
        texts_to(&fake, "racer"),
        ["news"],
        "the token paid for one message"
    );
}
