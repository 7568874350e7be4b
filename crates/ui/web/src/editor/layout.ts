// Where each block is drawn: its saved `position`, else a place found by dagre that overlaps no
// other block. Tidy up lays out every block with dagre.
import dagre from '@dagrejs/dagre';
import { blockPorts, type Block, type FlowDoc, type Position } from './flow';

export const NODE_WIDTH = 280;
export const START_ID = '__start';

/** A generous estimate of a block card's height (before the browser measures it). */
export function estimateHeight(block: Block): number {
  let h = 52;
  if (block.type === 'send_message') {
    for (const m of block.messages ?? []) {
      h += m.type === 'otn_request' || m.type === 'recurring_request' ? 110 : 70;
      h += 30 * ((m.buttons ?? []).length + (m.quick_replies ?? []).length);
    }
    h += 30;
  } else {
    h += 40 + 28 * blockPorts(block).length;
  }
  return h + 16;
}

function startHeight(doc: FlowDoc): number {
  return 60 + 26 * Math.max(1, (doc.triggers ?? []).length);
}

/** Positions from dagre for the Start node and every block, left to right. */
export function dagrePositions(doc: FlowDoc): Map<string, Position> {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 50, ranksep: 110, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  g.setNode(START_ID, { width: 220, height: startHeight(doc) });
  const ids = new Set(doc.blocks.map((b) => b.id));
  for (const b of doc.blocks) g.setNode(b.id, { width: NODE_WIDTH, height: estimateHeight(b) });
  if (ids.has(doc.start)) g.setEdge(START_ID, doc.start);
  for (const b of doc.blocks)
    for (const p of blockPorts(b)) if (p.target && ids.has(p.target) && p.target !== b.id) g.setEdge(b.id, p.target);
  dagre.layout(g);
  const out = new Map<string, Position>();
  for (const id of g.nodes()) {
    const n = g.node(id);
    out.set(id, { x: Math.round(n.x - n.width / 2), y: Math.round(n.y - n.height / 2) });
  }
  return out;
}

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

function overlaps(a: Rect, b: Rect, gap = 24): boolean {
  return a.x < b.x + b.w + gap && b.x < a.x + a.w + gap && a.y < b.y + b.h + gap && b.y < a.y + a.h + gap;
}

/** Where to draw everything: saved positions win; the rest come from dagre, shifted to line up
 * with the saved ones and moved down until they overlap nothing. */
export function placeBlocks(doc: FlowDoc): Map<string, Position> {
  const auto = dagrePositions(doc);
  const placed: Rect[] = [];
  const out = new Map<string, Position>();
  const saved = doc.blocks.filter((b) => isPosition(b.position));
  let dx = 0;
  let dy = 0;
  if (saved.length > 0) {
    const first = saved[0];
    const a = auto.get(first.id);
    if (a && first.position) {
      dx = first.position.x - a.x;
      dy = first.position.y - a.y;
    }
  }
  for (const b of saved) {
    const p = b.position as Position;
    out.set(b.id, p);
    placed.push({ x: p.x, y: p.y, w: NODE_WIDTH, h: estimateHeight(b) });
  }
  const free = (rect: Rect) => {
    for (let i = 0; i < 200 && placed.some((r) => overlaps(rect, r)); i++) rect.y += 40;
    placed.push(rect);
    return { x: rect.x, y: rect.y };
  };
  for (const b of doc.blocks) {
    if (out.has(b.id)) continue;
    const a = auto.get(b.id) ?? { x: 0, y: 0 };
    out.set(b.id, free({ x: a.x + dx, y: a.y + dy, w: NODE_WIDTH, h: estimateHeight(b) }));
  }
  // The Start node sits left of the start block (it has no position of its own).
  const first = out.get(doc.start) ?? { x: 0, y: 0 };
  out.set(START_ID, free({ x: first.x - 300, y: first.y, w: 220, h: startHeight(doc) }));
  return out;
}

function isPosition(value: unknown): value is Position {
  return typeof value === 'object' && value !== null && typeof (value as Position).x === 'number' && typeof (value as Position).y === 'number';
}
