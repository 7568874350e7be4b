//! The view of a (possibly partial) flow that the rules check, with the JSON Pointers of its parts.
//!
//! When some blocks or messages of a file do not parse, the typed document holds only the parts
//! that did; [`Origins`] maps their positions back to the positions in the file, so every
//! diagnostic points at the value as written.

use crate::diagnostic::escape_pointer_token;
use crate::ids::{BlockId, FlowId};
use crate::model::{Block, Trigger};
use std::collections::HashSet;

/// Where one typed block came from in the file: its index and the indices of its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockOrigin {
    /// Index in the file's `blocks` array.
    pub(crate) index: usize,
    /// Index in the file's `messages` array of each typed message (send_message only).
    pub(crate) messages: Vec<usize>,
    /// Number of messages in the file's `messages` array, parsed or not.
    pub(crate) message_count: usize,
}

/// Maps typed positions back to file positions; `None` means "the same positions".
pub(crate) type Origins = Option<Vec<BlockOrigin>>;

/// What the rules look at: the parts of a flow and how to point into the file.
pub(crate) struct Outline<'a> {
    /// The flow's id, when given.
    pub(crate) flow_id: Option<&'a FlowId>,
    /// The flow's triggers that parsed.
    pub(crate) triggers: &'a [Trigger],
    /// The start block id, when given.
    pub(crate) start: Option<&'a BlockId>,
    /// The blocks that parsed.
    pub(crate) blocks: &'a [Block],
    /// Positions in the file of the typed blocks and messages.
    pub(crate) origins: &'a Origins,
    /// Ids of blocks that are in the file but did not parse (edges to them are not dangling).
    pub(crate) broken_ids: &'a HashSet<String>,
    /// Whether every part of the file parsed; whole-graph rules only run on a complete flow.
    pub(crate) complete: bool,
}

impl Outline<'_> {
    /// JSON Pointer of typed block `block`.
    pub(crate) fn block_pointer(&self, block: usize) -> String {
        let index = match self.origins {
            Some(origins) => origins.get(block).map_or(block, |o| o.index),
            None => block,
        };
        format!("/blocks/{index}")
    }

    /// Number of messages block `block` has in the file, including ones that did not parse.
    pub(crate) fn message_count(&self, block: usize, typed: usize) -> usize {
        match self.origins {
            Some(origins) => origins.get(block).map_or(typed, |o| o.message_count),
            None => typed,
        }
    }

    /// JSON Pointer of typed message `message` of typed block `block`.
    pub(crate) fn message_pointer(&self, block: usize, message: usize) -> String {
        let index = match self.origins {
            Some(origins) => origins
                .get(block)
                .and_then(|o| o.messages.get(message))
                .copied()
                .unwrap_or(message),
            None => message,
        };
        format!("{}/messages/{index}", self.block_pointer(block))
    }
}

/// Appends one reference token to a JSON Pointer.
pub(crate) fn push_token(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", escape_pointer_token(token))
}
