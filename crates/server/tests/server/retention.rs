//! Retention in the running server: the background sweeper removes a processed event's dedup
//! record once the configured window has passed, counts it on `/metrics`, and the totals shown
//! there keep counting.

use crate::support::{TestServer, message_delivery};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_sweeper_removes_dedup_records_after_the_window_and_counts_them() {
    let server = TestServer::start_configured(Vec::new(), |config| {
        config.dedup_retention = "1s".parse().unwrap();
    })
    .await;
    let body = message_delivery("u1", "m-retained", "hello");
    let first = server.webhook(&body).await;
    assert_eq!(first.status(), StatusCode::OK);

    let sample = "botflow_retention_removed_total{kind=\"dedup_record\"}";
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.metric(sample).await < 1.0 {
        assert!(Instant::now() < deadline, "the sweeper removed nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the window the same delivery is a new event; the received total keeps counting.
    let again = server.webhook(&body).await;
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"received": 1, "duplicates": 0, "ignored": 0})
    );
    assert_eq!(server.metric("botflow_events_received_total").await, 2.0);
    assert_eq!(
        server
            .metric("botflow_retention_removed_total{kind=\"message\"}")
            .await,
        0.0
    );
}
