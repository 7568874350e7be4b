//! Checks across several flow files: two flows claiming the same trigger, or the same id.

use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::model::{FlowDocument, Trigger};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A diagnostic together with the file it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiagnostic {
    /// The file, as named by the caller.
    pub file: String,
    /// The problem.
    #[serde(flatten)]
    pub diagnostic: Diagnostic,
}

/// What a trigger claims; two flows may not claim the same thing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Claim {
    Keyword(String),
    GetStarted,
    Referral(String),
    Default,
}

impl Claim {
    fn describe(&self) -> String {
        match self {
            Self::Keyword(word) => format!("keyword {word:?}"),
            Self::GetStarted => "the get_started trigger".to_owned(),
            Self::Referral(reference) => format!("referral {reference:?}"),
            Self::Default => "the default trigger".to_owned(),
        }
    }
}

/// Reports triggers that several flows claim (the same keyword after trimming and ignoring
/// case, the same referral `ref`, `get_started` or `default`) and flow ids used twice. Each
/// problem is reported on the later file and names the earlier one; files are taken in order.
pub fn check_trigger_conflicts<'a>(
    flows: impl IntoIterator<Item = (&'a str, &'a FlowDocument)>,
) -> Vec<FileDiagnostic> {
    let mut claimed: HashMap<Claim, (&str, &str)> = HashMap::new();
    let mut ids: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::new();
    for (file, document) in flows {
        if let Some(first) = ids.get(document.id.as_str()) {
            out.push(FileDiagnostic {
                file: file.to_owned(),
                diagnostic: Diagnostic::new(
                    codes::DUPLICATE_FLOW_ID,
                    "/id",
                    format!("flow id `{}` is also used by {first}", document.id),
                ),
            });
        } else {
            ids.insert(document.id.as_str(), file);
        }
        for (t, trigger) in document.triggers.iter().enumerate() {
            for (pointer, claim) in claims(t, trigger) {
                match claimed.get(&claim) {
                    Some((first_file, first_flow)) if *first_flow != document.id.as_str() => {
                        out.push(FileDiagnostic {
                            file: file.to_owned(),
                            diagnostic: Diagnostic::new(
                                codes::CONFLICTING_TRIGGER,
                                pointer,
                                format!(
                                    "{} is also a trigger of flow `{first_flow}` in {first_file}",
                                    claim.describe()
                                ),
                            )
                            .with_hint("each trigger may start only one flow"),
                        });
                    }
                    Some(_) => {}
                    None => {
                        claimed.insert(claim, (file, document.id.as_str()));
                    }
                }
            }
        }
    }
    out
}

/// The `conflicting-trigger` (and `duplicate-flow-id`) errors of `document` against the live
/// flows of its Page, each given with a label naming it ("its live version 3"); a live flow with
/// the document's own id is its previous version and is skipped.
pub fn trigger_conflicts_with_live<'a>(
    document: &'a FlowDocument,
    live: impl IntoIterator<Item = (&'a str, &'a FlowDocument)>,
) -> Vec<Diagnostic> {
    const CHECKED: &str = "the checked flow";
    let others = live
        .into_iter()
        .filter(|(_, other)| other.id != document.id);
    check_trigger_conflicts(others.chain([(CHECKED, document)]))
        .into_iter()
        .filter(|problem| problem.file == CHECKED)
        .map(|problem| problem.diagnostic)
        .collect()
}

fn claims(t: usize, trigger: &Trigger) -> Vec<(String, Claim)> {
    match trigger {
        Trigger::Keyword { words, .. } => words
            .iter()
            .enumerate()
            .filter(|(_, word)| !word.trim().is_empty())
            .map(|(w, word)| {
                (
                    format!("/triggers/{t}/words/{w}"),
                    Claim::Keyword(word.trim().to_lowercase()),
                )
            })
            .collect(),
        Trigger::GetStarted => vec![(format!("/triggers/{t}"), Claim::GetStarted)],
        Trigger::Referral { ref_param } => vec![(
            format!("/triggers/{t}/ref"),
            Claim::Referral(ref_param.trim().to_owned()),
        )],
        Trigger::Default => vec![(format!("/triggers/{t}"), Claim::Default)],
    }
}
