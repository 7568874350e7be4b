//! Rules on the flow graph: dangling targets, unreachable blocks, loops that never wait for the
//! subscriber, and messages that may leave the 24-hour window. All run in linear time.

use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::graph::FlowGraph;
use crate::model::{Block, BlockKind};
use crate::outline::Outline;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// Length of Messenger's standard messaging window, in seconds.
pub const WINDOW_SECS: u64 = 24 * 3_600;

/// The hint of a dangling target without a close block id.
const NO_SUGGESTION: &str = "point it at the id of an existing block";

/// Elapsed time that no finite number of seconds bounds (a delay inside a loop).
const UNBOUNDED: u64 = u64::MAX;

/// Checks `start` and every edge target; on a complete flow also reachability, endless loops
/// and the 24-hour window.
pub(crate) fn check_graph(outline: &Outline<'_>, graph: &FlowGraph, out: &mut Vec<Diagnostic>) {
    check_targets(outline, graph, out);
    if outline.complete {
        // A block or message that did not parse may hold the only edge to another block.
        check_reachable(outline, graph, out);
    }
    // Loops and the window are safe on a partial graph: a part that did not parse only removes
    // nodes, input edges and input points, which can hide a problem but never invent one.
    let quick = quick_subgraph(graph);
    let sccs = components(&quick);
    check_endless_loops(outline, &sccs, out);
    check_window(outline, graph, &quick, sccs, out);
}

fn check_targets(outline: &Outline<'_>, graph: &FlowGraph, out: &mut Vec<Diagnostic>) {
    if let Some(start) = outline.start {
        let known = graph.start().is_some() || outline.broken_ids.contains(start.as_str());
        if !known && !start.as_str().trim().is_empty() {
            out.push(
                Diagnostic::new(
                    codes::DANGLING_TARGET,
                    "/start",
                    format!("`start` names block `{start}`, which does not exist"),
                )
                .with_hint(did_you_mean_block(outline.blocks, start.as_str())),
            );
        }
    }
    // Suggestions compare a name with every id: only the first few get one, to stay linear.
    let mut suggestions_left = 50usize;
    for dangling in graph.dangling() {
        if outline.broken_ids.contains(dangling.target.as_str()) {
            continue;
        }
        let hint = if suggestions_left > 0 {
            suggestions_left -= 1;
            did_you_mean_block(outline.blocks, dangling.target.as_str())
        } else {
            NO_SUGGESTION.to_owned()
        };
        let message_pointer = dangling
            .kind
            .message()
            .map(|m| outline.message_pointer(dangling.block, m))
            .unwrap_or_default();
        let suffix = dangling.kind.pointer_suffix(&message_pointer);
        let pointer = if dangling.kind.message().is_some() {
            suffix
        } else {
            format!("{}{suffix}", outline.block_pointer(dangling.block))
        };
        out.push(
            Diagnostic::new(
                codes::DANGLING_TARGET,
                pointer,
                format!("block `{}` does not exist", dangling.target),
            )
            .with_hint(hint),
        );
    }
}

fn did_you_mean_block(blocks: &[Block], missing: &str) -> String {
    // Suggestions compare with every id; skip them on huge flows to stay linear.
    if blocks.len() > 5_000 {
        return NO_SUGGESTION.to_owned();
    }
    match crate::suggest::closest(missing, blocks.iter().map(|b| b.id.as_str())) {
        Some(id) => format!("did you mean `{id}`?"),
        None => NO_SUGGESTION.to_owned(),
    }
}

fn check_reachable(outline: &Outline<'_>, graph: &FlowGraph, out: &mut Vec<Diagnostic>) {
    let Some(start) = graph.start() else {
        return;
    };
    let mut seen = vec![false; outline.blocks.len()];
    let mut stack = vec![start.index()];
    seen[start.index()] = true;
    while let Some(block) = stack.pop() {
        for (to, _) in graph.edges_from(block) {
            if !seen[to] {
                seen[to] = true;
                stack.push(to);
            }
        }
    }
    for (index, reached) in seen.iter().enumerate() {
        if !reached {
            out.push(
                Diagnostic::new(
                    codes::UNREACHABLE_BLOCK,
                    outline.block_pointer(index),
                    format!(
                        "block `{}` cannot be reached from the start block",
                        outline.blocks[index].id
                    ),
                )
                .with_hint("connect it to the flow, or delete it"),
            );
        }
    }
}

/// The graph of edges taken without the subscriber acting; weights are seconds waited.
fn quick_subgraph(graph: &FlowGraph) -> DiGraph<(), u64> {
    let full = graph.graph();
    let mut quick = DiGraph::with_capacity(full.node_count(), full.edge_count());
    for _ in 0..full.node_count() {
        quick.add_node(());
    }
    for edge in full.raw_edges() {
        if !edge.weight.after_input {
            quick.add_edge(edge.source(), edge.target(), edge.weight.wait_secs);
        }
    }
    quick
}

/// Strongly connected components of `quick` in topological order, each with whether it is a cycle.
fn components(quick: &DiGraph<(), u64>) -> Vec<(Vec<NodeIndex>, bool)> {
    // Kosaraju, not Tarjan: petgraph's Tarjan recurses once per block of a chain and overflows a
    // 2 MiB thread stack on a few thousand blocks; Kosaraju walks iteratively. Both yield the
    // components in reverse topological order.
    let mut sccs = kosaraju_scc(quick);
    sccs.reverse();
    sccs.into_iter()
        .map(|scc| {
            let cyclic = scc.len() > 1 || quick.find_edge(scc[0], scc[0]).is_some();
            (scc, cyclic)
        })
        .collect()
}

fn check_endless_loops(
    outline: &Outline<'_>,
    sccs: &[(Vec<NodeIndex>, bool)],
    out: &mut Vec<Diagnostic>,
) {
    let mut loops: Vec<Vec<usize>> = sccs
        .iter()
        .filter(|(_, cyclic)| *cyclic)
        .map(|(scc, _)| {
            let mut blocks: Vec<usize> = scc.iter().map(|n| n.index()).collect();
            blocks.sort_unstable();
            blocks
        })
        .collect();
    loops.sort_unstable();
    for blocks in loops {
        let names: Vec<String> = blocks
            .iter()
            .take(5)
            .map(|&b| format!("`{}`", outline.blocks[b].id))
            .collect();
        let more = if blocks.len() > 5 {
            format!(" and {} more", blocks.len() - 5)
        } else {
            String::new()
        };
        out.push(
            Diagnostic::new(
                codes::ENDLESS_LOOP,
                outline.block_pointer(blocks[0]),
                if blocks.len() == 1 {
                    format!(
                        "block {} leads back to itself without waiting for the subscriber",
                        names.join("")
                    )
                } else {
                    format!(
                        "blocks {}{more} form a loop that never waits for the subscriber",
                        names.join(", ")
                    )
                },
            )
            .with_hint("put a wait_input or a message with buttons/quick replies (and no `next`) in the loop"),
        );
    }
}

/// Longest time since the subscriber's last input at which each block may run, by dynamic
/// programming over the strongly connected components of the quick subgraph in topological order.
fn check_window(
    outline: &Outline<'_>,
    graph: &FlowGraph,
    quick: &DiGraph<(), u64>,
    sccs: Vec<(Vec<NodeIndex>, bool)>,
    out: &mut Vec<Diagnostic>,
) {
    let blocks = outline.blocks;
    // `None`: no path from a user input reaches the block without another input in between.
    let mut elapsed: Vec<Option<u64>> = vec![None; blocks.len()];
    for edge in graph.graph().raw_edges() {
        if edge.weight.after_input {
            elapsed[edge.target().index()] = Some(0);
        }
    }
    if let Some(start) = graph.start() {
        let value = if start_is_user_input(outline) || !outline.complete {
            0
        } else {
            UNBOUNDED
        };
        let slot = &mut elapsed[start.index()];
        *slot = Some(slot.map_or(value, |v| v.max(value)));
    }
    let mut component_of = vec![0usize; blocks.len()];
    for (c, (scc, _)) in sccs.iter().enumerate() {
        for node in scc {
            component_of[node.index()] = c;
        }
    }
    for (c, (scc, cyclic)) in sccs.into_iter().enumerate() {
        let Some(mut entry) = scc.iter().filter_map(|n| elapsed[n.index()]).max() else {
            continue;
        };
        if cyclic {
            let waits_inside = scc.iter().any(|&n| {
                quick.edges(n).any(|e| {
                    *e.weight() > 0
                        && component_of[petgraph::visit::EdgeRef::target(&e).index()] == c
                })
            });
            if waits_inside {
                entry = UNBOUNDED;
            }
        }
        for &node in &scc {
            elapsed[node.index()] = Some(entry);
            for edge in quick.edges(node) {
                let to = petgraph::visit::EdgeRef::target(&edge).index();
                let at = entry.saturating_add(*edge.weight());
                elapsed[to] = Some(elapsed[to].map_or(at, |v| v.max(at)));
            }
        }
    }
    for (index, block) in blocks.iter().enumerate() {
        let Some(at) = elapsed[index] else { continue };
        if at <= WINDOW_SECS {
            continue;
        }
        let pointer = match &block.kind {
            BlockKind::SendMessage { messages } if !messages.is_empty() => {
                outline.block_pointer(index)
            }
            BlockKind::WaitInput(wait) if wait.prompt.is_some() => {
                format!("{}/prompt", outline.block_pointer(index))
            }
            _ => continue,
        };
        let when = if at == UNBOUNDED {
            "an unbounded time".to_owned()
        } else {
            format_secs(at)
        };
        out.push(
            Diagnostic::new(
                codes::OUTSIDE_24H_WINDOW,
                pointer,
                format!(
                    "block `{}` may send a message {when} after the subscriber's last input, outside Messenger's 24-hour window",
                    block.id
                ),
            )
            .with_hint("ask for input first (wait_input, buttons, quick replies), shorten the delays, or send with an otn_send block"),
        );
    }
}

/// Whether the start block runs right after a subscriber's action. A flow with triggers starts
/// on a message, postback or referral; a flow without triggers and without `otn_send` is a
/// sub-flow entered by `goto_flow` from a conversation. A flow without triggers that uses
/// `otn_send` is a notification flow started from the API, possibly long after the last input.
fn start_is_user_input(outline: &Outline<'_>) -> bool {
    !outline.triggers.is_empty()
        || !outline
            .blocks
            .iter()
            .any(|b| matches!(b.kind, BlockKind::OtnSend(_)))
}

fn format_secs(secs: u64) -> String {
    let hours = secs / 3_600;
    let minutes = (secs % 3_600) / 60;
    if minutes == 0 {
        format!("{hours} h")
    } else {
        format!("{hours} h {minutes} min")
    }
}
