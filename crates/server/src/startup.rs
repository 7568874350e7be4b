//! Start-up work on the store: registering the configured Pages and publishing a folder of flows.

use botflow_flow::{Diagnostic, parse_flow};
use botflow_storage::{PageId, Published, Store, StoreError};
use std::path::{Path, PathBuf};

/// Why start-up could not prepare the store.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A store call failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The flows folder could not be listed or a file in it read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A flow file does not parse or has validation errors; nothing of it was published.
    #[error("{path} cannot be published:\n{}", render(.diagnostics))]
    InvalidFlow {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        diagnostics: Vec<Diagnostic>,
    },
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {}: {}[{}]: {}", d.pointer, d.severity, d.code, d.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Registers every configured Page in the store (idempotent).
pub fn register_pages(
    store: &dyn Store,
    pages: &[PageId],
    now_ms: u64,
) -> Result<(), StartupError> {
    for page in pages {
        store.ensure_page(page, now_ms)?;
    }
    Ok(())
}

/// One flow file published at start-up.
#[derive(Debug, Clone)]
pub struct PublishedFile {
    /// Where the flow came from (a file path or `embedded:<name>`).
    pub origin: String,
    /// The Page it was published on.
    pub page: PageId,
    /// The outcome (an unchanged document makes no new version).
    pub published: Published,
}

/// Reads every `*.json` file of `dir` (sorted by name) as flow text.
pub fn read_flows_dir(dir: &Path) -> Result<Vec<(String, String)>, StartupError> {
    let read_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StartupError::Read { path, source }
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        let path = entry.map_err(read_error(dir))?.path();
        if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(read_error(&path))?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}

/// Publishes each flow text on every Page; a flow equal to its live version makes no new
/// version, so restarts are idempotent. Any flow with errors stops start-up, naming its file.
pub fn publish_flows(
    store: &dyn Store,
    pages: &[PageId],
    flows: &[(String, String)],
    now_ms: u64,
) -> Result<Vec<PublishedFile>, StartupError> {
    let mut documents = Vec::new();
    for (origin, text) in flows {
        let document = parse_flow(text).map_err(|diagnostics| StartupError::InvalidFlow {
            path: PathBuf::from(origin),
            diagnostics,
        })?;
        documents.push((origin, document));
    }
    let mut published = Vec::new();
    for page in pages {
        for (origin, document) in &documents {
            let outcome = store
                .publish_document(page, document.clone(), now_ms)
                .map_err(|err| match err {
                    StoreError::FlowInvalid { diagnostics, .. }
                    | StoreError::FlowParse { diagnostics } => StartupError::InvalidFlow {
                        path: PathBuf::from(origin.as_str()),
                        diagnostics,
                    },
                    other => StartupError::Store(other),
                })?;
            published.push(PublishedFile {
                origin: (*origin).clone(),
                page: page.clone(),
                published: outcome,
            });
        }
    }
    Ok(published)
}
