// Maps each diagnostic's JSON Pointer onto what the canvas draws: a block badge, a message
// outline, a red port, the Start node, or the banner.
import type { Diagnostic } from '../api/client';
import { EDGE_FIELDS, type FlowDoc } from './flow';

export interface Placement {
  /** The block it belongs to. */
  block?: string;
  /** The message inside the block. */
  message?: number;
  /** The port (edge field path inside the block) drawn red. */
  port?: string;
  /** On the Start node (start, triggers). */
  start?: boolean;
}

function unescape(part: string): string {
  return part.replace(/~1/g, '/').replace(/~0/g, '~');
}

export function placeDiagnostic(doc: FlowDoc | null, pointer: string): Placement {
  const parts = pointer.split('/').slice(1).map(unescape);
  if (parts[0] === 'start' || parts[0] === 'triggers') return { start: true };
  if (parts[0] !== 'blocks' || parts.length < 2) return {};
  const index = Number(parts[1]);
  const block = doc?.blocks[index]?.id;
  if (block === undefined) return {};
  const rest = parts.slice(2);
  const placement: Placement = { block };
  if (rest[0] === 'messages' && rest.length >= 2) placement.message = Number(rest[1]);
  const last = rest[rest.length - 1];
  if (last && (EDGE_FIELDS as readonly string[]).includes(last)) placement.port = rest.join('/');
  return placement;
}

/** What a block shows: its errors and warnings, outlined messages, red ports and flags. */
export interface BlockProblems {
  errors: Diagnostic[];
  warnings: Diagnostic[];
  messages: Set<number>;
  ports: Set<string>;
  unreachable: boolean;
  outsideWindow: boolean;
  loop: boolean;
}

export interface Placed {
  blocks: Map<string, BlockProblems>;
  start: Diagnostic[];
  banner: Diagnostic[];
}

export function placeAll(doc: FlowDoc | null, diagnostics: Diagnostic[]): Placed {
  const placed: Placed = { blocks: new Map(), start: [], banner: [] };
  for (const d of diagnostics) {
    const where = placeDiagnostic(doc, d.pointer);
    if (where.start) {
      placed.start.push(d);
      continue;
    }
    if (!where.block) {
      placed.banner.push(d);
      continue;
    }
    let entry = placed.blocks.get(where.block);
    if (!entry) {
      entry = { errors: [], warnings: [], messages: new Set(), ports: new Set(), unreachable: false, outsideWindow: false, loop: false };
      placed.blocks.set(where.block, entry);
    }
    (d.severity === 'error' ? entry.errors : entry.warnings).push(d);
    if (where.message !== undefined) entry.messages.add(where.message);
    if (where.port) entry.ports.add(where.port);
    if (d.code === 'unreachable-block') entry.unreachable = true;
    if (d.code === 'outside-24h-window') entry.outsideWindow = true;
    if (d.code === 'endless-loop') entry.loop = true;
  }
  return placed;
}
