//! Property tests: the validator never panics, and every diagnostic points at a value that
//! exists in the document, on arbitrary JSON and on randomly generated flow graphs.

use botflow_flow::{check_text, codes};
use proptest::prelude::*;
use serde_json::{Value, json};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("send_message"),
            Just("text"),
            Just("a"),
            Just("b"),
            Just("3d"),
            Just("{{x"),
            Just("otn_request"),
            Just("delay"),
            Just("wait_input"),
            Just("")
        ]
        .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("format".to_owned()),
                        Just("id".to_owned()),
                        Just("type".to_owned()),
                        Just("blocks".to_owned()),
                        Just("start".to_owned()),
                        Just("messages".to_owned()),
                        Just("next".to_owned()),
                        Just("name".to_owned()),
                        "[a-z~/]{1,6}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A random flow: `n` blocks of random kinds whose edges point at random blocks (or nowhere).
fn arbitrary_flow() -> impl Strategy<Value = Value> {
    (1usize..12).prop_flat_map(|n| {
        let block = (0u8..7, 0..n + 1, 0..n + 1, 0u32..60, any::<bool>());
        prop::collection::vec(block, n).prop_map(move |specs| {
            let id = |i: usize| format!("b{i}");
            let blocks: Vec<Value> = specs
                .iter()
                .enumerate()
                .map(|(i, &(kind, t1, t2, hours, with_next))| {
                    let mut block = match kind {
                        0 => json!({"type": "send_message", "messages": [{"type": "text", "text": "x", "buttons": [{"title": "go", "next": id(t1)}]}]}),
                        1 => json!({"type": "send_message", "messages": [{"type": "otn_request", "topic": {"name": "t"}, "title": "n", "on_optin": id(t1)}]}),
                        2 => json!({"type": "wait_input", "field": "f", "prompt": "?", "timeout": format!("{hours}h"), "on_timeout": id(t1), "on_invalid": id(t2)}),
                        3 => json!({"type": "condition", "branches": [{"when": [], "next": id(t1)}], "else": id(t2)}),
                        4 => json!({"type": "delay", "duration": format!("{hours}h")}),
                        5 => json!({"type": "otn_send", "topic": {"name": "t"}, "message": {"type": "text", "text": "x"}, "on_no_token": id(t1)}),
                        _ => json!({"type": "action", "actions": [{"type": "add_tag", "tag": "t"}]}),
                    };
                    block["id"] = Value::from(id(i));
                    if with_next {
                        block["next"] = Value::from(id(t2));
                    }
                    block
                })
                .collect();
            json!({"format": 1, "id": "p", "name": "P", "start": "b0", "blocks": blocks})
        })
    })
}

fn assert_pointers_resolve(value: &Value) -> Result<(), TestCaseError> {
    let text = value.to_string();
    let report = check_text(&text);
    for diagnostic in &report.diagnostics {
        prop_assert!(
            codes::severity_of(&diagnostic.code).is_some(),
            "unlisted code {}",
            diagnostic.code
        );
        prop_assert!(
            value.pointer(&diagnostic.pointer).is_some(),
            "{} points at nothing in {text}",
            diagnostic.pointer
        );
    }
    prop_assert_eq!(
        report.document.is_some() || !report.diagnostics.is_empty(),
        true
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_json_gets_diagnostics_that_point_into_it(value in arbitrary_json()) {
        assert_pointers_resolve(&value)?;
    }

    #[test]
    fn random_graphs_get_diagnostics_that_point_into_them(flow in arbitrary_flow()) {
        assert_pointers_resolve(&flow)?;
        // Structurally valid: only rule problems, and the document round-trips.
        let report = check_text(&flow.to_string());
        let document = report.document.expect("generated flows parse");
        let written = serde_json::to_string(&document).unwrap();
        prop_assert_eq!(botflow_flow::parse_flow(&written).unwrap(), document);
    }

    #[test]
    fn arbitrary_text_never_panics_and_bad_json_has_a_location(text in ".{0,64}") {
        let report = check_text(&text);
        if serde_json::from_str::<Value>(&text).is_err() {
            prop_assert_eq!(report.diagnostics.len(), 1);
            prop_assert!(report.diagnostics[0].location.is_some());
        }
    }
}
