//! The `botflow` command-line tool: a thin clap entry point with one module per subcommand.

mod openapi;
mod schema;
mod serve;
mod simulate;
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
    // `Serve` and `Simulate` are added here by their owners: one variant and one module each.
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Openapi(args) => openapi::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Serve(args) => serve::run(&args),
    }
}
