//! `botflow openapi`: prints the OpenAPI 3.1 document of the HTTP interface, generated from the
//! server's handlers (the same document `serve` answers at `/api/openapi.json`).

use std::io::Write;
use std::process::ExitCode;

/// Arguments of `botflow openapi` (none yet).
#[derive(Debug, clap::Args)]
pub(crate) struct OpenapiArgs {}

/// Prints the document to standard output.
pub(crate) fn run(_args: &OpenapiArgs) -> ExitCode {
    let text = botflow_server::openapi_text();
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader stopped early (`botflow openapi | head`): not an error.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: cannot write the OpenAPI document: {err}");
            ExitCode::from(2)
        }
    }
}
