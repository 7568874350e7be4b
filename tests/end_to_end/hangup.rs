//! Messenger hangs up on slow webhook answers and redelivers: deliveries whose connection is
//! closed right after the request was written must still be processed, without a restart.

use crate::support::{APP_SECRET, PAGE_ID, ServerProcess, wait_until, workspace_root};
use botflow_messenger::fake::FakeGraphApi;
use botflow_server::delivery::{envelope, signature, text_message};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

const SUBSCRIBERS: usize = 40;
const WAIT: Duration = Duration::from_secs(60);

fn restock_message(psid: &str) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mid = format!("mid-{psid}");
    envelope(
        PAGE_ID,
        t,
        vec![text_message(PAGE_ID, psid, &mid, "restock", t)],
    )
    .to_string()
}

/// Writes a signed webhook POST on a fresh connection and closes it without reading the answer.
async fn post_and_hang_up(address: &str, body: &str) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /webhook HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n{body}",
        signature(APP_SECRET, body),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_whose_client_hung_up_are_processed_without_a_restart() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let flows = workspace_root().join("flows");
    let server = ServerProcess::start(data.path(), fake.base_url(), Some(&flows)).await;
    let address = server.base_url.trim_start_matches("http://").to_owned();

    let psids: Vec<String> = (0..SUBSCRIBERS).map(|i| format!("77000{i:03}")).collect();
    for psid in &psids {
        post_and_hang_up(&address, &restock_message(psid)).await;
    }
    // Messenger redelivers each one normally: journaled already, so each is a duplicate or new.
    for psid in &psids {
        let response = server.webhook(&restock_message(psid)).await;
        assert_eq!(response.status(), 200);
    }
    // The restock flow answers with two messages (a text, then the OTN request).
    wait_until("both replies to every subscriber", WAIT, || {
        let sent = fake.sent_messages();
        let done = psids
            .iter()
            .all(|psid| sent.iter().filter(|m| &m.psid == psid).count() >= 2);
        async move { done.then_some(()) }
    })
    .await;
    // Each event ran once: no subscriber got its replies twice.
    let sent = fake.sent_messages();
    for psid in &psids {
        let count = sent.iter().filter(|m| &m.psid == psid).count();
        assert_eq!(count, 2, "{psid} got {count} messages");
    }
}
