//! Validation speed on generated flows of 1,000 / 10,000 / 100,000 blocks: prints the median
//! and best time of `check_text` (parse + every rule) and of `validate` (rules on a typed document).
//! With `BENCH_PHASES=1` it also prints the cost of reading alone (into a `Value`, and with the
//! one flow reader that `check_text` uses) and of building the graph. `BENCH_BLOCKS=10000` runs one size only.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use botflow_flow::{check_text, parse_flow, validate};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A connected flow of `blocks` blocks (a multiple of 5) that validates without errors: groups of
/// send_message (quick replies back to earlier groups), wait_input, condition, action and delay.
fn generated_flow(blocks: usize) -> String {
    let groups = blocks / 5;
    let id = |kind: &str, g: usize| format!("{kind}{g}");
    let mut items: Vec<Value> = Vec::with_capacity(blocks);
    for g in 0..groups {
        let next_group = if g + 1 < groups {
            Some(id("ask", g + 1))
        } else {
            None
        };
        let back = id("ask", g / 2);
        items.push(json!({"id": id("ask", g), "type": "send_message", "position": {"x": g, "y": 0},
            "messages": [{"type": "text", "text": "Hi {{first_name}}, pick one",
                          "quick_replies": [{"title": "Again", "next": back}, {"title": "On", "next": id("wait", g)}]}]}));
        items.push(json!({"id": id("wait", g), "type": "wait_input", "field": "answer", "input": "number",
            "prompt": "A number?", "reprompt": "Digits please", "on_invalid": id("ask", g), "next": id("check", g)}));
        items.push(json!({"id": id("check", g), "type": "condition",
            "branches": [{"when": [{"type": "field", "field": "answer", "op": "greater_than", "value": "10"}], "next": id("tag", g)}],
            "else": id("pause", g)}));
        items.push(json!({"id": id("tag", g), "type": "action", "actions": [{"type": "add_tag", "tag": "big"}],
            "next": id("pause", g)}));
        let mut pause = json!({"id": id("pause", g), "type": "delay", "duration": "1h"});
        if let Some(next) = next_group {
            pause["next"] = Value::from(next);
        }
        items.push(pause);
    }
    json!({"format": 1, "id": "bench", "name": "Bench", "triggers": [{"type": "get_started"}],
           "start": "ask0", "blocks": items})
    .to_string()
}

fn measure(iterations: usize, mut run: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    (times[times.len() / 2], times[0])
}

fn main() {
    println!(
        "{:>8} {:>9} | {:>22} | {:>22}",
        "blocks", "JSON", "check_text median/best", "validate median/best"
    );
    // `BENCH_BLOCKS=10000` (a comma-separated list) runs only those sizes.
    let only: Option<Vec<usize>> = std::env::var("BENCH_BLOCKS").ok().map(|list| {
        list.split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect()
    });
    for (blocks, iterations) in [(1_000, 50), (10_000, 20), (100_000, 5)] {
        if only.as_ref().is_some_and(|only| !only.contains(&blocks)) {
            continue;
        }
        let text = generated_flow(blocks);
        let report = check_text(&text);
        assert!(
            report.diagnostics.is_empty(),
            "{:?}",
            &report.diagnostics[..1]
        );
        let document = parse_flow(&text).unwrap();
        let (text_median, text_best) = measure(iterations, || {
            std::hint::black_box(check_text(std::hint::black_box(&text)));
        });
        let (doc_median, doc_best) = measure(iterations, || {
            std::hint::black_box(validate(std::hint::black_box(&document)));
        });
        if std::env::var("BENCH_PHASES").is_ok() {
            let (v, _) = measure(iterations, || {
                std::hint::black_box(serde_json::from_str::<Value>(&text).unwrap());
            });
            let (r, _) = measure(iterations, || {
                std::hint::black_box(parse_flow(std::hint::black_box(&text)).unwrap());
            });
            let (g, _) = measure(iterations, || {
                std::hint::black_box(botflow_flow::FlowGraph::build(&document));
            });
            println!(
                "phases (medians): to Value {:.2} ms, the flow reader {:.2} ms, graph {:.2} ms",
                v.as_secs_f64() * 1e3,
                r.as_secs_f64() * 1e3,
                g.as_secs_f64() * 1e3
            );
        }
        println!(
            "{blocks:>8} {:>7}kB | {:>9.2} / {:>8.2} ms | {:>9.2} / {:>8.2} ms",
            text.len() / 1024,
            text_median.as_secs_f64() * 1e3,
            text_best.as_secs_f64() * 1e3,
            doc_median.as_secs_f64() * 1e3,
            doc_best.as_secs_f64() * 1e3,
        );
    }
}
