//! `botflow topics list | add NAME | rename ID-OR-NAME NEW | delete ID-OR-NAME [--force]`: the
//! OTN topics of a Page on a running server.

use crate::admin_api::{DeletedView, TopicView};
use crate::client::{AdminClient, Body, ClientError, ConnectionArgs};
use crate::output::{OutputFormat, json_text, table, write_stdout};
use botflow_storage::topic::topic_name_key;
use reqwest::Method;
use serde_json::json;
use std::process::ExitCode;

/// Arguments of `botflow topics`.
#[derive(Debug, clap::Args)]
pub(crate) struct TopicsArgs {
    #[command(subcommand)]
    command: TopicsCommand,
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Output format: `human` or `json` (the server's topic objects).
    #[arg(long, value_enum, default_value_t, global = true)]
    format: OutputFormat,
}

/// What to do with topics.
#[derive(Debug, clap::Subcommand)]
enum TopicsCommand {
    /// List the topics: name, id, waiting opt-ins and the flows that use each.
    List,
    /// Create a topic (1 to 65 characters, unique per Page ignoring case).
    Add {
        /// The new topic's name.
        name: String,
    },
    /// Rename a topic; its id and waiting opt-ins stay.
    Rename {
        /// The topic's id or current name.
        #[arg(value_name = "ID-OR-NAME")]
        topic: String,
        /// The new name.
        #[arg(value_name = "NEW")]
        new_name: String,
    },
    /// Delete a topic; refused while a live flow uses it unless --force. Its unused opt-ins are
    /// invalidated.
    Delete {
        /// The topic's id or name.
        #[arg(value_name = "ID-OR-NAME")]
        topic: String,
        /// Delete even when live flows use it.
        #[arg(long)]
        force: bool,
    },
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: &TopicsArgs) -> ExitCode {
    crate::client::run_command(topics(args))
}

async fn topics(args: &TopicsArgs) -> Result<ExitCode, ClientError> {
    let client = AdminClient::connect(&args.connection).await?;
    let json = args.format == OutputFormat::Json;
    let output = match &args.command {
        TopicsCommand::List => {
            let topics = list_topics(&client).await?;
            match json {
                true => json_text(&topics),
                false => topic_table(&topics),
            }
        }
        TopicsCommand::Add { name } => {
            let topic: TopicView = client
                .page_request(
                    Method::POST,
                    &["topics"],
                    &[],
                    Body::Json(&json!({"name": name})),
                )
                .await?;
            match json {
                true => json_text(&topic),
                false => format!("created topic {:?} (id {})\n", topic.name, topic.id),
            }
        }
        TopicsCommand::Rename { topic, new_name } => {
            let old = find_topic(&client, topic).await?;
            let renamed: TopicView = client
                .page_request(
                    Method::PATCH,
                    &["topics", &old.id],
                    &[],
                    Body::Json(&json!({"name": new_name})),
                )
                .await?;
            match json {
                true => json_text(&renamed),
                false => format!(
                    "renamed topic {:?} to {:?} (id {})\n",
                    old.name, renamed.name, renamed.id
                ),
            }
        }
        TopicsCommand::Delete { topic, force } => {
            let topic = find_topic(&client, topic).await?;
            let query: &[(&str, &str)] = match force {
                true => &[("force", "true")],
                false => &[],
            };
            let deleted: DeletedView = client
                .page_request(Method::DELETE, &["topics", &topic.id], query, Body::Empty)
                .await
                .map_err(|err| match err {
                    ClientError::Refused { status: 409, code, message, diagnostics } => {
                        ClientError::Refused {
                            status: 409,
                            code,
                            message: format!("{message}; pass --force to delete it anyway (its waiting opt-ins are invalidated)"),
                            diagnostics,
                        }
                    }
                    other => other,
                })?;
            match json {
                true => json_text(&deleted),
                false => format!(
                    "deleted topic {:?} (id {}); {} waiting opt-in(s) invalidated\n",
                    deleted.deleted.name, deleted.deleted.id, deleted.invalidated_tokens
                ),
            }
        }
    };
    write_stdout(&output)?;
    Ok(ExitCode::SUCCESS)
}

/// Every topic of the client's Page.
pub(crate) async fn list_topics(client: &AdminClient) -> Result<Vec<TopicView>, ClientError> {
    client
        .page_request(Method::GET, &["topics"], &[], Body::Empty)
        .await
}

/// The topic whose id is `key`, else whose name is `key` (trimmed, ignoring case, as the server
/// compares names); a refusal naming the Page's topics when there is none.
pub(crate) async fn find_topic(client: &AdminClient, key: &str) -> Result<TopicView, ClientError> {
    let topics = list_topics(client).await?;
    if let Some(topic) = pick_topic(&topics, key) {
        return Ok(topic.clone());
    }
    let known = match topics.is_empty() {
        true => "it has no topics".to_owned(),
        false => format!(
            "its topics: {}",
            topics
                .iter()
                .map(|t| format!("{:?}", t.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(ClientError::Refused {
        status: 404,
        code: "not_found".to_owned(),
        message: format!(
            "Page {} has no topic with id or name {key:?} ({known})",
            client.page()
        ),
        diagnostics: Vec::new(),
    })
}

/// The topic named by id first, then by name.
fn pick_topic<'a>(topics: &'a [TopicView], key: &str) -> Option<&'a TopicView> {
    topics.iter().find(|t| t.id == key).or_else(|| {
        let wanted = topic_name_key(key);
        topics.iter().find(|t| topic_name_key(&t.name) == wanted)
    })
}

fn topic_table(topics: &[TopicView]) -> String {
    if topics.is_empty() {
        return "no topics\n".to_owned();
    }
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.id.clone(),
                t.usable_tokens.to_string(),
                match t.used_by.is_empty() {
                    true => "-".to_owned(),
                    false => t.used_by.join(", "),
                },
            ]
        })
        .collect();
    table(&["NAME", "ID", "WAITING OPT-INS", "USED BY"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(id: &str, name: &str) -> TopicView {
        TopicView::named(id, name)
    }

    #[test]
    fn topics_are_found_by_id_then_by_name_ignoring_case() {
        let topics = [
            topic("t-1", "Red sneakers restock"),
            topic("Sale", "t-1 alias"),
        ];
        assert_eq!(
            pick_topic(&topics, "t-1").unwrap().name,
            "Red sneakers restock"
        );
        assert_eq!(
            pick_topic(&topics, " red SNEAKERS restock ").unwrap().id,
            "t-1"
        );
        // An id wins over a name that happens to be equal.
        assert_eq!(pick_topic(&topics, "Sale").unwrap().name, "t-1 alias");
        assert!(pick_topic(&topics, "blue").is_none());
    }
}
