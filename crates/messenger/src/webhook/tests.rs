//! Tests of the webhook parser: the fast path agrees with the `Value` path on odd inputs.

use super::*;
use proptest::prelude::*;
use serde_json::json;

const KEYS: &[&str] = &[
    "id",
    "mid",
    "text",
    "is_echo",
    "app_id",
    "metadata",
    "quick_reply",
    "attachments",
    "payload",
    "title",
    "referral",
    "ref",
    "source",
    "type",
    "ad_id",
    "one_time_notif_token",
    "notification_messages_token",
    "notification_messages_frequency",
    "notification_messages_status",
    "token_expiry_timestamp",
    "user_token_status",
    "mids",
    "watermark",
    "url",
];
const EVENT_KEYS: &[&str] = &[
    "sender",
    "recipient",
    "timestamp",
    "message",
    "postback",
    "optin",
    "referral",
    "delivery",
    "read",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("s")),
        Just(json!("one_time_notif_req")),
        Just(json!("notification_messages")),
        Just(json!("WEEKLY")),
        Just(json!(7)),
        Just(json!(-1)),
        Just(json!(1.5)),
        Just(json!(true)),
        Just(json!(null)),
        Just(json!([])),
        Just(json!(["m1", 2])),
        Just(json!({})),
        Just(json!({"id": "u", "payload": "p", "url": "http://x", "type": "image"})),
        Just(json!([{"type": "image", "payload": {"url": "http://x"}}, {"payload": null}])),
    ]
}

fn shaped_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..7).prop_map(|map| {
                Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// One fully populated event of every kind.
fn templates() -> Vec<Value> {
    let ids = |extra: Value| {
        let mut event = json!({"sender": {"id": "u"}, "recipient": {"id": "p"}, "timestamp": 9});
        if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
            event.extend(extra);
        }
        event
    };
    vec![
        ids(
            json!({"message": {"mid": "m1", "text": "hi", "quick_reply": {"payload": "q"},
            "attachments": [{"type": "image", "payload": {"url": "http://x"}}, {"type": "location", "payload": {"coordinates": {}}}]}}),
        ),
        ids(
            json!({"message": {"mid": "m2", "is_echo": true, "app_id": 5, "metadata": "md", "text": "echo"}}),
        ),
        ids(
            json!({"postback": {"mid": "m3", "title": "T", "payload": "P",
            "referral": {"ref": "r", "source": "SHORTLINK", "type": "OPEN_THREAD", "ad_id": "a"}}}),
        ),
        ids(json!({"referral": {"ref": "r", "source": "ADS", "type": "OPEN_THREAD"}})),
        ids(
            json!({"optin": {"type": "one_time_notif_req", "payload": "p", "one_time_notif_token": "t"}}),
        ),
        ids(
            json!({"optin": {"type": "notification_messages", "payload": "p", "title": "T",
            "notification_messages_token": "t", "notification_messages_frequency": "WEEKLY",
            "notification_messages_timezone": "UTC", "token_expiry_timestamp": 5,
            "user_token_status": "REFRESHED", "notification_messages_status": "STOP_NOTIFICATIONS"}}),
        ),
        ids(json!({"delivery": {"mids": ["m1", "m2"], "watermark": 4}})),
        ids(json!({"read": {"watermark": 4}})),
    ]
}

/// Every JSON Pointer to an object inside `value`, `value` itself first.
fn object_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(at.clone());
            for (key, inner) in map {
                object_pointers(inner, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                object_pointers(inner, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// A valid event of a random kind with up to three random edits (set a key to an odd value,
/// or remove it) anywhere inside it.
fn event() -> impl Strategy<Value = Value> {
    let edit = (
        any::<prop::sample::Index>(),
        prop::sample::select([KEYS, EVENT_KEYS].concat()),
        prop::option::of(leaf()),
    );
    (0..templates().len(), prop::collection::vec(edit, 0..4)).prop_map(|(index, edits)| {
        let mut event = templates()[index].clone();
        for (place, key, new_value) in edits {
            let mut pointers = Vec::new();
            object_pointers(&event, String::new(), &mut pointers);
            let pointer = place.get(&pointers).clone();
            if let Some(Value::Object(map)) = event.pointer_mut(&pointer) {
                match new_value {
                    Some(value) => {
                        map.insert(key.to_owned(), value);
                    }
                    None => {
                        map.remove(key);
                    }
                }
            }
        }
        event
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The fast typed path and the reference `Value` path agree on every body.
    #[test]
    fn fast_path_agrees_with_value_path(
        events in prop::collection::vec(event(), 0..6),
        entry_extra in shaped_value(),
        as_array in any::<bool>(),
    ) {
        let entry = json!({"id": "p", "time": 1, "messaging": events, "extra": entry_extra});
        let body = if as_array {
            json!(["page", [entry]])
        } else {
            json!({"object": "page", "entry": [entry, entry_extra]})
        };
        let bytes = serde_json::to_vec(&body).unwrap();
        let fast = parse_webhook(&bytes);
        let reference = parse_webhook_value(&bytes);
        match (fast, reference) {
            (Ok(fast), Ok(reference)) => prop_assert_eq!(fast, reference),
            (Err(fast), Err(reference)) => prop_assert_eq!(fast.to_string(), reference.to_string()),
            (fast, reference) => prop_assert!(false, "fast {:?} vs reference {:?}", fast, reference),
        }
    }
}

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
fn a_null_postback_referral_is_no_referral_on_both_paths() {
    let body = br#"{"object":"page","entry":[{"id":"p","time":1,"messaging":[{"sender":{"id":"u"},"recipient":{"id":"p"},"timestamp":9,"postback":{"mid":"m3","title":"T","payload":"P","referral":null}}]}]}"#;
    for parsed in [
        parse_webhook(body).unwrap(),
        parse_webhook_value(body).unwrap(),
    ] {
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
