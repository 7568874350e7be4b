//! Step function throughput: events per second through a 10-block flow (target > 500,000/s).
//!
//! A conversation of three events (keyword, e-mail reply, quick-reply tap) runs all ten blocks:
//! send_message, condition, action, wait_input, condition, action, send_message (quick replies),
//! action, delay-free send_message, action. Run with `cargo bench -p botflow-runtime --bench step`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use botflow_flow::{FlowDocument, ValidFlow};
use botflow_runtime::{InboundEvent, PublishedFlows, StepContext, step};
use botflow_storage::{PageId, Psid, Session};
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

fn ten_block_flow() -> ValidFlow {
    let doc: FlowDocument = serde_json::from_value(json!({
        "format": 1, "id": "bench", "name": "Bench",
        "triggers": [{"type": "keyword", "words": ["start"]}],
        "start": "hello",
        "blocks": [
            {"id": "hello", "type": "send_message", "messages": [{"type": "text", "text": "Hi {{first_name}}!"}], "next": "known"},
            {"id": "known", "type": "condition", "branches": [
                {"when": [{"type": "field", "field": "email", "op": "is_set"}], "next": "tag_returning"}], "else": "tag_new"},
            {"id": "tag_new", "type": "action", "actions": [{"type": "add_tag", "tag": "new"}], "next": "ask"},
            {"id": "tag_returning", "type": "action", "actions": [{"type": "add_tag", "tag": "returning"}], "next": "ask"},
            {"id": "ask", "type": "wait_input", "field": "email", "input": "email", "prompt": "Your e-mail?", "next": "check"},
            {"id": "check", "type": "condition", "branches": [
                {"when": [{"type": "field", "field": "email", "op": "contains", "value": "@example."}], "next": "save"}], "else": "save"},
            {"id": "save", "type": "action", "actions": [{"type": "set_field", "field": "status", "value": "lead {{email}}"}], "next": "pick"},
            {"id": "pick", "type": "send_message", "messages": [{"type": "text", "text": "Pick a colour",
                "quick_replies": [{"title": "Red", "next": "red"}, {"title": "Blue", "next": "red"}]}]},
            {"id": "red", "type": "send_message", "messages": [{"type": "text", "text": "Red it is, {{first_name}}."}], "next": "done"},
            {"id": "done", "type": "action", "actions": [{"type": "clear_field", "field": "email"}, {"type": "remove_tag", "tag": "new"}]}
        ]
    }))
    .unwrap();
    ValidFlow::new(doc).unwrap()
}

fn main() {
    let mut flows = PublishedFlows::new();
    flows.insert_active(1, Arc::new(ten_block_flow()));
    let ctx = StepContext::new(PageId::from("page"), Psid::from("psid"), Arc::new(flows));
    let mut session = Session::default();
    session.fields.insert("first_name".into(), "Ada".into());
    let events = [
        InboundEvent::Text {
            text: "start".into(),
        },
        InboundEvent::Text {
            text: "ada@example.com".into(),
        },
        InboundEvent::QuickReply {
            payload: "bf1:t:bench:1:pick:q0.0".into(),
            text: "Red".into(),
        },
    ];
    // Check once that the conversation runs every block and returns to the start.
    let mut probe = session.clone();
    let mut messages = 0;
    for (i, e) in events.iter().enumerate() {
        let out = step(&ctx, &probe, e, i as u64);
        messages += out.outbound.len();
        probe = out.session;
    }
    assert_eq!(messages, 4, "hello, prompt, quick replies, final");
    assert!(probe.waiting.is_none() && probe.flow.is_none());

    let rounds = 200_000u64;
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    let mut now = 0u64;
    for _ in 0..rounds {
        for e in &events {
            now += 1;
            let out = step(&ctx, &session, e, now);
            session = black_box(out).session;
        }
    }
    let elapsed = start.elapsed();
    let cpu = thread_cpu_ns()
        .zip(cpu_start)
        .map(|(end, begin)| end - begin);
    let total = rounds * events.len() as u64;
    let per_sec = total as f64 / elapsed.as_secs_f64();
    println!("step: {total} events through a 10-block flow in {elapsed:.2?}");
    println!(
        "step: {per_sec:.0} events/s ({:.2} µs/event); target > 500,000/s",
        1e6 / per_sec
    );
    if let Some(cpu_ns) = cpu {
        // On a shared machine the wall clock includes time other processes held the core.
        let per_cpu_sec = total as f64 / (cpu_ns as f64 / 1e9);
        println!("step: {per_cpu_sec:.0} events per CPU-second of this thread");
    }
}

/// CPU time this thread has run, from /proc/thread-self/schedstat (Linux), in nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
