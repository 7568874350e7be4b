//! `botflow push PATH... [--publish] [--dry-run] [--keep-going]`: deploys flow files to a running
//! server. Each file is saved as a draft (the server's diagnostics are printed like `validate`'s),
//! then with `--publish` the drafts without errors are published; any file with errors holds
//! every publish back unless `--keep-going`. `--dry-run` validates against the server and tells
//! which flows differ from their live version, saving nothing.
//!
//! Exit codes: 0 done, 1 a file has errors or the server refused a publish, 2 usage,
//! authentication, I/O or connection errors.

use crate::admin_api::{TopicView, ValidationReport};
use crate::client::{AdminClient, Body, ClientError, ConnectionArgs};
use crate::flows::{list_flows, version};
use crate::output::{OutputFormat, count, json_text, push_diagnostic_lines, write_stdout};
use crate::topics::list_topics;
use crate::validate::collect_files;
use botflow_flow::{
    Diagnostic, FileDiagnostic, FlowDocument, TopicRef, check_bytes, check_trigger_conflicts,
    visit_topic_refs,
};
use botflow_storage::topic::topic_name_key;
use reqwest::Method;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `botflow push`.
#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// Flow files, or folders searched recursively for `*.json` files.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Publish every saved draft that has no errors (a flow equal to its live version makes no
    /// new version).
    #[arg(long)]
    publish: bool,
    /// Validate against the server and show what would change; save and publish nothing.
    #[arg(long)]
    dry_run: bool,
    /// Publish the files without errors even when other files have errors.
    #[arg(long)]
    keep_going: bool,
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Output format: `human` (one line per flow, diagnostics as `validate` prints them) or
    /// `json` (one object with every flow's outcome).
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

/// A flow file as read and checked locally.
struct FlowFile {
    file: String,
    bytes: Vec<u8>,
    /// The document, when the file reads as a flow at all.
    document: Option<FlowDocument>,
    /// Problems found without the server: a file that is not a flow, or two files of this push
    /// with the same id or the same trigger. Such a file is not sent.
    local_problems: Vec<Diagnostic>,
}

/// What publishing a file would do to its live version.
#[derive(Debug, PartialEq, Eq)]
enum LiveChange {
    /// The file resolves to the live version: publishing makes no new version.
    Unchanged,
    /// A new version (the first one when `live` is `None`), creating the topics it names that
    /// the Page does not have.
    NewVersion {
        live: Option<u32>,
        topics_to_create: Vec<String>,
    },
}

/// The outcome of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    /// Equal to the live version; nothing new published.
    Unchanged,
    /// Saved as a draft (without `--publish`).
    DraftSaved,
    /// Published as a new version.
    Published,
    /// Saved as a draft, but not published because another file has errors.
    HeldBack,
    /// Has errors: not published (a file that is not a flow is not even sent).
    Invalid,
    /// `--dry-run`: would be saved as a draft.
    WouldSaveDraft,
    /// `--dry-run --publish`: would be published as a new version.
    WouldPublish,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct FlowOutcome {
    file: String,
    flow: Option<String>,
    status: Status,
    /// The version published, or that a dry run would publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    /// The live version before the push.
    live_version: Option<u32>,
    /// Topics created (or, in a dry run, that would be created) because the flow names them.
    topics_created: Vec<String>,
    diagnostics: Vec<FileDiagnostic>,
    /// The server's reason, when it refused the file or its publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

impl FlowOutcome {
    fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.diagnostic.is_error())
            .count()
    }
}

/// The whole report, as `--format json` prints it.
#[derive(Debug, Serialize)]
struct PushReport {
    server: String,
    page: String,
    dry_run: bool,
    publish: bool,
    /// Whether every file was free of errors and every publish was accepted.
    ok: bool,
    flows: Vec<FlowOutcome>,
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: &PushArgs) -> ExitCode {
    crate::client::run_command(push(args))
}

async fn push(args: &PushArgs) -> Result<ExitCode, ClientError> {
    let files = read_files(&args.paths)?;
    let client = AdminClient::connect(&args.connection).await?;
    let topics = list_topics(&client).await?;
    let live: HashMap<String, u32> = list_flows(&client)
        .await?
        .into_iter()
        .filter_map(|flow| Some((flow.id.as_str().to_owned(), flow.active_version?)))
        .collect();

    // 1. Every file: validated by the server (saved as a draft unless --dry-run), compared
    //    with its live version.
    let mut outcomes = Vec::with_capacity(files.len());
    let mut changes = Vec::with_capacity(files.len());
    for file in &files {
        let (outcome, change) = send_file(&client, args.dry_run, file, &topics, &live).await?;
        outcomes.push(outcome);
        changes.push(change);
    }

    // 2. Publishing: none when a file has errors (unless --keep-going).
    let any_errors = outcomes.iter().any(|o| o.status == Status::Invalid);
    let hold_back = any_errors && !args.keep_going;
    let mut refused = false;
    for (outcome, change) in outcomes.iter_mut().zip(&changes) {
        let Some(LiveChange::NewVersion {
            live,
            topics_to_create,
        }) = change
        else {
            continue;
        };
        if outcome.status == Status::Invalid {
            continue;
        }
        if !args.publish {
            continue;
        }
        if hold_back {
            outcome.status = Status::HeldBack;
            continue;
        }
        if args.dry_run {
            outcome.status = Status::WouldPublish;
            outcome.version = Some(live.map_or(1, |v| v + 1));
            outcome.topics_created = topics_to_create.clone();
            continue;
        }
        let flow = outcome.flow.clone().unwrap_or_default();
        match publish(&client, &flow).await {
            Ok(published) if published.unchanged => outcome.status = Status::Unchanged,
            Ok(published) => {
                outcome.status = Status::Published;
                outcome.version = Some(published.version);
                outcome.topics_created = published
                    .topics_created
                    .into_iter()
                    .map(|t| t.name)
                    .collect();
            }
            // A refusal now (another client published a conflicting trigger meanwhile) is
            // reported with the file like a validation problem.
            Err(ClientError::Refused {
                message,
                diagnostics,
                ..
            }) => {
                refused = true;
                outcome.status = Status::Invalid;
                outcome.diagnostics = with_file(&outcome.file, diagnostics);
                outcome.refused = Some(message);
            }
            Err(other) => return Err(other),
        }
    }

    let ok = !any_errors && !refused;
    let report = PushReport {
        server: client.server_name(),
        page: client.page().to_owned(),
        dry_run: args.dry_run,
        publish: args.publish,
        ok,
        flows: outcomes,
    };
    let output = match args.format {
        OutputFormat::Json => json_text(&report),
        OutputFormat::Human => human_report(&report, hold_back && args.publish),
    };
    write_stdout(&output)?;
    Ok(match ok {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(1),
    })
}

/// Reads and checks every file; two files of one push may not share an id or a trigger.
fn read_files(paths: &[PathBuf]) -> Result<Vec<FlowFile>, ClientError> {
    let names = collect_files(paths).map_err(|err| ClientError::Usage(err.to_string()))?;
    let mut files = Vec::with_capacity(names.len());
    for path in names {
        let file = path.display().to_string();
        let bytes = std::fs::read(&path)
            .map_err(|err| ClientError::Usage(format!("cannot read {file}: {err}")))?;
        let report = check_bytes(&bytes);
        let local_problems = match report.document {
            Some(_) => Vec::new(),
            // Not a flow at all: the server would refuse it without pointing at the problems.
            None => report.diagnostics,
        };
        files.push(FlowFile {
            file,
            bytes,
            document: report.document,
            local_problems,
        });
    }
    let conflicts = check_trigger_conflicts(
        files
            .iter()
            .filter_map(|f| Some((f.file.as_str(), f.document.as_ref()?))),
    );
    for conflict in conflicts {
        if let Some(file) = files.iter_mut().find(|f| f.file == conflict.file) {
            file.local_problems.push(conflict.diagnostic);
        }
    }
    Ok(files)
}

/// Sends one file to the server (a draft save, or a validation with `dry_run`) and compares it
/// with its live version. `None` as the change means the file has errors.
async fn send_file(
    client: &AdminClient,
    dry_run: bool,
    file: &FlowFile,
    topics: &[TopicView],
    live: &HashMap<String, u32>,
) -> Result<(FlowOutcome, Option<LiveChange>), ClientError> {
    let flow = file.document.as_ref().map(|d| d.id.as_str().to_owned());
    let live_version = flow.as_ref().and_then(|id| live.get(id).copied());
    // Invalid until the server has seen it and found no error.
    let mut outcome = FlowOutcome {
        file: file.file.clone(),
        flow: flow.clone(),
        status: Status::Invalid,
        version: None,
        live_version,
        topics_created: Vec::new(),
        diagnostics: Vec::new(),
        refused: None,
    };
    let (Some(document), Some(flow), true) =
        (&file.document, &flow, file.local_problems.is_empty())
    else {
        outcome.diagnostics = with_file(&file.file, file.local_problems.clone());
        return Ok((outcome, None));
    };
    let answer: Result<ValidationReport, ClientError> = match dry_run {
        true => {
            client
                .request(
                    Method::POST,
                    &["validate"],
                    &[("page", client.page())],
                    Body::JsonBytes(&file.bytes),
                )
                .await
        }
        false => {
            client
                .page_request(
                    Method::PUT,
                    &["flows", flow],
                    &[],
                    Body::JsonBytes(&file.bytes),
                )
                .await
        }
    };
    let diagnostics = match answer {
        Ok(report) => report.diagnostics,
        // A document the server cannot even store as a draft: its diagnostics say why.
        Err(ClientError::Refused {
            status: 422,
            diagnostics,
            message,
            ..
        }) => {
            outcome.refused = Some(message);
            diagnostics
        }
        Err(other) => return Err(other),
    };
    outcome.diagnostics = with_file(&file.file, diagnostics);
    if outcome.errors() > 0 || outcome.refused.is_some() {
        return Ok((outcome, None));
    }
    let live_document = match live_version {
        Some(n) => {
            let view = version(client, flow, n).await?;
            let document = view
                .running_document()
                .map_err(|err| ClientError::Protocol {
                    url: format!(
                        "{}/api/pages/{}/flows/{flow}/versions/{n}",
                        client.server_name(),
                        client.page()
                    ),
                    detail: format!("the version's document does not read as a flow: {err}"),
                })?;
            Some((n, document))
        }
        None => None,
    };
    let change = live_change(
        document,
        live_document.as_ref().map(|(n, d)| (*n, d)),
        topics,
    );
    outcome.status = match (&change, dry_run) {
        (LiveChange::Unchanged, _) => Status::Unchanged,
        (LiveChange::NewVersion { .. }, true) => Status::WouldSaveDraft,
        (LiveChange::NewVersion { .. }, false) => Status::DraftSaved,
    };
    Ok((outcome, Some(change)))
}

async fn publish(
    client: &AdminClient,
    flow: &str,
) -> Result<crate::admin_api::PublishView, ClientError> {
    client
        .page_request(Method::POST, &["flows", flow, "publish"], &[], Body::Empty)
        .await
}

/// What publishing `local` would do, decided as the server decides it: topic names are
/// resolved to the ids of the Page's topics (trimmed, ignoring case), and the result is
/// compared with the live version's running document. A name the Page does not have would
/// create a topic, so that is always a new version.
fn live_change(
    local: &FlowDocument,
    live: Option<(u32, &FlowDocument)>,
    topics: &[TopicView],
) -> LiveChange {
    let ids: HashMap<String, &str> = topics
        .iter()
        .map(|t| (topic_name_key(&t.name), t.id.as_str()))
        .collect();
    let mut resolved = local.clone();
    let mut topics_to_create: Vec<String> = Vec::new();
    visit_topic_refs(&mut resolved, &mut |reference, _| {
        if let TopicRef::Name(by_name) = reference {
            let key = topic_name_key(&by_name.name);
            match ids.get(&key) {
                Some(id) => *reference = TopicRef::by_id(*id),
                None => {
                    let name = by_name.name.trim().to_owned();
                    if !topics_to_create.iter().any(|n| topic_name_key(n) == key) {
                        topics_to_create.push(name);
                    }
                }
            }
        }
    });
    match live {
        Some((_, document)) if topics_to_create.is_empty() && *document == resolved => {
            LiveChange::Unchanged
        }
        live => LiveChange::NewVersion {
            live: live.map(|(n, _)| n),
            topics_to_create,
        },
    }
}

fn with_file(file: &str, diagnostics: Vec<Diagnostic>) -> Vec<FileDiagnostic> {
    diagnostics
        .into_iter()
        .map(|diagnostic| FileDiagnostic {
            file: file.to_owned(),
            diagnostic,
        })
        .collect()
}

/// One line per flow (after its diagnostics), then a summary line.
fn human_report(report: &PushReport, held_back: bool) -> String {
    let mut out = String::new();
    for outcome in &report.flows {
        push_diagnostic_lines(&mut out, &outcome.diagnostics);
        let name = match &outcome.flow {
            Some(flow) => format!("{} ({flow})", outcome.file),
            None => outcome.file.clone(),
        };
        out.push_str(&format!(
            "{name}: {}\n",
            status_text(outcome, report.dry_run)
        ));
    }
    let mut counts: Vec<String> = Vec::new();
    for (status, one, many) in [
        (Status::Published, "published", "published"),
        (
            Status::WouldPublish,
            "would be published",
            "would be published",
        ),
        (Status::DraftSaved, "draft saved", "drafts saved"),
        (
            Status::WouldSaveDraft,
            "draft would be saved",
            "drafts would be saved",
        ),
        (Status::Unchanged, "unchanged", "unchanged"),
        (Status::HeldBack, "held back", "held back"),
        (Status::Invalid, "with errors", "with errors"),
    ] {
        let n = report.flows.iter().filter(|o| o.status == status).count();
        if n > 0 {
            counts.push(count(n, one, many));
        }
    }
    let flows = count(report.flows.len(), "flow", "flows");
    let verb = match report.dry_run {
        true => "dry run of",
        false => "pushed",
    };
    let preposition = match report.dry_run {
        true => "against",
        false => "to",
    };
    out.push_str(&format!(
        "{verb} {flows} {preposition} Page {} on {}: {}\n",
        report.page,
        report.server,
        counts.join(", ")
    ));
    if held_back {
        let verb = match report.dry_run {
            true => "nothing would be published",
            false => "nothing published",
        };
        out.push_str(&format!(
            "{verb} because a file has errors (--keep-going publishes the files without errors)\n"
        ));
    }
    if report.dry_run {
        out.push_str("dry run: nothing was saved or published\n");
    }
    out
}

fn status_text(outcome: &FlowOutcome, dry_run: bool) -> String {
    let live = match outcome.live_version {
        Some(v) => format!("live v{v}"),
        None => "not published yet".to_owned(),
    };
    let created = |verb: &str| -> String {
        match outcome.topics_created.as_slice() {
            [] => String::new(),
            [one] => format!(", {verb} topic {one:?}"),
            many => format!(
                ", {verb} topics {}",
                many.iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    let version = outcome.version.unwrap_or_default();
    match outcome.status {
        Status::Unchanged => "unchanged".to_owned(),
        Status::DraftSaved => format!("draft saved ({live})"),
        Status::Published => format!("published v{version}{}", created("created")),
        Status::HeldBack if dry_run => format!("would save a draft, not publish ({live})"),
        Status::HeldBack => format!("draft saved, not published ({live})"),
        Status::WouldSaveDraft => format!("would save a draft ({live})"),
        Status::WouldPublish => format!("would publish v{version}{}", created("creating")),
        Status::Invalid if outcome.errors() == 0 => match &outcome.refused {
            Some(reason) => format!("refused by the server: {reason}"),
            None => "refused by the server".to_owned(),
        },
        Status::Invalid => {
            let errors = outcome.errors();
            let warnings = outcome.diagnostics.len() - errors;
            let mut text = count(errors, "error", "errors");
            if warnings > 0 {
                text.push_str(&format!(", {}", count(warnings, "warning", "warnings")));
            }
            match dry_run {
                true => format!("{text} (would not be published)"),
                false => format!("{text}, not published"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = r#"{"format": 1, "id": "restock", "name": "Restock", "start": "a",
      "triggers": [{"type": "keyword", "words": ["restock"]}],
      "blocks": [{"id": "a", "type": "send_message", "messages": [
        {"type": "otn_request", "topic": {"name": "Red sneakers"}, "title": "Tell me"}]}]}"#;

    fn document(text: &str) -> FlowDocument {
        check_bytes(text.as_bytes()).document.unwrap()
    }

    fn topic(id: &str, name: &str) -> TopicView {
        TopicView::named(id, name)
    }

    #[test]
    fn a_topic_named_in_the_file_equals_the_live_version_that_has_its_id() {
        let local = document(FLOW);
        let live = document(&FLOW.replace(r#"{"name": "Red sneakers"}"#, r#"{"id": "t-1"}"#));
        let topics = [topic("t-1", " red SNEAKERS")];
        assert_eq!(
            live_change(&local, Some((3, &live)), &topics),
            LiveChange::Unchanged
        );
        // The same file against the same version: unchanged too.
        assert_eq!(
            live_change(&live, Some((3, &live)), &topics),
            LiveChange::Unchanged
        );
    }

    #[test]
    fn a_name_the_page_lacks_or_a_different_id_is_a_new_version() {
        let local = document(FLOW);
        let live = document(&FLOW.replace(r#"{"name": "Red sneakers"}"#, r#"{"id": "t-1"}"#));
        // The topic was force-deleted since: publishing creates it again.
        assert_eq!(
            live_change(&local, Some((3, &live)), &[]),
            LiveChange::NewVersion {
                live: Some(3),
                topics_to_create: vec!["Red sneakers".into()]
            }
        );
        // The name now belongs to another topic.
        assert_eq!(
            live_change(&local, Some((3, &live)), &[topic("t-2", "Red sneakers")]),
            LiveChange::NewVersion {
                live: Some(3),
                topics_to_create: Vec::new()
            }
        );
        assert_eq!(
            live_change(&local, None, &[topic("t-1", "Red sneakers")]),
            LiveChange::NewVersion {
                live: None,
                topics_to_create: Vec::new()
            }
        );
    }

    fn outcome(flow: &str, status: Status, live_version: Option<u32>) -> FlowOutcome {
        FlowOutcome {
            file: format!("flows/{flow}.json"),
            flow: Some(flow.to_owned()),
            status,
            version: None,
            live_version,
            topics_created: Vec::new(),
            diagnostics: Vec::new(),
            refused: None,
        }
    }

    #[test]
    fn reports_say_what_was_done_or_would_be_done() {
        let mut published = outcome("restock", Status::Published, Some(6));
        published.version = Some(7);
        published.topics_created = vec!["Blue restock".into()];
        let mut invalid = outcome("broken", Status::Invalid, None);
        invalid.diagnostics = with_file(
            "flows/broken.json",
            vec![Diagnostic::new(
                "dangling-target",
                "/start",
                "block `x` does not exist",
            )],
        );
        let mut report = PushReport {
            server: "http://127.0.0.1:8080".into(),
            page: "1001".into(),
            dry_run: false,
            publish: true,
            ok: true,
            flows: vec![outcome("lead", Status::Unchanged, Some(2)), published],
        };
        assert_eq!(
            human_report(&report, false),
            "flows/lead.json (lead): unchanged\n\
             flows/restock.json (restock): published v7, created topic \"Blue restock\"\n\
             pushed 2 flows to Page 1001 on http://127.0.0.1:8080: 1 published, 1 unchanged\n"
        );
        report.dry_run = true;
        report.ok = false;
        report.flows = vec![invalid, outcome("lead", Status::HeldBack, Some(2))];
        assert_eq!(
            human_report(&report, true),
            "flows/broken.json:/start: error[dangling-target]: block `x` does not exist\n\
             flows/broken.json (broken): 1 error (would not be published)\n\
             flows/lead.json (lead): would save a draft, not publish (live v2)\n\
             dry run of 2 flows against Page 1001 on http://127.0.0.1:8080: 1 held back, 1 with errors\n\
             nothing would be published because a file has errors (--keep-going publishes the files without errors)\n\
             dry run: nothing was saved or published\n"
        );
    }

    #[test]
    fn a_changed_text_is_a_new_version() {
        let live = document(FLOW);
        let local = document(&FLOW.replace("Tell me", "Tell me soon"));
        assert_eq!(
            live_change(&local, Some((1, &live)), &[topic("t-1", "Red sneakers")]),
            LiveChange::NewVersion {
                live: Some(1),
                topics_to_create: Vec::new()
            }
        );
    }
}
