//! A small Prometheus registry: counters, gauges and one latency histogram, rendered in the
//! Prometheus text exposition format (version 0.0.4) at `/metrics`.
//!
//! The server counts what it sees at the HTTP edge; the runtime's own counters (events processed,
//! messages sent/failed/refused, queue depths, webhook-to-send latency) are read from the runtime
//! when the page is rendered, so there is one source of truth for each number.

pub use botflow_runtime::Counter;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the latency histogram buckets (`+Inf` is implied).
pub const LATENCY_BUCKETS_SECONDS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// A histogram of durations with the fixed [`LATENCY_BUCKETS_SECONDS`] buckets.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .and_then(|index| self.buckets.get(index));
        if let Some(bucket) = bucket {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A consistent-enough copy for rendering: per-bucket (non-cumulative) counts, count, sum.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bucket_counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Values of a histogram at one moment; `bucket_counts[i]` counts observations that fell in
/// bucket `i` only (not cumulative), for the bounds [`LATENCY_BUCKETS_SECONDS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Observations per bucket, not cumulative; observations above the last bound are only in `count`.
    pub bucket_counts: Vec<u64>,
    /// Number of observations.
    pub count: u64,
    /// Sum of the observations in seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// The upper bound (seconds) of the bucket holding the `q` quantile (0..=1); `None` without
    /// observations or when it lies above the last bound.
    pub fn quantile_upper_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut cumulative = 0;
        for (count, bound) in self.bucket_counts.iter().zip(LATENCY_BUCKETS_SECONDS) {
            cumulative += count;
            if cumulative >= rank {
                return Some(bound);
            }
        }
        None
    }
}

/// The counters the HTTP layer owns.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    /// Webhook POSTs whose signature checked out.
    pub webhook_requests: Counter,
    /// Webhook POSTs refused for a missing or wrong signature.
    pub webhook_bad_signature: Counter,
    /// Webhook POSTs refused because the body was not a webhook envelope.
    pub webhook_malformed: Counter,
    /// Webhook POSTs refused because the body was larger than the configured limit.
    pub webhook_too_large: Counter,
    /// Events journaled for the first time.
    pub events_received: Counter,
    /// Events recognised as redeliveries and not processed again.
    pub events_duplicate: Counter,
    /// Admin API requests refused for a missing or wrong bearer token.
    pub api_unauthorized: Counter,
    /// Time from a webhook's arrival to the Send API accepting a message it caused (fed by the
    /// runtime's latency hook).
    pub webhook_to_send: LatencyHistogram,
    /// Time to journal a delivery durably (the wait before its 200, which since issue 14 phase 8
    /// includes handing the events to the runtime, whose step commit usually starts the sync).
    pub journal_append: LatencyHistogram,
    /// Records removed by the retention sweeper, by kind (fed by the sweeper).
    pub retention: std::sync::Arc<botflow_runtime::RetentionMetrics>,
}

/// Builds a Prometheus text page; each metric family is written once with HELP and TYPE.
#[derive(Debug, Default)]
pub struct MetricsText {
    text: String,
}

impl MetricsText {
    /// A counter family with one unlabelled sample (a count, or seconds spent).
    pub fn counter(&mut self, name: &str, help: &str, value: impl std::fmt::Display) -> &mut Self {
        self.header(name, help, "counter");
        let _ = writeln!(self.text, "{name} {value}");
        self
    }

    /// A counter family with one sample per label value.
    pub fn labelled_counter(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        samples: &[(&str, u64)],
    ) -> &mut Self {
        self.header(name, help, "counter");
        for (value_label, value) in samples {
            let _ = writeln!(
                self.text,
                "{name}{{{label}=\"{}\"}} {value}",
                escape_label(value_label)
            );
        }
        self
    }

    /// A gauge family with one unlabelled sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: i64) -> &mut Self {
        self.header(name, help, "gauge");
        let _ = writeln!(self.text, "{name} {value}");
        self
    }

    /// A gauge family with one unlabelled sample that is not a whole number (seconds).
    pub fn gauge_f64(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        self.header(name, help, "gauge");
        let _ = writeln!(self.text, "{name} {value}");
        self
    }

    /// A gauge family with one sample per label value.
    pub fn labelled_gauge(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        samples: &[(&str, i64)],
    ) -> &mut Self {
        self.header(name, help, "gauge");
        for (value_label, value) in samples {
            let _ = writeln!(
                self.text,
                "{name}{{{label}=\"{}\"}} {value}",
                escape_label(value_label)
            );
        }
        self
    }

    /// A histogram family in seconds with the [`LATENCY_BUCKETS_SECONDS`] bounds.
    pub fn histogram(&mut self, name: &str, help: &str, snapshot: &HistogramSnapshot) -> &mut Self {
        self.header(name, help, "histogram");
        let mut cumulative = 0;
        for (index, bound) in LATENCY_BUCKETS_SECONDS.iter().enumerate() {
            cumulative += snapshot.bucket_counts.get(index).copied().unwrap_or(0);
            let _ = writeln!(self.text, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(self.text, "{name}_bucket{{le=\"+Inf\"}} {}", snapshot.count);
        let _ = writeln!(self.text, "{name}_sum {}", snapshot.sum_seconds);
        let _ = writeln!(self.text, "{name}_count {}", snapshot.count);
        self
    }

    /// The finished page.
    pub fn finish(self) -> String {
        self.text
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets_sum_and_count() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(15));
        histogram.observe(Duration::from_millis(15));
        histogram.observe(Duration::from_secs(60));
        let mut text = MetricsText::default();
        text.histogram("lat_seconds", "latency", &histogram.snapshot());
        let text = text.finish();
        assert!(text.contains("# TYPE lat_seconds histogram"), "{text}");
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.01\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.02\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("lat_seconds_bucket{le=\"30\"} 3\n"), "{text}");
        assert!(
            text.contains("lat_seconds_bucket{le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("lat_seconds_count 4\n"), "{text}");
        assert!(text.contains("lat_seconds_sum 60.0305\n"), "{text}");
    }

    #[test]
    fn quantiles_name_the_bucket_they_fall_in() {
        let histogram = LatencyHistogram::default();
        assert_eq!(histogram.snapshot().quantile_upper_bound(0.5), None);
        for _ in 0..98 {
            histogram.observe(Duration::from_micros(1500));
        }
        histogram.observe(Duration::from_millis(40));
        histogram.observe(Duration::from_secs(99));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.quantile_upper_bound(0.5), Some(0.002));
        assert_eq!(snapshot.quantile_upper_bound(0.99), Some(0.05));
        assert_eq!(
            snapshot.quantile_upper_bound(1.0),
            None,
            "above the last bound"
        );
    }

    #[test]
    fn counters_and_labelled_gauges_render_with_help_and_type() {
        let counter = Counter::default();
        counter.inc();
        counter.add(4);
        let mut text = MetricsText::default();
        text.counter("x_total", "an x", counter.get())
            .labelled_gauge("q", "queue", "queue", &[("out\"box", 3)]);
        let text = text.finish();
        assert_eq!(
            text,
            "# HELP x_total an x\n# TYPE x_total counter\nx_total 5\n\
             # HELP q queue\n# TYPE q gauge\nq{queue=\"out\\\"box\"} 3\n"
        );
    }
}
