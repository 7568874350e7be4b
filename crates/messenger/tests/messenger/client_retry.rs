//! The client's retries and error classification against the fake Graph API.

use crate::support::{client_for, fast_retry};
use botflow_messenger::fake::{FakeGraphApi, FakeOptions, Fault};
use botflow_messenger::{OutgoingMessage, RetryPolicy, SendError, SendRequest};
use std::time::{Duration, SystemTime};

const TIMEOUT: Duration = Duration::from_secs(5);

fn hello(psid: &str) -> SendRequest {
    SendRequest::response(
        psid,
        OutgoingMessage::Text {
            text: "hello".into(),
        },
    )
}

#[tokio::test]
async fn success_posts_to_the_versioned_messages_url_with_the_token() {
    let fake = FakeGraphApi::start().await;
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let ok = client.send(&hello("u1")).await.unwrap();
    assert_eq!(ok.attempts, 1);
    assert_eq!(ok.recipient_id.as_deref(), Some("u1"));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v23.0/me/messages");
    assert_eq!(
        requests[0].query.get("access_token").map(String::as_str),
        Some("page-token")
    );
    assert_eq!(requests[0].body, hello("u1").to_json());
    let sent = fake.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message_id, ok.message_id);
    assert_eq!(sent[0].text(), Some("hello"));
}

#[tokio::test]
async fn service_unavailable_then_success_is_retried() {
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::Status(503), 1);
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let ok = client.send(&hello("u1")).await.unwrap();
    assert_eq!(ok.attempts, 2);
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.sent_messages().len(), 1);
}

#[tokio::test]
async fn server_errors_exhaust_the_attempts() {
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::Status(500), 10);
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let error = client.send(&hello("u1")).await.unwrap_err();
    assert!(matches!(error, SendError::Server(_)), "{error:?}");
    assert_eq!(error.attempts(), 3);
    assert_eq!(error.detail().unwrap().code, Some(1));
    assert_eq!(error.detail().unwrap().http_status, Some(500));
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn http_429_is_retried_with_exponential_backoff() {
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::Status(429), 2);
    let retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(40),
        max_delay: Duration::from_millis(500),
    };
    let client = client_for(&fake, TIMEOUT, retry);
    let ok = client.send(&hello("u1")).await.unwrap();
    assert_eq!(ok.attempts, 3);
    let times: Vec<SystemTime> = fake.requests().iter().map(|r| r.received_at).collect();
    let first_gap = times[1].duration_since(times[0]).unwrap();
    let second_gap = times[2].duration_since(times[1]).unwrap();
    // Equal jitter: the n-th delay lies in [base * 2^(n-1) / 2, base * 2^(n-1)].
    assert!(first_gap >= Duration::from_millis(20), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(40), "{second_gap:?}");
}

#[tokio::test]
async fn throttling_code_613_honours_retry_after() {
    let fake = FakeGraphApi::start().await;
    fake.inject(
        Fault::Throttle {
            code: 613,
            retry_after: Some(Duration::from_millis(150)),
        },
        1,
    );
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let ok = client.send(&hello("u1")).await.unwrap();
    assert_eq!(ok.attempts, 2);
    let requests = fake.requests();
    let gap = requests[1]
        .received_at
        .duration_since(requests[0].received_at)
        .unwrap();
    assert!(gap >= Duration::from_millis(150), "retried after {gap:?}");
}

#[tokio::test]
async fn retry_after_beyond_the_cap_is_returned_to_the_caller() {
    let fake = FakeGraphApi::start().await;
    fake.inject(
        Fault::Throttle {
            code: 4,
            retry_after: Some(Duration::from_secs(30)),
        },
        1,
    );
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let error = client.send(&hello("u1")).await.unwrap_err();
    match &error {
        SendError::Throttled {
            detail,
            retry_after,
        } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(30)));
            assert_eq!(detail.code, Some(4));
            assert_eq!(detail.http_status, Some(400));
        }
        other => panic!("expected throttled, got {other:?}"),
    }
    assert!(error.is_retryable());
    assert_eq!(error.attempts(), 1);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn permanent_400_is_not_retried() {
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::Status(400), 3);
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let error = client.send(&hello("u1")).await.unwrap_err();
    assert!(matches!(error, SendError::InvalidRequest(_)), "{error:?}");
    assert!(error.is_permanent());
    assert_eq!(error.attempts(), 1);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::Delay(Duration::from_millis(400)), 3);
    let client = client_for(&fake, Duration::from_millis(80), fast_retry(3));
    let error = client.send(&hello("u1")).await.unwrap_err();
    assert!(matches!(error, SendError::Timeout(_)), "{error:?}");
    assert_eq!(error.attempts(), 3);
    assert!(error.may_have_been_delivered());
    fake.wait_for_requests(3, Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_timed_out_psid_send_is_at_least_once() {
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::Delay(Duration::from_millis(300)), 1);
    let client = client_for(&fake, Duration::from_millis(100), fast_retry(3));
    let ok = client.send(&hello("u1")).await.unwrap();
    assert_eq!(ok.attempts, 2);
    // The delayed first attempt is still handled by the platform: the person gets it twice.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fake.sent_messages().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(fake.sent_messages().len(), 2);
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::DropConnection, 1);
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let ok = client.send(&hello("u1")).await.unwrap();
    assert_eq!(ok.attempts, 2);
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.sent_messages().len(), 1);
}

#[tokio::test]
async fn dropped_connections_end_as_network_errors() {
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::DropConnection, 5);
    let client = client_for(&fake, TIMEOUT, fast_retry(2));
    let error = client.send(&hello("u1")).await.unwrap_err();
    assert!(matches!(error, SendError::Network(_)), "{error:?}");
    assert_eq!(error.attempts(), 2);
    assert!(
        !error.detail().unwrap().message.contains("page-token"),
        "token leaked: {error}"
    );
}

#[tokio::test]
async fn refused_connections_were_never_delivered() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let client = botflow_messenger::SendClient::new(botflow_messenger::ClientConfig {
        graph_base_url: format!("http://127.0.0.1:{port}"),
        timeout: TIMEOUT,
        retry: fast_retry(2),
        ..botflow_messenger::ClientConfig::new("page-token")
    })
    .unwrap();
    let error = client.send(&hello("u1")).await.unwrap_err();
    assert!(matches!(error, SendError::Network(_)), "{error:?}");
    assert_eq!(error.attempts(), 2);
    assert!(!error.may_have_been_delivered());
}

#[tokio::test]
async fn a_throttle_after_a_timeout_still_says_the_message_may_be_delivered() {
    let fake = FakeGraphApi::start().await;
    let token = fake.issue_otn_token("u1");
    fake.inject(Fault::Delay(Duration::from_millis(300)), 1);
    fake.inject(
        Fault::Throttle {
            code: 613,
            retry_after: Some(Duration::from_secs(60)),
        },
        1,
    );
    let client = client_for(&fake, Duration::from_millis(100), fast_retry(3));
    let request = SendRequest::to_otn_token(
        &token,
        OutgoingMessage::Text {
            text: "Back!".into(),
        },
    );
    let error = client.send(&request).await.unwrap_err();
    assert!(matches!(error, SendError::Throttled { .. }), "{error:?}");
    assert_eq!(error.attempts(), 2);
    assert!(error.may_have_been_delivered());
}

#[tokio::test]
async fn token_send_that_timed_out_then_finds_its_token_used_is_delivered_unconfirmed() {
    let fake = FakeGraphApi::start().await;
    let token = fake.issue_otn_token("u1");
    fake.inject(Fault::Delay(Duration::from_millis(250)), 1);
    // The retry comes at least 400 ms after the first attempt gave up at 150 ms, so the delayed
    // first attempt (handled at 250 ms) has spent the token by then.
    let retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(800),
        max_delay: Duration::from_secs(2),
    };
    let client = client_for(&fake, Duration::from_millis(150), retry);
    let request = SendRequest::to_otn_token(
        &token,
        OutgoingMessage::Text {
            text: "Back in stock!".into(),
        },
    );
    let error = client.send(&request).await.unwrap_err();
    assert!(
        matches!(error, SendError::DeliveredUnconfirmed(_)),
        "{error:?}"
    );
    assert!(error.may_have_been_delivered());
    assert!(error.is_permanent());
    assert_eq!(error.attempts(), 2);
    assert_eq!(fake.sent_messages().len(), 1, "delivered exactly once");
    assert!(fake.token(&token).unwrap().used);
}

#[tokio::test]
async fn token_send_after_a_throttle_that_finds_the_token_used_is_a_plain_token_error() {
    let fake = FakeGraphApi::start().await;
    let token = fake.issue_otn_token("u1");
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let request = SendRequest::to_otn_token(&token, OutgoingMessage::Text { text: "one".into() });
    client.send(&request).await.unwrap();
    // A throttled attempt was refused for sure, so a later "token used" is a real failure.
    fake.inject(
        Fault::Throttle {
            code: 613,
            retry_after: None,
        },
        1,
    );
    let error = client.send(&request).await.unwrap_err();
    assert!(matches!(error, SendError::TokenUnusable(_)), "{error:?}");
    assert_eq!(error.attempts(), 2);
}

#[tokio::test]
async fn auth_errors_are_not_retried() {
    let fake = FakeGraphApi::try_start(FakeOptions {
        access_token: Some("the-right-token".into()),
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let error = client.send(&hello("u1")).await.unwrap_err();
    assert!(matches!(error, SendError::Auth(_)), "{error:?}");
    assert_eq!(error.detail().unwrap().code, Some(190));
    assert!(error.detail().unwrap().fbtrace_id.is_some());
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn limits_are_checked_before_anything_is_sent() {
    let fake = FakeGraphApi::start().await;
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let request = SendRequest::response(
        "u1",
        OutgoingMessage::Text {
            text: "x".repeat(2001),
        },
    );
    let error = client.send(&request).await.unwrap_err();
    assert!(matches!(error, SendError::Limit(_)), "{error:?}");
    assert_eq!(error.attempts(), 0);
    assert_eq!(fake.requests().len(), 0);
    // The raw JSON path skips the check; the fake refuses like the platform.
    let error = client.send_json(&request.to_json()).await.unwrap_err();
    assert!(matches!(error, SendError::InvalidRequest(_)), "{error:?}");
    assert_eq!(error.detail().unwrap().code, Some(100));
}

#[tokio::test]
async fn many_concurrent_sends_share_the_pool() {
    let fake = FakeGraphApi::start().await;
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..64 {
        let client = client.clone();
        tasks.spawn(async move { client.send(&hello(&format!("u{index}"))).await });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(result) = tasks.join_next().await {
        ids.insert(result.unwrap().unwrap().message_id);
    }
    assert_eq!(ids.len(), 64);
    assert_eq!(fake.sent_messages().len(), 64);
}
