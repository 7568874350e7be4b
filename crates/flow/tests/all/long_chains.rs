//! Long flows on small stacks: the server validates on worker threads with 2 MiB stacks, so no
//! rule may recurse once per block.

use serde_json::json;

#[test]
fn a_five_thousand_block_chain_validates_on_a_two_mib_stack() {
    let blocks: Vec<_> = (0..5_000)
        .map(|i| {
            json!({"id": format!("b{i}"), "type": "send_message", "next": format!("b{}", (i + 1) % 5_000),
                   "messages": [{"type": "text", "text": "hello"}]})
        })
        .collect();
    let text = json!({"format": 1, "id": "long", "name": "Long", "start": "b0", "blocks": blocks})
        .to_string();
    let report = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || botflow_flow::check_text(&text))
        .unwrap()
        .join()
        .expect("validation must not overflow the stack");
    // The chain closes into a loop that never waits for the subscriber.
    let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code.as_ref()).collect();
    assert_eq!(codes, ["endless-loop"], "{:?}", report.diagnostics);
}
