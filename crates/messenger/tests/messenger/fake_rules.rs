//! The fake Graph API's platform rules: one-time tokens, the 24-hour window, unavailable people.

use crate::support::{client_for, fast_retry};
use botflow_messenger::fake::{FakeGraphApi, FakeOptions, Fault, TOKEN_ERROR_SUBCODE};
use botflow_messenger::{OutgoingMessage, SendError, SendRequest};
use std::time::{Duration, SystemTime};

const TIMEOUT: Duration = Duration::from_secs(5);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn text(text: &str) -> OutgoingMessage {
    OutgoingMessage::Text { text: text.into() }
}

#[tokio::test]
async fn a_one_time_token_pays_for_exactly_one_message() {
    let fake = FakeGraphApi::start().await;
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let token = fake.issue_otn_token("u1");
    let request = SendRequest::to_otn_token(&token, text("Back in stock!"));
    let ok = client.send(&request).await.unwrap();
    assert_eq!(ok.recipient_id.as_deref(), Some("u1"));
    let sent = fake.sent_messages();
    assert_eq!(sent[0].token.as_deref(), Some(token.as_str()));
    assert_eq!(sent[0].psid, "u1");

    let error = client.send(&request).await.unwrap_err();
    assert!(matches!(error, SendError::TokenUnusable(_)), "{error:?}");
    let detail = error.detail().unwrap();
    assert_eq!(
        (detail.code, detail.subcode),
        (Some(100), Some(TOKEN_ERROR_SUBCODE))
    );
    assert!(
        detail.message.contains("already been used"),
        "{}",
        detail.message
    );
    assert_eq!(error.attempts(), 1);
    assert_eq!(fake.sent_messages().len(), 1);
}

#[tokio::test]
async fn unknown_and_expired_tokens_are_refused() {
    let fake = FakeGraphApi::start().await;
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let unknown = client
        .send(&SendRequest::to_otn_token("nope", text("x")))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, SendError::TokenUnusable(_)),
        "{unknown:?}"
    );
    assert!(unknown.detail().unwrap().message.contains("invalid"));

    fake.register_otn_token("old", "u1", SystemTime::now() - Duration::from_secs(1));
    let expired = client
        .send(&SendRequest::to_otn_token("old", text("x")))
        .await
        .unwrap_err();
    assert!(
        matches!(expired, SendError::TokenUnusable(_)),
        "{expired:?}"
    );
    assert!(expired.detail().unwrap().message.contains("expired"));

    fake.register_otn_token("fresh", "u2", SystemTime::now() + DAY);
    client
        .send(&SendRequest::to_otn_token("fresh", text("x")))
        .await
        .unwrap();
    assert!(fake.token("fresh").unwrap().used);
    assert!(!fake.token("old").unwrap().used);
}

#[tokio::test]
async fn recurring_tokens_pay_for_many_messages() {
    let fake = FakeGraphApi::start().await;
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    fake.register_notification_token("rn-1", "u1");
    for _ in 0..3 {
        client
            .send(&SendRequest::to_notification_token("rn-1", text("deal")))
            .await
            .unwrap();
    }
    assert_eq!(fake.sent_messages().len(), 3);
}

#[tokio::test]
async fn the_24_hour_window_is_enforced_for_response_and_update() {
    let fake = FakeGraphApi::start().await;
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let now = SystemTime::now();
    fake.set_last_interaction("recent", now - Duration::from_secs(3600));
    fake.set_last_interaction("stale", now - DAY - Duration::from_secs(60));

    client
        .send(&SendRequest::update("recent", text("hi")))
        .await
        .unwrap();
    for request in [
        SendRequest::response("stale", text("hi")),
        SendRequest::update("stale", text("hi")),
    ] {
        let error = client.send(&request).await.unwrap_err();
        assert!(matches!(error, SendError::OutsideWindow(_)), "{error:?}");
        let detail = error.detail().unwrap();
        assert_eq!((detail.code, detail.subcode), (Some(10), Some(2018278)));
        assert_eq!(error.attempts(), 1);
    }
    // A tagged message and a token are allowed outside the window.
    client
        .send(&SendRequest::tagged("stale", "HUMAN_AGENT", text("agent")))
        .await
        .unwrap();
    let token = fake.issue_otn_token("stale");
    client
        .send(&SendRequest::to_otn_token(token, text("notify")))
        .await
        .unwrap();
    assert_eq!(fake.sent_messages().len(), 3);
}

#[tokio::test]
async fn strict_window_refuses_people_never_seen() {
    let fake = FakeGraphApi::try_start(FakeOptions {
        strict_window: true,
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let error = client
        .send(&SendRequest::response("stranger", text("hi")))
        .await
        .unwrap_err();
    assert!(matches!(error, SendError::OutsideWindow(_)), "{error:?}");
}

#[tokio::test]
async fn unavailable_people_and_bad_bodies_are_refused() {
    let fake = FakeGraphApi::start().await;
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    fake.set_unavailable("gone");
    let error = client
        .send(&SendRequest::response("gone", text("hi")))
        .await
        .unwrap_err();
    assert!(matches!(error, SendError::UserUnavailable(_)), "{error:?}");
    assert_eq!(error.detail().unwrap().code, Some(551));

    let no_type = serde_json::json!({"recipient": {"id": "u1"}, "message": {"text": "hi"}});
    let error = client.send_json(&no_type).await.unwrap_err();
    assert!(matches!(error, SendError::InvalidRequest(_)), "{error:?}");
    assert!(error.detail().unwrap().message.contains("messaging_type"));
}

#[tokio::test]
async fn faults_apply_to_the_given_number_of_calls_in_order() {
    let fake = FakeGraphApi::start().await;
    fake.inject(Fault::Status(503), 2);
    fake.inject(
        Fault::GraphError {
            status: 400,
            code: 1200,
            subcode: None,
            message: "Temporary send message failure".into(),
        },
        1,
    );
    let client = client_for(&fake, TIMEOUT, fast_retry(5));
    let ok = client
        .send(&SendRequest::response("u1", text("hi")))
        .await
        .unwrap();
    assert_eq!(ok.attempts, 4);
    // Used up: the next send goes through at once.
    let ok = client
        .send(&SendRequest::response("u1", text("again")))
        .await
        .unwrap();
    assert_eq!(ok.attempts, 1);
}

#[tokio::test]
async fn wait_for_requests_reports_a_timeout_with_counts() {
    let fake = FakeGraphApi::start().await;
    let error = fake
        .wait_for_requests(1, Duration::from_millis(30))
        .await
        .unwrap_err();
    assert_eq!((error.expected, error.received), (1, 0));
}
