//! Property tests: the webhook parser is total and loses no events.

use botflow_messenger::{WebhookError, parse_webhook};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Whether `bytes` hold a usable envelope, decided independently of the parser.
fn is_usable_envelope(bytes: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => {
            matches!(map.get("object"), Some(Value::String(_)))
                && matches!(map.get("entry"), Some(Value::Array(_)))
        }
        _ => false,
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        "[a-z_]{0,8}".prop_map(Value::String),
        prop_oneof![
            Just("message"),
            Just("mid"),
            Just("optin"),
            Just("one_time_notif_req")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("sender".to_owned()),
                    Just("recipient".to_owned()),
                    Just("id".to_owned()),
                    Just("timestamp".to_owned()),
                    Just("message".to_owned()),
                    Just("mid".to_owned()),
                    Just("text".to_owned()),
                    Just("postback".to_owned()),
                    Just("payload".to_owned()),
                    Just("optin".to_owned()),
                    Just("type".to_owned()),
                    Just("one_time_notif_token".to_owned()),
                    Just("read".to_owned()),
                    Just("watermark".to_owned()),
                    Just("is_echo".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_parse_or_fail_as_the_envelope_says(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let result = parse_webhook(&bytes);
        prop_assert_eq!(result.is_ok(), is_usable_envelope(&bytes));
    }

    #[test]
    fn json_shaped_bodies_keep_every_event(events in prop::collection::vec(arb_json(), 0..8), extra in arb_json()) {
        let body = json!({"object": "page", "extra": extra, "entry": [{"id": "1", "time": 1, "messaging": events}]});
        let bytes = serde_json::to_vec(&body).unwrap();
        let parsed = parse_webhook(&bytes).unwrap();
        prop_assert_eq!(parsed.events().count(), events.len());
        for event in parsed.events() {
            prop_assert!(!event.dedup_key().is_empty());
        }
    }

    #[test]
    fn non_object_json_is_rejected(value in arb_json()) {
        prop_assume!(!value.is_object());
        let bytes = serde_json::to_vec(&value).unwrap();
        prop_assert!(matches!(parse_webhook(&bytes), Err(WebhookError::NotAnObject)));
    }
}
