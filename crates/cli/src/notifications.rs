//! `botflow notifications list [--topic ID-OR-NAME] | show ID | cancel ID`: topic notifications
//! on a running server, with their state, totals and time left; `follow` is shared with
//! `botflow notify --wait`.

use crate::admin_api::{CancelView, NotificationView, TopicView};
use crate::client::{AdminClient, Body, ClientError, ConnectionArgs};
use crate::output::{OutputFormat, json_text, table, utc_time, write_stdout};
use crate::topics::{find_topic, list_topics};
use reqwest::Method;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// How often `--wait` asks for progress.
const POLL: Duration = Duration::from_millis(500);

/// Arguments of `botflow notifications`.
#[derive(Debug, clap::Args)]
pub(crate) struct NotificationsArgs {
    #[command(subcommand)]
    command: NotificationsCommand,
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Output format: `human` or `json` (the server's notification objects).
    #[arg(long, value_enum, default_value_t, global = true)]
    format: OutputFormat,
}

/// What to do with notifications.
#[derive(Debug, clap::Subcommand)]
enum NotificationsCommand {
    /// List the Page's notifications, newest first: id, topic, state, sent/queued, time left.
    List {
        /// Only those of this topic (id or name).
        #[arg(long, value_name = "ID-OR-NAME")]
        topic: Option<String>,
    },
    /// Show one notification with all its counts and times.
    Show {
        /// The notification's id (printed by `botflow notify`).
        id: u64,
    },
    /// Cancel a running notification: messages not yet sent are dropped and their opt-ins stay
    /// usable.
    Cancel {
        /// The notification's id.
        id: u64,
    },
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: &NotificationsArgs) -> ExitCode {
    crate::client::run_command(notifications(args))
}

async fn notifications(args: &NotificationsArgs) -> Result<ExitCode, ClientError> {
    let client = AdminClient::connect(&args.connection).await?;
    let json = args.format == OutputFormat::Json;
    let output = match &args.command {
        NotificationsCommand::List { topic } => {
            let topic_id = match topic {
                Some(key) => Some(find_topic(&client, key).await?.id),
                None => None,
            };
            let query: Vec<(&str, &str)> = topic_id.iter().map(|t| ("topic", t.as_str())).collect();
            let all: Vec<NotificationView> = client
                .page_request(Method::GET, &["notifications"], &query, Body::Empty)
                .await?;
            match json {
                true => json_text(&all),
                false => list_table(&all, &list_topics(&client).await?),
            }
        }
        NotificationsCommand::Show { id } => {
            let n = get(&client, *id).await?;
            match json {
                true => json_text(&n),
                false => details(&n),
            }
        }
        NotificationsCommand::Cancel { id } => {
            let id = id.to_string();
            let cancel: CancelView = client
                .page_request(
                    Method::POST,
                    &["notifications", &id, "cancel"],
                    &[],
                    Body::Empty,
                )
                .await?;
            match json {
                true => json_text(&cancel),
                false => format!(
                    "cancelled notification {}: {} not sent, {} opt-in(s) usable again; {} sent\n",
                    cancel.notification.id,
                    cancel.removed,
                    cancel.tokens_restored,
                    cancel.notification.totals.sent
                ),
            }
        }
    };
    write_stdout(&output)?;
    Ok(ExitCode::SUCCESS)
}

/// One notification.
pub(crate) async fn get(client: &AdminClient, id: u64) -> Result<NotificationView, ClientError> {
    let id = id.to_string();
    client
        .page_request(Method::GET, &["notifications", &id], &[], Body::Empty)
        .await
}

/// Polls the notification until it is done or cancelled, printing a progress line on stderr
/// when it changes; returns it as it ended.
pub(crate) async fn follow(client: &AdminClient, id: u64) -> Result<NotificationView, ClientError> {
    let mut last = String::new();
    loop {
        let n = get(client, id).await?;
        let line = progress(&n);
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        if !n.is_running() {
            return Ok(n);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `sending: 120/400 sent (30 by recurring token), 2 failed, about 1m 12s left`.
pub(crate) fn progress(n: &NotificationView) -> String {
    let t = &n.totals;
    let mut line = format!("{}: ", n.state);
    if let Some(runs) = n.runs.filter(|r| n.is_running() && r.under_way()) {
        let _ = write!(line, "flow ran for {}, ", runs.describe());
    }
    let _ = write!(line, "{}/{} sent", t.sent, t.queued);
    if t.recurring > 0 {
        let _ = write!(line, " ({} by recurring token)", t.recurring);
    }
    for (count, what) in [
        (t.failed, "failed"),
        (t.refused, "refused"),
        (t.unconfirmed, "unconfirmed"),
        (t.cancelled, "cancelled"),
    ] {
        if count > 0 {
            let _ = write!(line, ", {count} {what}");
        }
    }
    if let Some(eta) = n.eta_ms {
        let _ = write!(line, ", about {} left", duration(eta));
    }
    line
}

/// `1h 2m 3s`, `4m 5s`, `6s`.
fn duration(ms: u64) -> String {
    let secs = ms.div_ceil(1000);
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}

/// One row per notification; the topic by name when the Page still has it, else by id.
fn list_table(all: &[NotificationView], topics: &[TopicView]) -> String {
    if all.is_empty() {
        return "no notifications\n".to_owned();
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                topics
                    .iter()
                    .find(|t| t.id == n.topic)
                    .map_or_else(|| n.topic.clone(), |t| t.name.clone()),
                n.state.clone(),
                format!("{}/{}", n.totals.sent, n.totals.queued),
                n.eta_ms.map(duration).unwrap_or_else(|| "-".to_owned()),
                utc_time(n.created_ms),
            ]
        })
        .collect();
    table(&["ID", "TOPIC", "STATE", "SENT", "LEFT", "CREATED"], &rows)
}

fn details(n: &NotificationView) -> String {
    let t = &n.totals;
    let mut out = format!("notification {} of topic {}\n", n.id, n.topic);
    let content = match &n.flow {
        Some(flow) => format!("flow {flow}"),
        None => n.content.clone(),
    };
    let time = |ms: Option<u64>| ms.map(utc_time).unwrap_or_else(|| "-".to_owned());
    let rows = [
        ("content", content),
        ("state", n.state.clone()),
        (
            "flow runs",
            n.runs.map_or_else(|| "-".to_owned(), |r| r.describe()),
        ),
        ("queued", t.queued.to_string()),
        ("recurring", t.recurring.to_string()),
        ("pending", t.pending.to_string()),
        ("sent", t.sent.to_string()),
        ("failed", t.failed.to_string()),
        ("refused", t.refused.to_string()),
        ("unconfirmed", t.unconfirmed.to_string()),
        ("cancelled", t.cancelled.to_string()),
        ("no token", t.no_token.to_string()),
        ("expired", t.expired.to_string()),
        ("created", utc_time(n.created_ms)),
        ("started", time(n.started_ms)),
        ("finished", time(n.finished_ms)),
        (
            "time left",
            n.eta_ms
                .map(|eta| format!("{} at {}/s", duration(eta), n.rate_per_sec))
                .unwrap_or_else(|| "-".to_owned()),
        ),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "  {name:<12} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{duration, progress};
    use crate::admin_api::{NotificationRuns, NotificationView};

    #[test]
    fn durations_read_as_hours_minutes_seconds_rounded_up() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(1), "1s");
        assert_eq!(duration(61_000), "1m 1s");
        assert_eq!(duration(3_723_000), "1h 2m 3s");
    }

    #[test]
    fn a_flow_notification_says_how_far_its_runs_are_while_they_run() {
        let mut n: NotificationView = serde_json::from_value(serde_json::json!({
            "id": 3, "topic": "t", "content": "flow", "flow": "f", "state": "queued",
            "totals": {"queued": 40, "recurring": 0, "pending": 40, "sent": 0, "failed": 0,
                       "refused": 0, "unconfirmed": 0, "no_token": 0, "expired": 0, "cancelled": 0},
            "runs": {"expected": 60, "done": 40, "failed": 1},
            "created_ms": 0, "started_ms": null, "finished_ms": null, "eta_ms": null,
            "rate_per_sec": 50
        }))
        .unwrap();
        assert_eq!(
            progress(&n),
            "queued: flow ran for 40/60 (1 failed), 0/40 sent"
        );
        n.runs = Some(NotificationRuns {
            expected: Some(60),
            done: 60,
            failed: 1,
        });
        n.state = "sending".into();
        assert_eq!(progress(&n), "sending: 0/40 sent");
        n.runs = None;
        assert_eq!(progress(&n), "sending: 0/40 sent");
    }
}
