//! `botflow schema`: prints the JSON Schema of the flow format, generated from the Rust model.

use std::io::Write;
use std::process::ExitCode;

/// Arguments of `botflow schema` (none yet).
#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {}

/// Prints the schema to standard output.
pub(crate) fn run(_args: &SchemaArgs) -> ExitCode {
    let text = botflow_flow::flow_schema_text();
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader stopped early (`botflow schema | head`): not an error.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: cannot write the schema: {err}");
            ExitCode::from(2)
        }
    }
}
