//! The server on PostgreSQL (`database_url` set): the restock story end to end, `/healthz`
//! reporting the database, and a database outage — webhooks answer 503 (Messenger redelivers),
//! `/healthz` answers 503, the error metric counts — after which the node recovers by itself.
//! Each test starts its own throwaway cluster (it stops it), see `botflow_storage::pg_test`.

use crate::support::{PAGE_ID, TestServer, eventually, example_flow_text};
use botflow_server::delivery::{envelope, text_message};
use botflow_storage::pg_test::TestCluster;
use reqwest::StatusCode;

fn hello(psid: &str, mid: &str, seq: u64) -> String {
    envelope(
        PAGE_ID,
        seq,
        vec![text_message(PAGE_ID, psid, mid, "restock", seq)],
    )
    .to_string()
}

/// Waits until the fake Graph API got the restock flow's OTN request for `psid`.
async fn answered(server: &TestServer, psid: &str) {
    eventually("the OTN request", || async {
        server.fake.sent_messages().into_iter().find_map(|m| {
            m.message.pointer("/attachment/payload/payload")?;
            (m.psid == psid).then_some(())
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_the_node_recovers_by_itself() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let url = cluster.url();
    let server = TestServer::start_configured(
        vec![("restock.json".into(), example_flow_text("restock"))],
        |config| config.database_url = Some(url.clone()),
    )
    .await;

    let (status, health) = server.json(server.get("/healthz")).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["database"], "postgres");
    assert_eq!(health["status"], "ok");
    assert_eq!(
        server.webhook(&hello("7", "m-1", 1)).await.status(),
        StatusCode::OK
    );
    answered(&server, "7").await;
    assert_eq!(server.metric("botflow_database_errors_total").await, 0.0);

    let stopping = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    });
    let mut cluster = stopping.await.unwrap();
    let outage = hello("8", "m-2", 2);
    assert_eq!(
        server.webhook(&outage).await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a webhook the database cannot journal is refused, so Messenger redelivers it"
    );
    let (status, health) = server.json(server.get("/healthz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["status"], "unavailable");
    assert!(
        health["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{health}"
    );
    assert!(server.metric("botflow_database_errors_total").await >= 1.0);
    let (status, body) = server
        .json(server.get(&format!("/api/pages/{PAGE_ID}/topics")))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");

    let restarting = tokio::task::spawn_blocking(move || {
        cluster.restart();
        cluster
    });
    let _cluster = restarting.await.unwrap();
    eventually("/healthz to answer 200 again", || async {
        let response = server.get("/healthz").send().await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    // Messenger's redelivery of the refused webhook is journaled and processed now.
    assert_eq!(server.webhook(&outage).await.status(), StatusCode::OK);
    answered(&server, "8").await;
}
