//! `botflow flows list | versions ID | rollback ID N | pull ID [-o FILE]`: the published flows of a
//! Page on a running server.

use crate::admin_api::{PublishView, VersionView};
use crate::client::{AdminClient, Body, ClientError, ConnectionArgs};
use crate::output::{OutputFormat, json_text, table, utc_time, write_stdout};
use botflow_storage::{DraftState, FlowSummary};
use reqwest::Method;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `botflow flows`.
#[derive(Debug, clap::Args)]
pub(crate) struct FlowsArgs {
    #[command(subcommand)]
    command: FlowsCommand,
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Output format: `human` or `json` (the server's objects).
    #[arg(long, value_enum, default_value_t, global = true)]
    format: OutputFormat,
}

/// What to do with flows.
#[derive(Debug, clap::Subcommand)]
enum FlowsCommand {
    /// List the flows: id, name, live version and draft state.
    List,
    /// List the published versions of a flow.
    Versions {
        /// The flow id.
        #[arg(value_name = "ID")]
        flow: String,
    },
    /// Make version N's content live again (published as a new version).
    Rollback {
        /// The flow id.
        #[arg(value_name = "ID")]
        flow: String,
        /// The version whose content goes live.
        #[arg(value_name = "N")]
        version: u32,
    },
    /// Print (or write) the live version's source, as the flow file it was published from.
    Pull {
        /// The flow id.
        #[arg(value_name = "ID")]
        flow: String,
        /// Write to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: &FlowsArgs) -> ExitCode {
    crate::client::run_command(flows(args))
}

async fn flows(args: &FlowsArgs) -> Result<ExitCode, ClientError> {
    let client = AdminClient::connect(&args.connection).await?;
    let json = args.format == OutputFormat::Json;
    let output = match &args.command {
        FlowsCommand::List => {
            let flows = list_flows(&client).await?;
            match json {
                true => json_text(&flows),
                false => flow_table(&flows),
            }
        }
        FlowsCommand::Versions { flow } => {
            let latest = published_flow(&client, flow).await?.latest_version;
            let mut versions = Vec::new();
            for n in 1..=latest.unwrap_or(0) {
                versions.push(version(&client, flow, n).await?);
            }
            match json {
                true => json_text(&versions),
                false => version_table(&versions),
            }
        }
        FlowsCommand::Rollback { flow, version } => {
            let n = version.to_string();
            let published: PublishView = client
                .page_request(
                    Method::POST,
                    &["flows", flow, "rollback", &n],
                    &[],
                    Body::Empty,
                )
                .await?;
            match (json, published.unchanged) {
                (true, _) => json_text(&serde_json::json!({
                    "flow": flow, "version": published.version, "unchanged": published.unchanged,
                    "republished_from": version,
                })),
                (false, true) => format!(
                    "{flow}: unchanged: the live version v{} already has v{version}'s content\n",
                    published.version
                ),
                (false, false) => format!(
                    "{flow}: published v{} with the content of v{version}\n",
                    published.version
                ),
            }
        }
        FlowsCommand::Pull { flow, output } => {
            let live = published_flow(&client, flow).await?.active_version;
            let live = live.ok_or_else(|| not_published(&client, flow))?;
            let text = json_text(&version(&client, flow, live).await?.source);
            match output {
                Some(path) => {
                    std::fs::write(path, &text).map_err(|err| {
                        ClientError::Io(format!("cannot write {}: {err}", path.display()))
                    })?;
                    // The file is the result; say where it went on stderr to keep stdout clean.
                    eprintln!("{flow}: wrote live version v{live} to {}", path.display());
                    String::new()
                }
                None => text,
            }
        }
    };
    write_stdout(&output)?;
    Ok(ExitCode::SUCCESS)
}

/// Every flow of the client's Page.
pub(crate) async fn list_flows(client: &AdminClient) -> Result<Vec<FlowSummary>, ClientError> {
    client
        .page_request(Method::GET, &["flows"], &[], Body::Empty)
        .await
}

/// One published version of a flow.
pub(crate) async fn version(
    client: &AdminClient,
    flow: &str,
    n: u32,
) -> Result<VersionView, ClientError> {
    let n = n.to_string();
    client
        .page_request(
            Method::GET,
            &["flows", flow, "versions", &n],
            &[],
            Body::Empty,
        )
        .await
}

/// The flow's summary, or a refusal when the Page has no published version of it.
async fn published_flow(client: &AdminClient, flow: &str) -> Result<FlowSummary, ClientError> {
    list_flows(client)
        .await?
        .into_iter()
        .find(|summary| summary.id.as_str() == flow && summary.latest_version.is_some())
        .ok_or_else(|| not_published(client, flow))
}

fn not_published(client: &AdminClient, flow: &str) -> ClientError {
    ClientError::Refused {
        status: 404,
        code: "not_found".to_owned(),
        message: format!(
            "Page {} has no published flow {flow:?} (see `botflow flows list`)",
            client.page()
        ),
        diagnostics: Vec::new(),
    }
}

fn flow_table(flows: &[FlowSummary]) -> String {
    if flows.is_empty() {
        return "no flows\n".to_owned();
    }
    let rows: Vec<Vec<String>> = flows
        .iter()
        .map(|flow| {
            let version = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| format!("v{v}"));
            vec![
                flow.id.as_str().to_owned(),
                flow.name.clone(),
                version(flow.active_version),
                match flow.draft {
                    DraftState::None => "-".to_owned(),
                    DraftState::Published => "published".to_owned(),
                    DraftState::Unpublished { errors, warnings } => {
                        format!("unpublished ({errors} errors, {warnings} warnings)")
                    }
                },
            ]
        })
        .collect();
    table(&["ID", "NAME", "LIVE", "DRAFT"], &rows)
}

fn version_table(versions: &[VersionView]) -> String {
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                format!("v{}", v.version),
                utc_time(v.published_ms),
                match v.live {
                    true => "live".to_owned(),
                    false => String::new(),
                },
                v.republished_from
                    .map(|from| format!("rollback to v{from}"))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(&["VERSION", "PUBLISHED", "LIVE", "NOTE"], &rows)
}
