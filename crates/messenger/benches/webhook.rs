//! Benchmarks (no harness, prints figures): parse + verify of a 1 KB signed webhook body, and
//! Send API client throughput against the fake Graph API with 64 requests in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use botflow_messenger::fake::FakeGraphApi;
use botflow_messenger::{
    ClientConfig, OutgoingMessage, RetryPolicy, SendClient, SendRequest, parse_webhook, sign_body,
    verify_signature,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

const APP_SECRET: &[u8] = b"bench-app-secret-0123456789abcdef";

/// A realistic delivery of about 1 KB: one entry with a text message, a quick-reply tap and an opt-in.
fn one_kilobyte_body() -> Vec<u8> {
    let mut events = vec![
        r#"{"sender":{"id":"7300000000000001"},"recipient":{"id":"104000000000001"},"timestamp":1764072000001,"message":{"mid":"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P","text":"Is the red one back in stock yet? I would like size 42."}}"#.to_owned(),
        r#"{"sender":{"id":"7300000000000002"},"recipient":{"id":"104000000000001"},"timestamp":1764072000002,"message":{"mid":"m_qr_00000000000000000000000000000000000000000000000001","text":"Blue","quick_reply":{"payload":"bf1:restock:3:colours:q0"}}}"#.to_owned(),
        r#"{"sender":{"id":"7300000000000003"},"recipient":{"id":"104000000000001"},"timestamp":1764072000003,"optin":{"type":"one_time_notif_req","payload":"bf1:otn:topic-red-sneakers:restock:3:welcome","one_time_notif_token":"6714980495293374123"}}"#.to_owned(),
    ];
    let mut body;
    loop {
        body = format!(
            r#"{{"object":"page","entry":[{{"id":"104000000000001","time":1764072000123,"messaging":[{}]}}]}}"#,
            events.join(",")
        );
        if body.len() >= 1000 {
            break;
        }
        events.push(r#"{"sender":{"id":"7300000000000004"},"recipient":{"id":"104000000000001"},"timestamp":1764072000004,"read":{"watermark":1764072000000}}"#.to_owned());
    }
    body.into_bytes()
}

fn bench_parse_and_verify() {
    let body = one_kilobyte_body();
    let header = sign_body(APP_SECRET, &body);
    let events = parse_webhook(&body).unwrap().events().count();
    let iterations = 20_000;
    let mut per_op = Vec::new();
    for _round in 0..7 {
        let started = Instant::now();
        for _ in 0..iterations {
            verify_signature(APP_SECRET, black_box(&body), Some(black_box(&header))).unwrap();
            black_box(parse_webhook(black_box(&body)).unwrap());
        }
        per_op.push(started.elapsed() / iterations);
    }
    per_op.sort();
    let parse_only = {
        let started = Instant::now();
        for _ in 0..iterations {
            black_box(parse_webhook(black_box(&body)).unwrap());
        }
        started.elapsed() / iterations
    };
    let parsed = parse_webhook(&body).unwrap();
    let dedup_keys = {
        let started = Instant::now();
        for _ in 0..iterations {
            for event in parsed.events() {
                black_box(event.dedup_key());
            }
        }
        started.elapsed() / iterations
    };
    let verify_only = {
        let started = Instant::now();
        for _ in 0..iterations {
            verify_signature(APP_SECRET, black_box(&body), Some(black_box(&header))).unwrap();
        }
        started.elapsed() / iterations
    };
    println!(
        "webhook parse+verify, {} bytes, {events} events: median {:.2} us/op (min {:.2}, max {:.2}); target < 10 us\n  parts: verify {:.2} us, parse {:.2} us; dedup keys of all events {:.2} us",
        body.len(),
        micros(per_op[per_op.len() / 2]),
        micros(per_op[0]),
        micros(per_op[per_op.len() - 1]),
        micros(verify_only),
        micros(parse_only),
        micros(dedup_keys),
    );
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

async fn bench_client_throughput() {
    const IN_FLIGHT: usize = 64;
    const TOTAL: usize = 6_400;
    let fake = FakeGraphApi::start().await;
    let client = SendClient::new(ClientConfig {
        graph_base_url: fake.base_url().to_owned(),
        api_version: botflow_messenger::client::DEFAULT_API_VERSION.to_owned(),
        page_access_token: "bench-token".to_owned(),
        timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
    })
    .unwrap();
    // Warm the connection pool.
    let warm = SendRequest::response(
        "warm",
        OutgoingMessage::Text {
            text: "warm".into(),
        },
    );
    client.send(&warm).await.unwrap();

    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..IN_FLIGHT {
        let client = client.clone();
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(TOTAL / IN_FLIGHT);
            for index in 0..TOTAL / IN_FLIGHT {
                let request = SendRequest::update(
                    format!("psid-{worker}"),
                    OutgoingMessage::Text {
                        text: format!("message {index}"),
                    },
                );
                let sent_at = Instant::now();
                client.send(&request).await.unwrap();
                latencies.push(sent_at.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::with_capacity(TOTAL);
    while let Some(worker) = workers.join_next().await {
        latencies.extend(worker.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    assert_eq!(fake.sent_messages().len(), TOTAL + 1);
    println!(
        "client throughput against the fake, {IN_FLIGHT} in flight: {TOTAL} sends in {:.2} s = {:.0} sends/s; latency p50 {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64(),
        TOTAL as f64 / elapsed.as_secs_f64(),
        latencies[TOTAL / 2].as_secs_f64() * 1e3,
        latencies[TOTAL * 99 / 100].as_secs_f64() * 1e3,
    );
}

fn main() {
    bench_parse_and_verify();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench_client_throughput());
}
