//! `botflow validate PATH...`: checks flow files and folders, the CI gate for flow JSON.
//!
//! Exit codes: 0 all valid, 1 problems found (errors, or warnings with `--deny-warnings`),
//! 2 usage or I/O error (e.g. a path that does not exist).

use crate::output::{OutputFormat, count, json_text, plural, push_diagnostic_lines, write_stdout};
use botflow_flow::{FileDiagnostic, FlowDocument, Severity, check_bytes, check_trigger_conflicts};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `botflow validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Flow files, or folders searched recursively for `*.json` files.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format: `human` (rustc-like lines and a summary) or `json` (one array of
    /// diagnostics with file, pointer, code, severity and message).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,
    /// Treat warnings as errors for the exit code.
    #[arg(long)]
    deny_warnings: bool,
}

/// Why a run could not check the flows (also used by `push`, which reads files the same way).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ValidateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no *.json files found in {path}")]
    NoFlows { path: String },
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: &ValidateArgs) -> ExitCode {
    match check_paths(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

fn check_paths(args: &ValidateArgs) -> Result<ExitCode, ValidateError> {
    let files = collect_files(&args.paths)?;
    let mut checked: Vec<(String, Vec<FileDiagnostic>, Option<FlowDocument>)> = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        let bytes = std::fs::read(file).map_err(|source| ValidateError::Read {
            path: name.clone(),
            source,
        })?;
        let report = check_bytes(&bytes);
        let diagnostics = report
            .diagnostics
            .into_iter()
            .map(|diagnostic| FileDiagnostic {
                file: name.clone(),
                diagnostic,
            })
            .collect();
        checked.push((name, diagnostics, report.document));
    }
    let conflicts = check_trigger_conflicts(
        checked
            .iter()
            .filter_map(|(name, _, document)| Some((name.as_str(), document.as_ref()?))),
    );
    for conflict in conflicts {
        if let Some(entry) = checked
            .iter_mut()
            .find(|(name, _, _)| *name == conflict.file)
        {
            entry.1.push(conflict);
        }
    }
    let all: Vec<FileDiagnostic> = checked.into_iter().flat_map(|(_, d, _)| d).collect();
    let errors = all
        .iter()
        .filter(|d| d.diagnostic.severity == Severity::Error)
        .count();
    let warnings = all.len() - errors;
    let output = match args.format {
        OutputFormat::Human => human_output(&all, files.len(), errors, warnings),
        OutputFormat::Json => json_text(&all),
    };
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    let code = if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    write_stdout(&output)?;
    Ok(code)
}

fn human_output(all: &[FileDiagnostic], files: usize, errors: usize, warnings: usize) -> String {
    let mut out = String::new();
    push_diagnostic_lines(&mut out, all);
    let checked = format!("checked {files} {}", plural(files, "file", "files"));
    let verdict = if errors == 0 && warnings == 0 {
        "all valid".to_owned()
    } else {
        format!(
            "{}, {}",
            count(errors, "error", "errors"),
            count(warnings, "warning", "warnings")
        )
    };
    out.push_str(&format!("{checked}: {verdict}\n"));
    out
}

/// The files to check: each file as given, and each folder's `*.json` files, recursively and
/// sorted by path. A path given twice is checked once.
pub(crate) fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ValidateError> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|source| ValidateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if metadata.is_dir() {
            let mut found = Vec::new();
            walk_json_files(path, &mut found)?;
            if found.is_empty() {
                return Err(ValidateError::NoFlows {
                    path: path.display().to_string(),
                });
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|file| seen.insert(file.clone()));
    Ok(files)
}

fn walk_json_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), ValidateError> {
    let read_error = |source| ValidateError::Read {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(read_error)?;
        if file_type.is_dir() {
            walk_json_files(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            found.push(path);
        }
    }
    Ok(())
}
