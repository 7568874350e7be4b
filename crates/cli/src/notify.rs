//! `botflow notify TOPIC --text ... | --flow ID [--wait]`: sends one message per waiting opt-in of
//! a topic and prints the notification's id and the counts the server answers once every message
//! is durably queued; `--wait` follows its progress until it is done.

use crate::admin_api::NotifyReport;
use crate::client::{AdminClient, Body, ClientError, ConnectionArgs};
use crate::output::{OutputFormat, json_text, write_stdout};
use crate::topics::find_topic;
use reqwest::Method;
use serde_json::json;
use std::process::ExitCode;

/// Arguments of `botflow notify`.
#[derive(Debug, clap::Args)]
pub(crate) struct NotifyArgs {
    /// The topic's id or name.
    #[arg(value_name = "TOPIC")]
    topic: String,
    /// The message text (1 to 2,000 characters).
    #[arg(long, required_unless_present = "flow", conflicts_with = "flow")]
    text: Option<String>,
    /// A published flow to run for each subscriber waiting on the topic (its `otn_send` blocks
    /// spend the tokens).
    #[arg(long, value_name = "ID")]
    flow: Option<String>,
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Follow the notification until it is done (or cancelled), printing its progress on stderr.
    #[arg(long)]
    wait: bool,
    /// Output format: `human` or `json` (the server's counts; with --wait, the notification as
    /// it ended).
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: &NotifyArgs) -> ExitCode {
    crate::client::run_command(notify(args))
}

async fn notify(args: &NotifyArgs) -> Result<ExitCode, ClientError> {
    let client = AdminClient::connect(&args.connection).await?;
    let topic = find_topic(&client, &args.topic).await?;
    let body = match (&args.text, &args.flow) {
        (Some(text), None) => json!({ "text": text }),
        (None, Some(flow)) => json!({ "flow": flow }),
        _ => {
            return Err(ClientError::Usage(
                "give exactly one of --text TEXT and --flow ID".to_owned(),
            ));
        }
    };
    let report: NotifyReport = client
        .page_request(
            Method::POST,
            &["topics", &topic.id, "notify"],
            &[],
            Body::Json(&body),
        )
        .await?;
    let mut queued = format!(
        "notification {} of topic {:?}: {} queued, {} without a usable opt-in, {} expired",
        report.id,
        topic.name,
        messages(report.queued),
        report.no_token,
        report.expired
    );
    let recurring = report.recurring_queued
        + report.recurring_not_due
        + report.recurring_stopped
        + report.recurring_expired;
    // Recurring holders are counted apart, and only mentioned when the topic has some.
    if recurring > 0 {
        queued.push_str(&format!(
            "; recurring: {} queued, {} not due, {} stopped, {} expired",
            messages(report.recurring_queued),
            report.recurring_not_due,
            report.recurring_stopped,
            report.recurring_expired
        ));
    }
    queued.push('\n');
    if !args.wait {
        let output = match args.format {
            OutputFormat::Json => json_text(&report),
            OutputFormat::Human => queued,
        };
        write_stdout(&output)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.format == OutputFormat::Human {
        write_stdout(&queued)?;
    }
    let ended = crate::notifications::follow(&client, report.id).await?;
    let output = match args.format {
        OutputFormat::Json => json_text(&ended),
        OutputFormat::Human => format!(
            "notification {} {}\n",
            ended.id,
            crate::notifications::progress(&ended)
        ),
    };
    write_stdout(&output)?;
    Ok(ExitCode::SUCCESS)
}

fn messages(n: u64) -> String {
    match n {
        1 => "1 message".to_owned(),
        n => format!("{n} messages"),
    }
}
