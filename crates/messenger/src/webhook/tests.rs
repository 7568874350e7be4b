//! Unit tests of the webhook parser on odd inputs: values of the wrong type, duplicate keys,
//! arrays where objects are expected.

use super::*;

#[test]
fn arrays_are_not_read_as_structs() {
    let body = br#"{"object":"page","entry":[{"messaging":[{"sender":["u"],"recipient":{"id":"p"},"read":{"watermark":1}}]}]}"#;
    let parsed = parse_webhook(body).unwrap();
    assert!(matches!(
        parsed.entries[0].messaging[0].kind,
        EventKind::Unknown(_)
    ));
    assert!(matches!(
        parse_webhook(br#"["page", []]"#),
        Err(WebhookError::NotAnObject)
    ));
}

#[test]
fn a_null_postback_referral_is_no_referral() {
    let body = br#"{"object":"page","entry":[{"id":"p","time":1,"messaging":[{"sender":{"id":"u"},"recipient":{"id":"p"},"timestamp":9,"postback":{"mid":"m3","title":"T","payload":"P","referral":null}}]}]}"#;
    for parsed in [parse_webhook(body).unwrap()] {
        match &parsed.entries[0].messaging[0].kind {
            EventKind::Postback {
                payload, referral, ..
            } => {
                assert_eq!(payload, "P");
                assert_eq!(referral, &None);
            }
            other => panic!("expected a postback, got {other:?}"),
        }
    }
}

/// The one event of `messaging` in a page delivery.
fn only_event(event: &str) -> MessagingEvent {
    let body = format!(r#"{{"object":"page","entry":[{{"id":"p","messaging":[{event}]}}]}}"#);
    let mut events = parse_webhook(body.as_bytes()).unwrap().into_events();
    assert_eq!(events.len(), 1, "{event}");
    events.remove(0)
}

#[test]
fn a_duplicate_key_keeps_its_last_value() {
    let event = only_event(
        r#"{"sender":{"id":"u"},"sender":{"id":"v"},"recipient":{"id":"p"},"message":{"mid":"a","mid":"b"}}"#,
    );
    assert_eq!(event.sender.as_str(), "v");
    assert!(matches!(event.kind, EventKind::Message { ref mid, .. } if mid == "b"));
    let body = br#"{"object":5,"object":"page","entry":7,"entry":[]}"#;
    assert_eq!(parse_webhook(body).unwrap().object, "page");
}

#[test]
fn values_of_the_wrong_type_count_as_absent() {
    let event = only_event(
        r#"{"sender":{"id":42},"recipient":{"id":"p"},"timestamp":"9","message":{"mid":"m","text":7,"quick_reply":[1],
            "attachments":[{"type":"image","payload":[1]},{"type":3},{"type":"file","payload":{"url":"u"}}]}}"#,
    );
    assert_eq!(event.sender.as_str(), "42");
    assert_eq!(event.timestamp_ms, 0);
    let EventKind::Message {
        text,
        quick_reply_payload,
        attachments,
        ..
    } = event.kind
    else {
        panic!("not a message: {:?}", event.kind);
    };
    assert_eq!((text, quick_reply_payload), (None, None));
    let kinds: Vec<_> = attachments
        .iter()
        .map(|a| (a.kind.as_str(), a.url.as_deref()))
        .collect();
    assert_eq!(kinds, [("image", None), ("file", Some("u"))]);
    // A required field of the wrong type makes the event unknown, kept as it was sent.
    let event =
        only_event(r#"{"sender":{"id":"u"},"recipient":{"id":"p"},"read":{"watermark":5.0}}"#);
    assert_eq!(
        event.kind,
        EventKind::Unknown(
            serde_json::json!({"sender":{"id":"u"},"recipient":{"id":"p"},"read":{"watermark":5.0}})
        )
    );
}
