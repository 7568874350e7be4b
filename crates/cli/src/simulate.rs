//! `botflow simulate FLOW.json --script CONVERSATION.json`: plays a scripted conversation through
//! the runtime's real step function and prints the transcript.
//!
//! Exit codes: 0 every expectation held, 1 an expectation failed, 2 unreadable or invalid input
//! (a flow with errors, a malformed script, a missing file).

use botflow_flow::{ValidFlow, check_text, render_human};
use botflow_runtime::simulate::{Script, run_script};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `botflow simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimulateArgs {
    /// The flow file to run; the script's `flows` may add more (relative to this file's folder).
    #[arg(value_name = "FLOW")]
    flow: PathBuf,
    /// The conversation script (JSON): page, psid, fields, flows and steps.
    #[arg(long, value_name = "CONVERSATION")]
    script: PathBuf,
    /// Print the transcript only when an expectation fails.
    #[arg(long)]
    quiet: bool,
}

/// Why the input could not be simulated.
#[derive(Debug, thiserror::Error)]
enum SimulateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid flow:\n{problems}")]
    InvalidFlow { path: String, problems: String },
    #[error("{path} is not a valid conversation script: {source}")]
    Script {
        path: String,
        source: serde_json::Error,
    },
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: &SimulateArgs) -> ExitCode {
    let (flows, script) = match load(args) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let report = run_script(&flows, &script);
    if !args.quiet || !report.passed() {
        print!("{}", report.transcript);
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{}: {} expectation(s) failed:",
            args.script.display(),
            report.failures.len()
        );
        for failure in &report.failures {
            eprintln!("  {failure}");
        }
        ExitCode::from(1)
    }
}

fn read(path: &Path) -> Result<String, SimulateError> {
    std::fs::read_to_string(path).map_err(|source| SimulateError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn load_flow(path: &Path) -> Result<ValidFlow, SimulateError> {
    let name = path.display().to_string();
    let report = check_text(&read(path)?);
    let invalid = |problems: String| SimulateError::InvalidFlow {
        path: name.clone(),
        problems,
    };
    let errors: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| render_human(&name, d))
        .collect();
    if !errors.is_empty() {
        return Err(invalid(errors.join("\n")));
    }
    let document = report
        .document
        .ok_or_else(|| invalid("the document could not be read".to_owned()))?;
    ValidFlow::new(document).map_err(|diagnostics| {
        invalid(
            diagnostics
                .iter()
                .map(|d| render_human(&name, d))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

fn load(args: &SimulateArgs) -> Result<(Vec<ValidFlow>, Script), SimulateError> {
    let script: Script =
        serde_json::from_str(&read(&args.script)?).map_err(|source| SimulateError::Script {
            path: args.script.display().to_string(),
            source,
        })?;
    let mut flows = vec![load_flow(&args.flow)?];
    let folder = args.flow.parent().unwrap_or(Path::new("."));
    for extra in &script.flows {
        flows.push(load_flow(&folder.join(extra))?);
    }
    Ok((flows, script))
}
