//! The example flows in `flows/`: each validates clean and survives parse → serialize → parse.

use crate::support::{json_files, workspace_root};
use botflow_flow::{ValidFlow, check_text, parse_flow};

#[test]
fn example_flows_are_clean_and_round_trip() {
    let files = json_files(&workspace_root().join("flows"));
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["lead-capture.json", "restock-notify.json", "restock.json"] {
        assert!(
            names.iter().any(|n| n == expected),
            "flows/{expected} missing"
        );
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let report = check_text(&text);
        assert_eq!(report.diagnostics, [], "{}", path.display());
        let document = report.document.unwrap();
        let written = serde_json::to_string_pretty(&document).unwrap();
        let again = parse_flow(&written).unwrap();
        assert_eq!(again, document, "{} does not round-trip", path.display());
        // Builder data (`position`, `ui`) is kept.
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rewritten: serde_json::Value = serde_json::from_str(&written).unwrap();
        for (i, block) in original["blocks"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                block.get("position"),
                rewritten["blocks"][i].get("position")
            );
        }
        ValidFlow::new(document).unwrap();
    }
}

#[test]
fn restock_example_is_the_product_brief_example_plus_the_missing_block() {
    let text = std::fs::read_to_string(workspace_root().join("flows/restock.json")).unwrap();
    let flow = ValidFlow::new(parse_flow(&text).unwrap()).unwrap();
    let ids: Vec<&str> = flow
        .document()
        .blocks
        .iter()
        .map(|b| b.id.as_str())
        .collect();
    assert_eq!(ids, ["welcome", "thanks", "colours", "blue"]);
    assert_eq!(flow.start().unwrap().id.as_str(), "welcome");
}
