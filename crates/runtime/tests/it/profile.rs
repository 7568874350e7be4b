//! Subscriber profiles against the fake Graph API: a step never waits for the fetch, the names
//! arrive as fields and later messages use them, a failed fetch fails no step and is retried.

use crate::support::*;
use botflow_messenger::fake::{FakeGraphApi, FakeProfile};
use botflow_runtime::{Clock, ManualClock, ProfileSettings, Runtime, RuntimeConfig};
use botflow_storage::{Psid, Session, Store};
use std::sync::Arc;
use std::time::Duration;

/// Greets every message with the subscriber's first name, or "there".
const GREET: &str = r#"{"format": 1, "id": "greet", "name": "Greet", "triggers": [{"type": "default"}],
  "start": "hi", "blocks": [
    {"id": "hi", "type": "send_message", "messages": [{"type": "text", "text": "Hi {{first_name|there}}!"}]}]}"#;

fn config(clock: Arc<ManualClock>) -> RuntimeConfig {
    RuntimeConfig {
        clock,
        profiles: ProfileSettings {
            retry: Duration::from_secs(60),
            ..ProfileSettings::default()
        },
        ..fast_config()
    }
}

fn session(store: &dyn Store, psid: &str) -> Session {
    store
        .load_session(&page(), &Psid::from(psid))
        .unwrap()
        .unwrap_or_default()
}

fn texts(fake: &FakeGraphApi) -> Vec<String> {
    fake.sent_messages()
        .iter()
        .map(|m| m.text().unwrap_or_default().to_owned())
        .collect()
}

async fn say(runtime: &Runtime, store: &dyn Store, psid: &str, mid: &str) {
    let now = runtime.clock().now_ms();
    let entry = journal(store, text(psid, mid, "hello"), now).unwrap();
    runtime.submit(vec![entry]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_message_runs_at_once_and_later_ones_greet_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), GREET);
    let fake = FakeGraphApi::start().await;
    fake.set_profile("u", FakeProfile::named("Ada", "Lovelace"));
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let runtime = start(&store, &fake, config(Arc::clone(&clock))).await;

    say(&runtime, store.as_ref(), "u", "m-1").await;
    wait_for_sent(&fake, 1).await;
    // The step did not wait for the profile: its fetch starts after the commit.
    assert_eq!(texts(&fake), ["Hi there!"]);
    let fields = wait_for("the profile stored", LONG, || {
        let fields = session(store.as_ref(), "u").fields;
        fields.contains_key("first_name").then_some(fields)
    })
    .await;
    assert_eq!(fields["first_name"], "Ada");
    assert_eq!(fields["last_name"], "Lovelace");
    assert_eq!(
        fields["profile_pic"],
        "https://example.invalid/pic/Ada-Lovelace.jpg"
    );

    say(&runtime, store.as_ref(), "u", "m-2").await;
    wait_for_sent(&fake, 2).await;
    assert_eq!(texts(&fake), ["Hi there!", "Hi Ada!"]);

    // A day later the profile is fetched again, but a name the flow set itself is kept.
    fake.set_profile("u", FakeProfile::named("Ana", "Smith"));
    let mut edited = session(store.as_ref(), "u");
    edited.fields.insert("last_name".into(), "Byron".into());
    store
        .commit_step(botflow_storage::StepCommit {
            page: page(),
            psid: Psid::from("u"),
            event: None,
            session: edited,
            outbound: Vec::new(),
            tokens_added: Vec::new(),
            now_ms: clock.now_ms(),
            durable: true,
            notification_run: None,
        })
        .unwrap();
    clock.advance(24 * HOUR);
    say(&runtime, store.as_ref(), "u", "m-3").await;
    let fields = wait_for("the profile refreshed", LONG, || {
        let fields = session(store.as_ref(), "u").fields;
        (fields["first_name"] == "Ana").then_some(fields)
    })
    .await;
    assert_eq!(fields["last_name"], "Byron");
    assert_eq!(fake.profile_request_count(), 2);
    assert_eq!(runtime.metrics().profiles_fetched.get(), 2);
    assert_eq!(runtime.metrics().profile_fetches_failed.get(), 0);
    runtime.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fetch_fails_no_step_and_is_retried_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    publish(store.as_ref(), GREET);
    // No profile for "v" yet: the fake answers code 100, a permanent error.
    let fake = FakeGraphApi::start().await;
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let runtime = start(&store, &fake, config(Arc::clone(&clock))).await;

    say(&runtime, store.as_ref(), "v", "m-1").await;
    wait_for_sent(&fake, 1).await;
    wait_for("the failure recorded", LONG, || {
        let profile = session(store.as_ref(), "v").profile?;
        profile.failed_ms
    })
    .await;
    assert_eq!(runtime.metrics().profile_fetches_failed.get(), 1);
    assert!(session(store.as_ref(), "v").last_error.is_none());

    // Within the retry period the next message neither waits nor fetches again.
    say(&runtime, store.as_ref(), "v", "m-2").await;
    wait_for_sent(&fake, 2).await;
    assert_eq!(texts(&fake), ["Hi there!", "Hi there!"]);

    // After it, the next message asks again, and this time the name arrives.
    fake.set_profile("v", FakeProfile::named("Eve", "Doe"));
    clock.advance(61_000);
    say(&runtime, store.as_ref(), "v", "m-3").await;
    wait_for("the retried profile stored", LONG, || {
        session(store.as_ref(), "v")
            .fields
            .contains_key("first_name")
            .then_some(())
    })
    .await;
    // One failed fetch, one retry: the second message asked for none.
    assert_eq!(fake.profile_request_count(), 2);
    assert_eq!(runtime.metrics().profiles_fetched.get(), 1);
    let profile = session(store.as_ref(), "v").profile.unwrap();
    assert_eq!(profile.failed_ms, None);

    say(&runtime, store.as_ref(), "v", "m-4").await;
    wait_for_sent(&fake, 4).await;
    assert_eq!(texts(&fake)[3], "Hi Eve!");
    runtime.shutdown().await.unwrap();
}
