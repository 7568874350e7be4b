//! The validation entry points: from JSON text ([`check_text`]) or from a typed document
//! ([`validate`]), optionally against a store's topics.

use crate::block_index::BlockIndex;
use crate::codes;
use crate::diagnose::{Structure, read_structure};
use crate::diagnostic::{Diagnostic, Severity, TextLocation, sort_by_pointer};
use crate::graph::GraphBuilder;
use crate::graph_rules::check_graph;
use crate::model::{FORMAT_VERSION, FlowDocument};
use crate::outline::{Origins, Outline};
use crate::reader::read_document;
use crate::rules::check_content;
use crate::topics::TopicLookup;
use std::collections::HashSet;

/// The outcome of checking one flow file: the document when every part of it parsed, and every
/// problem found (structural and rule problems alike).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The typed document; `None` when some part of the text could not be read.
    pub document: Option<FlowDocument>,
    /// Every problem found, errors and warnings, in the order the checks ran.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Whether the flow may be published (no errors; warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.error_count() == 0
    }
}

/// Reads and checks flow JSON text, reporting every problem with its JSON Pointer.
pub fn check_text(text: &str) -> Report {
    check_text_inner(text, None)
}

/// Like [`check_text`] for the raw bytes of a file: text that is not UTF-8, or that starts with a
/// byte order mark, is reported as `invalid-json` with its line and column.
pub fn check_bytes(bytes: &[u8]) -> Report {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.starts_with('\u{feff}') => not_json(
            Diagnostic::new(
                codes::INVALID_JSON,
                "",
                "the text starts with a byte order mark (BOM), which JSON does not allow",
            )
            .with_hint("save the file as UTF-8 without BOM"),
            TextLocation { line: 1, column: 1 },
        ),
        Ok(text) => check_text(text),
        Err(err) => {
            let valid = String::from_utf8_lossy(&bytes[..err.valid_up_to()]);
            let line_start = valid.rfind('\n').map_or(0, |at| at + 1);
            let location = TextLocation {
                line: valid.matches('\n').count() + 1,
                column: valid[line_start..].chars().count() + 1,
            };
            let byte = bytes.get(err.valid_up_to()).copied().unwrap_or_default();
            let message = format!("the text is not UTF-8 (byte {byte:#04x} is not valid here)");
            not_json(Diagnostic::new(codes::INVALID_JSON, "", message), location)
        }
    }
}

/// A report of one syntax problem at `location`, with no document.
fn not_json(mut diagnostic: Diagnostic, location: TextLocation) -> Report {
    diagnostic.location = Some(location);
    Report {
        document: None,
        diagnostics: vec![diagnostic],
    }
}

/// Like [`check_text`], and reports topic ids that `topics` does not know (`unknown-topic`).
pub fn check_text_with_topics(text: &str, topics: &dyn TopicLookup) -> Report {
    check_text_inner(text, Some(topics))
}

/// The document of `text` and its warnings when the one reader reads all of it in format 1.
fn read_format_1(text: &str) -> Option<(FlowDocument, Vec<Diagnostic>)> {
    read_document(text)
        .ok()
        .filter(|(document, _)| document.format == FORMAT_VERSION)
}

fn check_text_inner(text: &str, topics: Option<&dyn TopicLookup>) -> Report {
    // A well-formed file is read straight into the model (no `Value` tree); the diagnostic walk
    // below runs only when the reader stops at a problem, to find every problem.
    if let Some((document, mut diagnostics)) = read_format_1(text) {
        diagnostics.extend(validate_inner(&document, topics));
        sort_by_pointer(&mut diagnostics);
        return Report {
            document: Some(document),
            diagnostics,
        };
    }
    let mut structure = read_structure(text);
    if !structure.is_json {
        return Report {
            document: None,
            diagnostics: structure.diagnostics,
        };
    }
    let complete = structure.complete();
    let mut diagnostics = std::mem::take(&mut structure.diagnostics);
    let block_origins = std::mem::take(&mut structure.origins);
    let identity = block_origins.iter().enumerate().all(|(i, o)| {
        o.index == i
            && o.messages.len() == o.message_count
            && o.messages.iter().enumerate().all(|(j, &m)| m == j)
    });
    let origins: Origins = (!identity).then_some(block_origins);
    let outline = Outline {
        flow_id: structure.id.as_ref(),
        triggers: &structure.triggers,
        start: structure.start.as_ref(),
        blocks: &structure.blocks,
        origins: &origins,
        broken_ids: &structure.broken_ids,
        complete,
    };
    run_rules(&outline, topics, &mut diagnostics);
    sort_by_pointer(&mut diagnostics);
    let document = if complete {
        into_document(structure)
    } else {
        None
    };
    Report {
        document,
        diagnostics,
    }
}

/// Reads flow JSON text into a document. Fails with the structural problems (syntax errors with
/// line and column, unknown types, malformed fields); rule problems are left to [`validate`].
pub fn parse_flow(text: &str) -> Result<FlowDocument, Vec<Diagnostic>> {
    if let Some((document, _)) = read_format_1(text) {
        return Ok(document);
    }
    let structure = read_structure(text);
    if !structure.complete() {
        let errors = structure
            .diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect();
        return Err(errors);
    }
    into_document(structure).ok_or_else(Vec::new)
}

/// The typed document of a structure whose required top-level fields all parsed.
fn into_document(structure: Structure) -> Option<FlowDocument> {
    Some(FlowDocument {
        format: structure.format.unwrap_or(FORMAT_VERSION),
        id: structure.id?,
        name: structure.name?,
        triggers: structure.triggers,
        start: structure.start?,
        blocks: structure.blocks,
        ui: structure.ui,
    })
}

/// Checks a document against every validation rule and returns all problems found.
pub fn validate(document: &FlowDocument) -> Vec<Diagnostic> {
    validate_inner(document, None)
}

/// Like [`validate`], and reports topic ids that `topics` does not know (`unknown-topic`).
pub fn validate_with_topics(document: &FlowDocument, topics: &dyn TopicLookup) -> Vec<Diagnostic> {
    validate_inner(document, Some(topics))
}

fn validate_inner(document: &FlowDocument, topics: Option<&dyn TopicLookup>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    if document.format != FORMAT_VERSION {
        diagnostics.push(
            Diagnostic::new(
                codes::UNSUPPORTED_FORMAT,
                "/format",
                format!("format {} is not supported", document.format),
            )
            .with_hint(format!("this botflow reads \"format\": {FORMAT_VERSION}")),
        );
    }
    let broken_ids = HashSet::new();
    let outline = Outline {
        flow_id: Some(&document.id),
        triggers: &document.triggers,
        start: Some(&document.start),
        blocks: &document.blocks,
        origins: &None,
        broken_ids: &broken_ids,
        complete: true,
    };
    run_rules(&outline, topics, &mut diagnostics);
    sort_by_pointer(&mut diagnostics);
    diagnostics
}

fn run_rules(outline: &Outline<'_>, topics: Option<&dyn TopicLookup>, out: &mut Vec<Diagnostic>) {
    let index = BlockIndex::new(outline.blocks);
    // One walk over the blocks both checks their content and adds their edges to the graph.
    let mut builder = GraphBuilder::new(outline.blocks.len(), &index);
    check_content(outline, &index, topics, out, |i, block| {
        builder.add_block(i, block);
    });
    let graph = builder.finish(outline.start);
    check_graph(outline, &graph, out);
}
