//! The `botflow` command-line tool: a thin clap entry point with one module per subcommand.

mod admin_api;
mod client;
mod flows;
mod migrate;
mod notifications;
mod notify;
mod openapi;
mod output;
mod push;
mod schema;
mod serve;
mod simulate;
mod topics;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// botflow: visual chatbot flows on Facebook Messenger, with One-Time Notifications.
#[derive(Debug, Parser)]
#[command(name = "botflow", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each variant's arguments and behaviour live in the module of the same name.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check flow files (or folders of *.json files) and report every problem.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema (draft 2020-12) of the flow format.
    Schema(schema::SchemaArgs),
    /// Print the OpenAPI 3.1 document of the HTTP interface (admin API, webhook, operations).
    Openapi(openapi::OpenapiArgs),
    /// Play a scripted conversation through a flow and print the transcript.
    Simulate(simulate::SimulateArgs),
    /// Run the webhook, the admin API and the runtime (`--demo` for a first look without secrets).
    Serve(serve::ServeArgs),
    /// Save flow files as drafts on a running server and, with --publish, publish them.
    Push(push::PushArgs),
    /// List, add, rename or delete the OTN topics of a Page on a running server.
    Topics(topics::TopicsArgs),
    /// List flows, their versions, roll back, or pull a live version's source.
    Flows(flows::FlowsArgs),
    /// Apply the PostgreSQL schema migrations (BOTFLOW_DATABASE_URL) and say what was applied.
    Migrate(migrate::MigrateArgs),
    /// Send one message to every subscriber waiting on a topic.
    Notify(notify::NotifyArgs),
    /// List, show or cancel topic notifications (state, totals, time left).
    Notifications(notifications::NotificationsArgs),
}

/// mimalloc instead of glibc's malloc: allocation took about a fifth of the server's CPU per
/// webhook event (`cargo bench -p botflow-server --bench load`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Openapi(args) => openapi::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Push(args) => push::run(&args),
        Command::Topics(args) => topics::run(&args),
        Command::Flows(args) => flows::run(&args),
        Command::Migrate(args) => migrate::run(&args),
        Command::Notify(args) => notify::run(&args),
        Command::Notifications(args) => notifications::run(&args),
    }
}
