//! Crash test: a child process (this test binary, re-executed) journals opt-ins and runs the
//! runtime against the parent's fake Graph API; the parent SIGKILLs it at random moments,
//! restarts it, and finally checks that no acknowledged event was lost and that no OTN token
//! paid for two messages or was replaced by another token.

use crate::support::*;
use botflow_messenger::fake::FakeGraphApi;
use botflow_runtime::payload::OptinPayload;
use botflow_storage::{OutboundKind, OutboundStatus, Psid};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "BOTFLOW_RUNTIME_CRASH_CHILD";
const TEST_NAME: &str = "crash::a_crash_loses_no_acknowledged_event_and_sends_no_token_twice";
const SUBSCRIBERS: usize = 150;
const KILLED_RUNS: usize = 10;

const ALERT: &str = r#"{"format": 1, "id": "alert", "name": "Alert",
  "triggers": [{"type": "keyword", "words": ["alert"]}], "start": "ask", "blocks": [
    {"id": "ask", "type": "send_message", "messages": [
      {"type": "otn_request", "topic": {"name": "Crash"}, "title": "Tell me", "on_optin": "pay"}]},
    {"id": "pay", "type": "otn_send", "topic": {"name": "Crash"},
     "message": {"type": "text", "text": "paid"}, "next": "bye"},
    {"id": "bye", "type": "send_message", "messages": [{"type": "text", "text": "bye"}]}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_no_acknowledged_event_and_sends_no_token_twice() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return run_child(&dir).await;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open_store(dir.path());
        publish(store.as_ref(), ALERT);
        store.flush().unwrap();
    }
    let fake = FakeGraphApi::start().await;
    let tokens: Vec<String> = (0..SUBSCRIBERS)
        .map(|i| fake.issue_otn_token(&format!("p{i}")))
        .collect();
    std::fs::write(dir.path().join("tokens"), tokens.join("\n")).unwrap();
    std::fs::write(dir.path().join("fake_url"), fake.base_url()).unwrap();

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut interrupted = 0;
    let mut seed = Instant::now().elapsed().subsec_nanos() as u64 | 1;
    for run in 0..=KILLED_RUNS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::clone(&acked);
        let reader = std::thread::spawn(move || {
            let mut done = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness may print its own text before the child's first line.
                if let Some(at) = line.find("ACK ") {
                    seen.lock().unwrap().insert(line[at + 4..].to_owned());
                }
                done |= line.ends_with("DONE");
            }
            done
        });
        if run < KILLED_RUNS {
            // A pseudo-random moment: while journaling, processing or sending — after a random
            // time, or sooner once a random number of further events were acknowledged (so a
            // fast child is still cut while work remains).
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let after = Duration::from_millis(40 + seed % 300);
            let deadline = Instant::now() + after;
            let acked_target = acked.lock().unwrap().len() + 1 + (seed >> 20) as usize % 40;
            while Instant::now() < deadline
                && child.try_wait().unwrap().is_none()
                && acked.lock().unwrap().len() < acked_target
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = child.kill();
            child.wait().unwrap();
            reader.join().unwrap();
            let (journaled, sent) = (acked.lock().unwrap().len(), fake.sent_messages().len());
            eprintln!(
                "run {run}: killed within {after:?}: {journaled} events acknowledged, {sent} messages sent"
            );
            if sent < 3 * SUBSCRIBERS {
                interrupted += 1;
            }
        } else {
            let deadline = Instant::now() + Duration::from_secs(90);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                assert!(Instant::now() < deadline, "the last child did not finish");
                std::thread::sleep(Duration::from_millis(20));
            };
            assert!(status.success());
            assert!(reader.join().unwrap(), "the last child did not report DONE");
        }
    }

    assert!(interrupted > 0, "no kill landed before the work was done");
    let store = open_store(dir.path());
    assert!(
        store.unprocessed_events().unwrap().is_empty(),
        "every journaled event was processed"
    );
    let acked = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        2 * SUBSCRIBERS,
        "the last run journaled what the killed ones had not"
    );
    let sent = fake.sent_messages();
    let mut paid_by_token: HashMap<String, usize> = HashMap::new();
    for m in &sent {
        if let Some(token) = &m.token {
            *paid_by_token.entry(token.clone()).or_default() += 1;
        }
    }
    for (i, token) in tokens.iter().enumerate() {
        let psid = format!("p{i}");
        // The opt-in was acknowledged, so its token was stored and paid for exactly one message.
        let queued: Vec<_> = store
            .messages_for(&page(), &Psid::from(psid.as_str()))
            .unwrap()
            .into_iter()
            .filter(|m| matches!(m.kind, OutboundKind::OtnToken { .. }))
            .collect();
        assert_eq!(
            queued.len(),
            1,
            "{psid}: one token message queued, however often it was replayed"
        );
        assert_eq!(
            queued[0].token.as_deref(),
            Some(token.as_str()),
            "{psid}: paid by its own token"
        );
        assert!(
            matches!(
                queued[0].status,
                OutboundStatus::Sent { .. } | OutboundStatus::DeliveredUnconfirmed { .. }
            ),
            "{psid}: {:?}",
            queued[0].status
        );
        assert_eq!(
            paid_by_token.get(token).copied(),
            Some(1),
            "{psid}: the token paid once"
        );
    }
    // No request ever carried a token other than the subscriber's own.
    for request in fake.requests() {
        if let Some(token) = request
            .body
            .pointer("/recipient/one_time_notif_token")
            .and_then(|t| t.as_str())
        {
            assert!(tokens.iter().any(|t| t == token), "unknown token {token}");
        }
    }
}

/// The child: journals the events not journaled yet (printing `ACK <key>` once each append is
/// durable), runs the runtime until everything is processed and sent, then prints `DONE`.
async fn run_child(dir: &str) {
    let dir = std::path::Path::new(dir);
    let tokens: Vec<String> = std::fs::read_to_string(dir.join("tokens"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let fake_url = std::fs::read_to_string(dir.join("fake_url")).unwrap();
    let store = open_store(dir);
    let topic = topic_id(store.as_ref(), "Crash");
    let runtime =
        botflow_runtime::Runtime::start(Arc::clone(&store), client_for(&fake_url), fast_config())
            .await
            .unwrap();
    let now = runtime.clock().now_ms();
    for (i, token) in tokens.iter().enumerate() {
        let psid = format!("p{i}");
        let payload = OptinPayload {
            page: page(),
            flow: "alert".into(),
            version: 1,
            block: "ask".into(),
            message: 0,
            topic: topic.clone(),
        }
        .encode()
        .unwrap();
        for (key, raw) in [
            (format!("a{i}"), text(&psid, &format!("a{i}"), "alert")),
            (format!("o{i}"), optin(&psid, &payload, token)),
        ] {
            if let Some(entry) = journal(store.as_ref(), raw, now) {
                println!("ACK {key}");
                runtime.submit(vec![entry]).await.unwrap();
            } else {
                // Journaled by a killed run: acknowledged then, replayed by `start`.
                println!("ACK {key}");
            }
        }
    }
    wait_for(
        "everything processed and sent",
        Duration::from_secs(60),
        || {
            let idle = store.unprocessed_events().unwrap().is_empty()
                && store.outbox_stats().unwrap().pending == 0;
            idle.then_some(())
        },
    )
    .await;
    runtime.shutdown().await.unwrap();
    println!("DONE");
}
