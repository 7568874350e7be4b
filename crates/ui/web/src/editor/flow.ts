// The flow document (format 1) as the editor reads it, and pure helpers over it. The editor edits
// only the fields it owns: every other field, `ui` object and key order is kept as loaded.

export interface Position {
  x: number;
  y: number;
}

export interface Button {
  title: string;
  next?: string;
  url?: string;
  [key: string]: unknown;
}

export interface QuickReply {
  title: string;
  next?: string;
  [key: string]: unknown;
}

export type TopicRef = { id: string } | { name: string };

export interface Message {
  type: string;
  text?: string;
  buttons?: Button[];
  quick_replies?: QuickReply[];
  url?: string;
  topic?: TopicRef;
  title?: string;
  on_optin?: string;
  [key: string]: unknown;
}

export interface Predicate {
  type: string;
  field?: string;
  op?: string;
  value?: string;
  tag?: string;
  present?: boolean;
  [key: string]: unknown;
}

export interface Branch {
  when: Predicate[];
  next?: string;
  [key: string]: unknown;
}

export interface ActionStep {
  type: string;
  field?: string;
  value?: string;
  tag?: string;
  flow?: string;
  [key: string]: unknown;
}

export interface Block {
  id: string;
  type: string;
  next?: string;
  position?: Position;
  ui?: unknown;
  messages?: Message[];
  field?: string;
  input?: string;
  prompt?: string;
  reprompt?: string;
  max_attempts?: number;
  on_invalid?: string;
  timeout?: string;
  on_timeout?: string;
  branches?: Branch[];
  else?: string;
  actions?: ActionStep[];
  duration?: string;
  topic?: TopicRef;
  message?: Message;
  on_no_token?: string;
  [key: string]: unknown;
}

export interface Trigger {
  type: string;
  words?: string[];
  match?: string;
  ref?: string;
  [key: string]: unknown;
}

export interface FlowDoc {
  format: number;
  id: string;
  name: string;
  triggers?: Trigger[];
  start: string;
  blocks: Block[];
  ui?: unknown;
  [key: string]: unknown;
}

export type Path = (string | number)[];

/** The value at `path`, or undefined. */
export function getIn(root: unknown, path: Path): unknown {
  let value: unknown = root;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

/** A copy of `root` with `value` at `path` (undefined deletes the key or array item); objects
 * keep their key order, a new key goes last. */
export function setIn<T>(root: T, path: Path, value: unknown): T {
  if (path.length === 0) return value as T;
  const [key, ...rest] = path;
  if (Array.isArray(root)) {
    const copy = root.slice();
    const index = Number(key);
    if (rest.length === 0 && value === undefined) copy.splice(index, 1);
    else copy[index] = setIn(copy[index], rest, value);
    return copy as T;
  }
  const source = (root ?? {}) as Record<string, unknown>;
  const copy: Record<string, unknown> = { ...source };
  if (rest.length === 0 && value === undefined) delete copy[String(key)];
  else copy[String(key)] = setIn(source[String(key)], rest, value);
  return copy as T;
}

/** `welcome/messages/0/on_optin` → ['messages', 0, 'on_optin'] (numbers for array indexes). */
export function splitPath(path: string): Path {
  return path
    .split('/')
    .filter((p) => p !== '')
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')));
}

export const EDGE_FIELDS = ['next', 'on_optin', 'else', 'on_invalid', 'on_timeout', 'on_no_token'] as const;

/** An outgoing connection point of a block: a field holding a block id. */
export interface Port {
  /** Path of the field inside the block, e.g. `messages/0/buttons/1/next`. */
  path: string;
  label: string;
  target?: string;
  /** The message it belongs to, if any. */
  message?: number;
}

export function blockPorts(block: Block): Port[] {
  const ports: Port[] = [];
  switch (block.type) {
    case 'send_message':
      (block.messages ?? []).forEach((m, mi) => {
        (m.buttons ?? []).forEach((b, bi) => {
          if (b.url === undefined)
            ports.push({ path: `messages/${mi}/buttons/${bi}/next`, label: b.title || `button ${bi + 1}`, target: b.next, message: mi });
        });
        (m.quick_replies ?? []).forEach((q, qi) => {
          ports.push({ path: `messages/${mi}/quick_replies/${qi}/next`, label: q.title || `reply ${qi + 1}`, target: q.next, message: mi });
        });
        if (m.type === 'otn_request' || m.type === 'recurring_request') ports.push({ path: `messages/${mi}/on_optin`, label: 'on opt-in', target: m.on_optin, message: mi });
      });
      ports.push({ path: 'next', label: 'Next', target: block.next });
      break;
    case 'wait_input':
      ports.push({ path: 'next', label: 'Reply', target: block.next });
      ports.push({ path: 'on_invalid', label: 'Invalid', target: block.on_invalid });
      ports.push({ path: 'on_timeout', label: 'Timeout', target: block.on_timeout });
      break;
    case 'condition':
      (block.branches ?? []).forEach((b, bi) => ports.push({ path: `branches/${bi}/next`, label: branchLabel(b, bi), target: b.next }));
      ports.push({ path: 'else', label: 'Else', target: block.else });
      break;
    case 'otn_send':
      ports.push({ path: 'next', label: 'Sent', target: block.next });
      ports.push({ path: 'on_no_token', label: 'No token', target: block.on_no_token });
      break;
    default:
      ports.push({ path: 'next', label: 'Next', target: block.next });
  }
  return ports;
}

export function branchLabel(branch: Branch, index: number): string {
  const parts = (branch.when ?? []).map((p) =>
    p.type === 'tag' ? `${p.present === false ? 'no ' : ''}tag ${p.tag ?? ''}` : `${p.field ?? ''} ${p.op ?? ''}${p.value !== undefined ? ` ${p.value}` : ''}`,
  );
  return parts.length ? parts.join(' & ') : `Branch ${index + 1}`;
}

export const BLOCK_KINDS: { type: string; label: string; icon: string }[] = [
  { type: 'send_message', label: 'Send Message', icon: 'message' },
  { type: 'wait_input', label: 'User Input', icon: 'input' },
  { type: 'condition', label: 'Condition', icon: 'condition' },
  { type: 'action', label: 'Action', icon: 'action' },
  { type: 'delay', label: 'Delay', icon: 'delay' },
  { type: 'otn_send', label: 'OTN Send', icon: 'bell' },
];

export function kindOf(type: string): { type: string; label: string; icon: string } {
  return BLOCK_KINDS.find((k) => k.type === type) ?? { type, label: type, icon: 'message' };
}

/** A new block of `type` with an id unused in `doc`. */
export function newBlock(doc: FlowDoc, type: string, position?: Position): Block {
  const base = type.replace(/_.*/, '');
  let n = 1;
  const ids = new Set(doc.blocks.map((b) => b.id));
  while (ids.has(`${base}_${n}`)) n++;
  const id = `${base}_${n}`;
  const pos = position ? { position: { x: Math.round(position.x), y: Math.round(position.y) } } : {};
  switch (type) {
    case 'send_message':
      return { id, type, messages: [{ type: 'text', text: 'New message' }], ...pos };
    case 'wait_input':
      return { id, type, field: 'answer', prompt: 'Your answer?', ...pos };
    case 'condition':
      return { id, type, branches: [{ when: [{ type: 'field', field: 'answer', op: 'is_set' }] }], ...pos };
    case 'action':
      return { id, type, actions: [{ type: 'add_tag', tag: 'new_tag' }], ...pos };
    case 'delay':
      return { id, type, duration: '1h', ...pos };
    case 'otn_send':
      return { id, type, topic: { name: '' }, message: { type: 'text', text: 'It is back!' }, ...pos };
    default:
      return { id, type, ...pos };
  }
}

export function slugify(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 100);
}

export function newFlowDocument(id: string, name: string): FlowDoc {
  return {
    format: 1,
    id,
    name,
    triggers: [{ type: 'keyword', words: [id.replace(/-/g, ' ')] }],
    start: 'welcome',
    blocks: [{ id: 'welcome', type: 'send_message', messages: [{ type: 'text', text: `Hi {{first_name}}! This is ${name}.` }] }],
  };
}

/** Every (block index, port) whose target is `blockId`. */
export function referencesTo(doc: FlowDoc, blockId: string): { index: number; port: Port }[] {
  const out: { index: number; port: Port }[] = [];
  doc.blocks.forEach((b, index) => {
    for (const port of blockPorts(b)) if (port.target === blockId) out.push({ index, port });
  });
  return out;
}

/** `doc` without block `blockId`; fields that pointed at it are removed (start stays, and is
 * reported by validation until the author picks a new one). */
export function removeBlock(doc: FlowDoc, blockId: string): FlowDoc {
  let next = doc;
  for (const { index, port } of referencesTo(doc, blockId)) {
    next = setIn(next, ['blocks', index, ...splitPath(port.path)], undefined);
  }
  const index = next.blocks.findIndex((b) => b.id === blockId);
  return index < 0 ? next : setIn(next, ['blocks', index], undefined);
}

export function topicLabel(ref: TopicRef | undefined, names: Map<string, string>): string {
  if (!ref) return 'no topic';
  if ('id' in ref) return names.get(ref.id) ?? `unknown topic ${ref.id}`;
  return ref.name || 'no topic';
}

/** A trigger as the Flows list and the Start node show it. */
export function describeTrigger(t: { type: string; words?: string[]; ref?: string }): string {
  switch (t.type) {
    case 'keyword':
      return (t.words ?? []).map((w) => `"${w}"`).join(' / ');
    case 'get_started':
      return 'Get Started';
    case 'referral':
      return `ref ${t.ref ?? ''}`;
    case 'default':
      return 'default reply';
    default:
      return t.type;
  }
}
