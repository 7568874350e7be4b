// Unit tests of the editor's pure helpers: JSON Pointer → what is drawn, ports, setIn, layout.
import { describe, expect, it } from 'vitest';
import { placeAll, placeDiagnostic } from './diagnostics';
import { blockPorts, removeBlock, setIn, type FlowDoc } from './flow';
import { estimateHeight, NODE_WIDTH, placeBlocks, START_ID } from './layout';

const doc: FlowDoc = {
  format: 1,
  id: 'restock',
  name: 'Restock',
  triggers: [{ type: 'keyword', words: ['restock'] }],
  start: 'welcome',
  blocks: [
    {
      id: 'welcome',
      type: 'send_message',
      position: { x: 0, y: 0 },
      messages: [
        { type: 'text', text: 'Hi', buttons: [{ title: 'More', next: 'more' }, { title: 'Shop', url: 'https://x' }] },
        { type: 'otn_request', topic: { name: 'T' }, title: 'Tell me', on_optin: 'thanks' },
      ],
      ui: { color: 'red' },
    },
    { id: 'thanks', type: 'send_message', messages: [{ type: 'text', text: 'Done' }] },
    { id: 'more', type: 'wait_input', field: 'answer', next: 'thanks', on_timeout: 'thanks' },
  ],
  ui: { zoom: 1 },
  extra: { kept: true },
};

describe('placeDiagnostic', () => {
  it('maps block, message and edge-field pointers', () => {
    expect(placeDiagnostic(doc, '/blocks/0/messages/1/title')).toEqual({ block: 'welcome', message: 1 });
    expect(placeDiagnostic(doc, '/blocks/0/messages/0/buttons/0/next')).toEqual({
      block: 'welcome',
      message: 0,
      port: 'messages/0/buttons/0/next',
    });
    expect(placeDiagnostic(doc, '/blocks/2/on_timeout')).toEqual({ block: 'more', port: 'on_timeout' });
    expect(placeDiagnostic(doc, '/blocks/1')).toEqual({ block: 'thanks' });
    expect(placeDiagnostic(doc, '/start')).toEqual({ start: true });
    expect(placeDiagnostic(doc, '/triggers/0/words/0')).toEqual({ start: true });
    expect(placeDiagnostic(doc, '/name')).toEqual({});
    expect(placeDiagnostic(doc, '/blocks/9/next')).toEqual({});
  });

  it('collects flags per block and sends the rest to the banner', () => {
    const d = (code: string, pointer: string, severity: 'error' | 'warning' = 'error') => ({ code, pointer, severity, message: code });
    const placed = placeAll(doc, [
      d('unreachable-block', '/blocks/2', 'warning'),
      d('outside-24h-window', '/blocks/1', 'warning'),
      d('dangling-target', '/blocks/0/messages/1/on_optin'),
      d('missing-field', '/name'),
      d('empty-keyword', '/triggers/0/words/0'),
    ]);
    expect(placed.blocks.get('more')?.unreachable).toBe(true);
    expect(placed.blocks.get('thanks')?.outsideWindow).toBe(true);
    expect([...(placed.blocks.get('welcome')?.ports ?? [])]).toEqual(['messages/1/on_optin']);
    expect(placed.blocks.get('welcome')?.errors).toHaveLength(1);
    expect(placed.banner.map((x) => x.code)).toEqual(['missing-field']);
    expect(placed.start.map((x) => x.code)).toEqual(['empty-keyword']);
  });
});

describe('ports', () => {
  it('lists one port per postback button, quick reply, opt-in and path', () => {
    expect(blockPorts(doc.blocks[0]).map((p) => [p.path, p.label, p.target])).toEqual([
      ['messages/0/buttons/0/next', 'More', 'more'],
      ['messages/1/on_optin', 'on opt-in', 'thanks'],
      ['next', 'Next', undefined],
    ]);
    expect(blockPorts(doc.blocks[2]).map((p) => p.path)).toEqual(['next', 'on_invalid', 'on_timeout']);
  });
});

describe('setIn and removeBlock', () => {
  it('change only the addressed field and keep key order, ui objects and unknown fields', () => {
    const next = setIn(doc, ['blocks', 0, 'messages', 1, 'title'], 'New');
    expect(Object.keys(next)).toEqual(Object.keys(doc));
    expect(Object.keys(next.blocks[0].messages?.[1] ?? {})).toEqual(['type', 'topic', 'title', 'on_optin']);
    expect(next.blocks[0].ui).toBe(doc.blocks[0].ui);
    expect(next.extra).toBe(doc.extra);
    expect(next.blocks[1]).toBe(doc.blocks[1]);
    expect(doc.blocks[0].messages?.[1].title).toBe('Tell me');
  });

  it('removing a block removes the fields that led to it', () => {
    const next = removeBlock(doc, 'thanks');
    expect(next.blocks.map((b) => b.id)).toEqual(['welcome', 'more']);
    expect(next.blocks[0].messages?.[1]).toEqual({ type: 'otn_request', topic: { name: 'T' }, title: 'Tell me' });
    expect(next.blocks[1]).toEqual({ id: 'more', type: 'wait_input', field: 'answer' });
  });
});

describe('placeBlocks', () => {
  it('keeps saved positions and places the others without overlaps', () => {
    const positions = placeBlocks(doc);
    expect(positions.get('welcome')).toEqual({ x: 0, y: 0 });
    const rects = doc.blocks.map((b) => ({ ...(positions.get(b.id) ?? { x: NaN, y: NaN }), h: estimateHeight(b) }));
    for (let i = 0; i < rects.length; i++)
      for (let j = i + 1; j < rects.length; j++) {
        const [a, b] = [rects[i], rects[j]];
        const apart = a.x + NODE_WIDTH <= b.x || b.x + NODE_WIDTH <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
        expect(apart, `${doc.blocks[i].id} and ${doc.blocks[j].id}`).toBe(true);
      }
    expect(positions.get(START_ID)?.x).toBeLessThan(0);
  });
});
