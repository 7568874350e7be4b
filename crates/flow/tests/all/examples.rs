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

#[test]
fn restock_graph_has_typed_edges() {
    use botflow_flow::{EdgeKind, FlowGraph};
    let text = std::fs::read_to_string(workspace_root().join("flows/restock.json")).unwrap();
    let document = parse_flow(&text).unwrap();
    let graph = FlowGraph::build(&document);
    assert_eq!(graph.start().map(|n| n.index()), Some(0));
    assert!(graph.dangling().is_empty());
    let mut edges: Vec<(usize, usize, EdgeKind, bool)> = (0..document.blocks.len())
        .flat_map(|from| {
            graph
                .edges_from(from)
                .map(move |(to, edge)| (from, to, edge.kind, edge.after_input))
        })
        .collect();
    edges.sort_by_key(|(from, to, _, _)| (*from, *to));
    assert_eq!(
        edges,
        [
            (0, 1, EdgeKind::OnOptin { message: 1 }, true),
            (
                0,
                2,
                EdgeKind::Button {
                    message: 0,
                    button: 0
                },
                true
            ),
            (
                2,
                3,
                EdgeKind::QuickReply {
                    message: 0,
                    reply: 0
                },
                true
            ),
        ]
    );
}

#[test]
fn lead_capture_graph_marks_replies_and_timeouts() {
    use botflow_flow::{EdgeKind, FlowGraph};
    let text = std::fs::read_to_string(workspace_root().join("flows/lead-capture.json")).unwrap();
    let document = parse_flow(&text).unwrap();
    let graph = FlowGraph::build(&document);
    let ask_email = document
        .blocks
        .iter()
        .position(|b| b.id.as_str() == "ask_email")
        .unwrap();
    let mut out: Vec<(String, EdgeKind, bool, u64)> = graph
        .edges_from(ask_email)
        .map(|(to, e)| {
            (
                document.blocks[to].id.to_string(),
                e.kind,
                e.after_input,
                e.wait_secs,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out,
        [
            ("ask_budget".to_owned(), EdgeKind::Next, true, 0),
            ("give_up".to_owned(), EdgeKind::InvalidInput, true, 0),
            ("nudge".to_owned(), EdgeKind::Timeout, false, 7_200),
        ]
    );
}
