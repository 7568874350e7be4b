//! Every fixture in `test_data/webhooks/*.json` parsed and compared with its `.expected` file
//! (rewrite with `UPDATE_EXPECT=1`).

use crate::support::test_data;
use botflow_messenger::{EventKind, WebhookError, parse_webhook};
use expect_test::expect_file;
use serde_json::json;

/// The one caller of the parser in this suite: the parsed body, its dedup keys and interactions.
fn check(body: &[u8]) -> String {
    let parsed = parse_webhook(body).unwrap();
    let dedup_keys: Vec<String> = parsed.events().map(|event| event.dedup_key()).collect();
    let interactions: Vec<bool> = parsed
        .events()
        .map(|event| event.is_user_interaction())
        .collect();
    let report =
        json!({ "parsed": parsed, "dedup_keys": dedup_keys, "user_interactions": interactions });
    serde_json::to_string_pretty(&report).unwrap() + "\n"
}

#[test]
fn fixtures_parse_as_expected() {
    let mut fixtures: Vec<_> = std::fs::read_dir(test_data("webhooks"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 12, "fixtures missing: {fixtures:?}");
    for fixture in fixtures {
        let body = std::fs::read(&fixture).unwrap();
        expect_file![fixture.with_extension("expected")].assert_eq(&check(&body));
    }
}

fn kinds_of(fixture: &str) -> Vec<EventKind> {
    let body = std::fs::read(test_data("webhooks").join(fixture)).unwrap();
    parse_webhook(&body)
        .unwrap()
        .into_events()
        .into_iter()
        .map(|event| event.kind)
        .collect()
}

#[test]
fn every_event_kind_has_a_fixture() {
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(test_data("webhooks")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "json") {
            for kind in kinds_of(path.file_name().unwrap().to_str().unwrap()) {
                let name = match kind {
                    EventKind::Message {
                        quick_reply_payload: Some(_),
                        ..
                    } => "quick_reply",
                    EventKind::Message {
                        ref attachments, ..
                    } if !attachments.is_empty() => "attachments",
                    EventKind::Message { .. } => "message",
                    EventKind::Echo { .. } => "echo",
                    EventKind::Postback {
                        referral: Some(_), ..
                    } => "postback_with_referral",
                    EventKind::Postback { .. } => "postback",
                    EventKind::Referral(_) => "referral",
                    EventKind::OtnOptin { .. } => "otn_optin",
                    EventKind::RecurringOptin { status: None, .. } => "recurring_optin",
                    EventKind::RecurringOptin {
                        status: Some(_), ..
                    } => "recurring_status",
                    EventKind::Delivery { .. } => "delivery",
                    EventKind::Read { .. } => "read",
                    EventKind::Unknown(_) => "unknown",
                };
                seen.insert(name);
            }
        }
    }
    let all = [
        "attachments",
        "delivery",
        "echo",
        "message",
        "otn_optin",
        "postback",
        "postback_with_referral",
        "quick_reply",
        "read",
        "recurring_optin",
        "recurring_status",
        "referral",
        "unknown",
    ];
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), all);
}

#[test]
fn otn_optin_exposes_payload_and_token_and_dedups_on_the_token() {
    let body = std::fs::read(test_data("webhooks/otn_optin.json")).unwrap();
    let parsed = parse_webhook(&body).unwrap();
    let event = parsed.events().next().unwrap();
    assert_eq!(event.sender.as_str(), "7300000000000001");
    assert_eq!(event.recipient.as_str(), "104000000000001");
    assert_eq!(event.timestamp_ms, 1764072499000);
    assert_eq!(
        event.kind,
        EventKind::OtnOptin {
            payload: "bf1:otn:topic-red-sneakers:restock:3:welcome".into(),
            token: "6714980495293374123".into(),
        }
    );
    assert_eq!(event.dedup_key(), "otn:6714980495293374123");
}

#[test]
fn hashed_dedup_keys_survive_key_reordering_and_tell_events_apart() {
    let original = br#"{"object":"page","entry":[{"id":"1","time":5,"messaging":[
        {"sender":{"id":"u"},"recipient":{"id":"1"},"timestamp":9,"read":{"watermark":7}}]}]}"#;
    let reordered = br#"{"entry":[{"messaging":[
        {"read":{"watermark":7},"timestamp":9,"recipient":{"id":"1"},"sender":{"id":"u"}}],"time":5,"id":"1"}],"object":"page"}"#;
    let later = br#"{"object":"page","entry":[{"id":"1","time":5,"messaging":[
        {"sender":{"id":"u"},"recipient":{"id":"1"},"timestamp":9,"read":{"watermark":8}}]}]}"#;
    let key = |body: &[u8]| {
        parse_webhook(body)
            .unwrap()
            .events()
            .next()
            .unwrap()
            .dedup_key()
    };
    assert!(key(original).starts_with("sha256:"));
    assert_eq!(key(original), key(reordered));
    assert_ne!(key(original), key(later));
    // Unknown events hash their raw JSON, whatever its key order.
    let unknown_a = br#"{"object":"page","entry":[{"messaging":[{"sender":{"id":"u"},"recipient":{"id":"1"},"x":{"a":1,"b":2}}]}]}"#;
    let unknown_b = br#"{"object":"page","entry":[{"messaging":[{"x":{"b":2,"a":1},"recipient":{"id":"1"},"sender":{"id":"u"}}]}]}"#;
    assert_eq!(key(unknown_a), key(unknown_b));
}

#[test]
fn envelope_errors_are_reported() {
    assert!(matches!(
        parse_webhook(b"{not json"),
        Err(WebhookError::NotJson(_))
    ));
    assert!(matches!(
        parse_webhook(b"[1,2]"),
        Err(WebhookError::NotAnObject)
    ));
    assert!(matches!(
        parse_webhook(br#"{"entry":[]}"#),
        Err(WebhookError::MissingObject)
    ));
    assert!(matches!(
        parse_webhook(br#"{"object":"page"}"#),
        Err(WebhookError::MissingEntries)
    ));
    assert!(matches!(
        parse_webhook(br#"{"object":"page","entry":{}}"#),
        Err(WebhookError::MissingEntries)
    ));
    let empty = parse_webhook(br#"{"object":"instagram","entry":[]}"#).unwrap();
    assert!(!empty.is_page());
    assert_eq!(empty.events().count(), 0);
}

#[test]
fn parsed_events_round_trip_through_serde() {
    for fixture in [
        "text_message.json",
        "recurring_optin.json",
        "unknown_and_odd.json",
    ] {
        let body = std::fs::read(test_data("webhooks").join(fixture)).unwrap();
        let parsed = parse_webhook(&body).unwrap();
        let stored = serde_json::to_string(&parsed).unwrap();
        let restored: botflow_messenger::WebhookBody = serde_json::from_str(&stored).unwrap();
        assert_eq!(restored, parsed, "{fixture}");
    }
}
