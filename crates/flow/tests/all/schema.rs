//! `schemas/flow.schema.json` is generated from the model; this test keeps the file current
//! (rewrite it with `UPDATE_SCHEMA=1`) and checks what the schema promises.

use crate::support::{compare_with_file, workspace_root};
use botflow_flow::flow_schema;

#[test]
fn stored_schema_equals_the_generated_one() {
    let path = workspace_root().join("schemas/flow.schema.json");
    let generated = botflow_flow::flow_schema_text();
    if let Some(problem) = compare_with_file(&path, &generated, "UPDATE_SCHEMA") {
        panic!("{problem}");
    }
}

#[test]
fn schema_is_draft_2020_12_with_every_block_and_message_type() {
    let schema = flow_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let text = schema.to_string();
    for name in botflow_flow::BLOCK_TYPES
        .iter()
        .chain(&botflow_flow::MESSAGE_TYPES)
    {
        assert!(
            text.contains(&format!("\"const\":\"{name}\"")),
            "`{name}` missing from the schema"
        );
    }
    for field in ["format", "id", "name", "start", "blocks"] {
        let required = schema["required"].as_array().unwrap();
        assert!(
            required.iter().any(|r| r == field),
            "`{field}` not required"
        );
    }
    assert!(schema["description"].is_string() || schema["title"].is_string());
}
