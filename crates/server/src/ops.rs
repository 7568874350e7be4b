//! Operations endpoints: `/healthz` and the Prometheus page at `/metrics`.

use crate::metrics::MetricsText;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// Content type of the Prometheus text exposition format.
pub(crate) const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The answer of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`, or `unavailable` when the database does not answer.
    #[schema(value_type = String, pattern = "^(ok|unavailable)$")]
    status: &'static str,
    /// The store in use: `sled` (embedded) or `postgres`.
    #[schema(value_type = String, pattern = "^(sled|postgres)$")]
    database: &'static str,
    /// Why the database is unavailable (only then).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `GET /healthz`: 200 with `{"status": "ok", "database": ...}` while the server accepts
/// requests and its database answers; 503 with `status: unavailable` when PostgreSQL does not.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "ops",
    responses(
        (status = 200, description = "The server accepts requests and its database answers.", body = Health),
        (status = 503, description = "The PostgreSQL database does not answer (webhooks are answered 503 meanwhile).", body = Health)
    )
)]
pub(crate) async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let Some(database) = state.database.clone() else {
        return (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                database: "sled",
                error: None,
            }),
        );
    };
    let ping = tokio::task::spawn_blocking(move || database.ping()).await;
    match ping {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                database: "postgres",
                error: None,
            }),
        ),
        Ok(Err(err)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                database: "postgres",
                error: Some(err.to_string()),
            }),
        ),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                database: "postgres",
                error: Some(format!("the database check did not finish: {err}")),
            }),
        ),
    }
}

/// `GET /metrics`: every counter, gauge and histogram in Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "ops",
    responses((status = 200, description = "Counters, gauges and the webhook-to-send latency histogram (text exposition format 0.0.4).", content_type = "text/plain", body = String))
)]
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut text = MetricsText::default();
    let m = &state.metrics;
    text.counter(
        "botflow_webhook_requests_total",
        "Webhook deliveries with a valid signature.",
        m.webhook_requests.get(),
    )
    .labelled_counter(
        "botflow_webhook_rejected_total",
        "Webhook deliveries refused, by reason.",
        "reason",
        &[
            ("bad_signature", m.webhook_bad_signature.get()),
            ("malformed", m.webhook_malformed.get()),
            ("too_large", m.webhook_too_large.get()),
        ],
    )
    .counter(
        "botflow_events_received_total",
        "Webhook events journaled for the first time.",
        m.events_received.get(),
    )
    .counter(
        "botflow_events_duplicate_total",
        "Webhook events recognised as redeliveries and not processed again.",
        m.events_duplicate.get(),
    )
    .counter(
        "botflow_api_unauthorized_total",
        "Admin API requests refused for a missing or wrong bearer token.",
        m.api_unauthorized.get(),
    )
    .labelled_counter(
        "botflow_retention_removed_total",
        "Records removed by the retention sweeper, by kind.",
        "kind",
        &[
            ("dedup_record", m.retention.dedup_records_removed.get()),
            ("message", m.retention.messages_removed.get()),
            ("token", m.retention.tokens_removed.get()),
            ("notification", m.retention.notifications_removed.get()),
        ],
    );
    // Counted from the store when it opened, then kept with every commit: the durable queue.
    match state.store.outbox_stats() {
        Ok(stats) => {
            text.gauge(
                "botflow_outbox_pending",
                "Outbound messages in the durable queue waiting to be sent (retries included).",
                i64::try_from(stats.pending).unwrap_or(i64::MAX),
            );
        }
        Err(err) => tracing::warn!(%err, "outbox figures unavailable for /metrics"),
    }
    let mut broken = 0;
    for page in &state.config.pages {
        let page = botflow_storage::PageId::from(page.id.as_str());
        match state.store.active_flows(&page) {
            Ok(active) => broken += active.broken.len(),
            Err(err) => tracing::warn!(%err, %page, "live flows unavailable for /metrics"),
        }
    }
    text.gauge(
        "botflow_flows_broken",
        "Published flows whose live version cannot be read (the Page's other flows run).",
        i64::try_from(broken).unwrap_or(i64::MAX),
    );
    if let Some(log) = state.store.log_stats() {
        text.counter(
            "botflow_log_appends_total",
            "Records appended to the embedded store's log (journaled events, commits, outcomes).",
            log.appends,
        )
        .counter(
            "botflow_log_fdatasyncs_total",
            "Groups of log records written and made durable, each with one fdatasync (group \
             commit: every record waiting at that moment shares it).",
            log.syncs,
        )
        .counter(
            "botflow_log_fdatasync_seconds_total",
            "Time the log spent in fdatasync; divided by botflow_log_fdatasyncs_total, the \
             disk's mean sync latency (every acknowledged webhook waits for one).",
            log.sync_time.as_secs_f64(),
        )
        .counter(
            "botflow_log_written_bytes_total",
            "Bytes written to the embedded store's log.",
            log.bytes,
        );
    }
    if let Some(database) = &state.database {
        text.counter(
            "botflow_database_errors_total",
            "PostgreSQL store calls that failed with a database error (unreachable, refused, \
             conflicts beyond the retries).",
            database.database_errors(),
        );
        let ownership = state.store.ownership();
        text.gauge(
            "botflow_shard_leases_held",
            "Shard leases this node holds (of 256; several nodes share them).",
            i64::try_from(ownership.held_count()).unwrap_or(i64::MAX),
        );
        text.counter(
            "botflow_shard_lease_changes_total",
            "Shard leases this node acquired or lost since it started.",
            ownership.changes(),
        );
        text.gauge_f64(
            "botflow_journal_poll_lag_seconds",
            "Age of the oldest unprocessed journal entry of the owned shards at the last poll.",
            state.runtime.metrics().journal_poll_lag_ms.get() as f64 / 1000.0,
        );
    }
    state.render_runtime_metrics(&mut text);
    ([(CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], text.finish())
}
