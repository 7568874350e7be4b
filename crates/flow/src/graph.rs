//! The flow as a petgraph graph: one node per block, one typed edge per reference to a block.

use crate::block_index::BlockIndex;
use crate::ids::BlockId;
use crate::model::{Block, BlockKind, FlowDocument, Message};
use petgraph::graph::{DiGraph, NodeIndex};

/// Which reference of a block an edge comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// The block's `next`.
    Next,
    /// A button's `next`: the subscriber tapped it.
    Button {
        /// Index of the message in the block.
        message: usize,
        /// Index of the button in the message.
        button: usize,
    },
    /// A quick reply's `next`: the subscriber tapped it.
    QuickReply {
        /// Index of the message in the block.
        message: usize,
        /// Index of the quick reply in the message.
        reply: usize,
    },
    /// An OTN request's `on_optin`: the subscriber tapped "Notify me".
    OnOptin {
        /// Index of the message in the block.
        message: usize,
    },
    /// A condition branch's `next`.
    Branch(usize),
    /// A condition's `else`.
    Else,
    /// A `wait_input`'s `on_invalid`: too many invalid replies.
    InvalidInput,
    /// A `wait_input`'s `on_timeout`: no reply in time.
    Timeout,
    /// An `otn_send`'s `on_no_token`: the subscriber holds no usable token.
    NoToken,
}

impl EdgeKind {
    /// JSON Pointer of the reference relative to its block, given the pointer of the message
    /// the reference sits in (used only by message-level edges).
    pub fn pointer_suffix(&self, message_pointer: &str) -> String {
        match self {
            Self::Next => "/next".to_owned(),
            Self::Button { button, .. } => format!("{message_pointer}/buttons/{button}/next"),
            Self::QuickReply { reply, .. } => {
                format!("{message_pointer}/quick_replies/{reply}/next")
            }
            Self::OnOptin { .. } => format!("{message_pointer}/on_optin"),
            Self::Branch(branch) => format!("/branches/{branch}/next"),
            Self::Else => "/else".to_owned(),
            Self::InvalidInput => "/on_invalid".to_owned(),
            Self::Timeout => "/on_timeout".to_owned(),
            Self::NoToken => "/on_no_token".to_owned(),
        }
    }

    /// The message this reference sits in, for message-level edges.
    pub fn message(&self) -> Option<usize> {
        match self {
            Self::Button { message, .. }
            | Self::QuickReply { message, .. }
            | Self::OnOptin { message } => Some(*message),
            _ => None,
        }
    }
}

/// An edge of the flow graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEdge {
    /// Which reference this edge comes from.
    pub kind: EdgeKind,
    /// Whether taking this edge means the subscriber just acted (reply, tap, opt-in),
    /// which opens a new 24-hour window and ends any loop without waiting.
    pub after_input: bool,
    /// Seconds that pass, at least, before the target runs (a delay or a reply timeout).
    pub wait_secs: u64,
}

/// A reference to a block id that no block has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingTarget {
    /// Index of the block holding the reference.
    pub block: usize,
    /// Which reference it is.
    pub kind: EdgeKind,
    /// The id that names no block.
    pub target: BlockId,
}

/// The graph of a flow: node `i` is block `i` of the document (so block indices and
/// [`NodeIndex`] values agree); edges to unknown ids are kept aside as [`DanglingTarget`]s.
#[derive(Debug, Clone)]
pub struct FlowGraph {
    graph: DiGraph<usize, FlowEdge>,
    start: Option<NodeIndex>,
    dangling: Vec<DanglingTarget>,
}

impl FlowGraph {
    /// Builds the graph of a document.
    pub fn build(document: &FlowDocument) -> Self {
        Self::from_blocks(&document.blocks, Some(&document.start))
    }

    /// Builds the graph of a list of blocks with an optional start id. With duplicate ids the
    /// first block of an id receives the edges.
    pub fn from_blocks(blocks: &[Block], start: Option<&BlockId>) -> Self {
        Self::with_index(blocks, start, &BlockIndex::new(blocks))
    }

    /// Builds the graph with an index of `blocks`' ids made by the caller.
    pub(crate) fn with_index(
        blocks: &[Block],
        start: Option<&BlockId>,
        index: &BlockIndex<'_>,
    ) -> Self {
        let mut builder = GraphBuilder::new(blocks.len(), index);
        for (from, block) in blocks.iter().enumerate() {
            builder.add_block(from, block);
        }
        builder.finish(start)
    }

    /// The petgraph graph; node weights are block indices.
    pub fn graph(&self) -> &DiGraph<usize, FlowEdge> {
        &self.graph
    }

    /// The start block's node, when `start` names a block.
    pub fn start(&self) -> Option<NodeIndex> {
        self.start
    }

    /// References to ids that no block has.
    pub fn dangling(&self) -> &[DanglingTarget] {
        &self.dangling
    }

    /// The edges leaving block `block`, with the index of the block each one reaches.
    pub fn edges_from(&self, block: usize) -> impl Iterator<Item = (usize, &FlowEdge)> {
        self.graph.edges(NodeIndex::new(block)).map(|edge| {
            (
                petgraph::visit::EdgeRef::target(&edge).index(),
                edge.weight(),
            )
        })
    }
}

/// Builds a [`FlowGraph`] one block at a time, so that a caller walking the blocks for other
/// checks adds each block while it is in the CPU cache (a large flow does not fit there).
pub(crate) struct GraphBuilder<'i, 'a> {
    graph: DiGraph<usize, FlowEdge>,
    dangling: Vec<DanglingTarget>,
    index: &'i BlockIndex<'a>,
}

impl<'i, 'a> GraphBuilder<'i, 'a> {
    /// A graph of `block_count` nodes without edges; targets are looked up in `index`.
    pub(crate) fn new(block_count: usize, index: &'i BlockIndex<'a>) -> Self {
        let mut graph = DiGraph::with_capacity(block_count, block_count * 2);
        for block in 0..block_count {
            graph.add_node(block);
        }
        Self {
            graph,
            dangling: Vec::new(),
            index,
        }
    }

    /// Adds the edges of block `from`; blocks must be added in order.
    pub(crate) fn add_block(&mut self, from: usize, block: &Block) {
        for_each_reference(block, |kind, target, after_input, wait_secs| {
            match self.index.get(target.as_str()) {
                Some(to) => {
                    self.graph.add_edge(
                        NodeIndex::new(from),
                        NodeIndex::new(to),
                        FlowEdge {
                            kind,
                            after_input,
                            wait_secs,
                        },
                    );
                }
                None => self.dangling.push(DanglingTarget {
                    block: from,
                    kind,
                    target: target.clone(),
                }),
            }
        });
    }

    /// The graph, with `start` looked up.
    pub(crate) fn finish(self, start: Option<&BlockId>) -> FlowGraph {
        let start = start
            .and_then(|id| self.index.get(id.as_str()))
            .map(NodeIndex::new);
        FlowGraph {
            graph: self.graph,
            start,
            dangling: self.dangling,
        }
    }
}

/// Calls `visit` with every block reference of `block`, in document order: edge kind, target,
/// whether it is taken after user input, and seconds waited before the target runs.
fn for_each_reference<'b>(
    block: &'b Block,
    mut refs: impl FnMut(EdgeKind, &'b BlockId, bool, u64),
) {
    let mut next_after_input = false;
    let mut next_wait = 0;
    match &block.kind {
        BlockKind::SendMessage { messages } => {
            for (m, message) in messages.iter().enumerate() {
                match message {
                    Message::Text(text) => {
                        for (b, button) in text.buttons.iter().enumerate() {
                            if let Some(next) = &button.next {
                                let kind = EdgeKind::Button {
                                    message: m,
                                    button: b,
                                };
                                refs(kind, next, true, 0);
                            }
                        }
                        for (r, reply) in text.quick_replies.iter().enumerate() {
                            if let Some(next) = &reply.next {
                                let kind = EdgeKind::QuickReply {
                                    message: m,
                                    reply: r,
                                };
                                refs(kind, next, true, 0);
                            }
                        }
                    }
                    Message::OtnRequest(request) => {
                        if let Some(next) = &request.on_optin {
                            refs(EdgeKind::OnOptin { message: m }, next, true, 0);
                        }
                    }
                    Message::RecurringRequest(request) => {
                        if let Some(next) = &request.on_optin {
                            refs(EdgeKind::OnOptin { message: m }, next, true, 0);
                        }
                    }
                    Message::Image(_) | Message::File(_) => {}
                }
            }
        }
        BlockKind::WaitInput(wait) => {
            next_after_input = true;
            if let Some(next) = &wait.on_invalid {
                refs(EdgeKind::InvalidInput, next, true, 0);
            }
            if let Some(next) = &wait.on_timeout {
                let secs = wait.timeout.map_or(0, |t| t.as_secs());
                refs(EdgeKind::Timeout, next, false, secs);
            }
        }
        BlockKind::Condition(condition) => {
            for (i, branch) in condition.branches.iter().enumerate() {
                refs(EdgeKind::Branch(i), &branch.next, false, 0);
            }
            if let Some(next) = &condition.else_next {
                refs(EdgeKind::Else, next, false, 0);
            }
        }
        BlockKind::Delay { duration } => next_wait = duration.as_secs(),
        BlockKind::OtnSend(send) => {
            if let Some(next) = &send.on_no_token {
                refs(EdgeKind::NoToken, next, false, 0);
            }
        }
        BlockKind::Action { .. } => {}
    }
    if let Some(next) = &block.next {
        refs(EdgeKind::Next, next, next_after_input, next_wait);
    }
}
