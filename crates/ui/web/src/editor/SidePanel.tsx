// The side panel of the selected block (one editor per kind) or of the Start node.
import { useEffect, useRef, useState } from 'react';
import { placeDiagnostic } from './diagnostics';
import { kindOf, type Block, type FlowDoc, type Message, type Path } from './flow';
import { Counted, Plain } from './fields';
import { OtnRequestEditor } from './OtnRequestEditor';
import { RecurringRequestEditor } from './RecurringRequestEditor';
import { TopicPicker } from './TopicPicker';
import { useEditor } from './store';
import { Icon } from '../ui/Icon';

const BUTTON_TITLE_MAX = 20;
const TEXT_MAX = 2000;
const TEXT_WITH_BUTTONS_MAX = 640;

export function SidePanel(props: { onDelete(blockId: string): void }) {
  const doc = useEditor((s) => s.doc);
  const selection = useEditor((s) => s.selection);
  const focusPointer = useEditor((s) => s.focusPointer);
  const diagnostics = useEditor((s) => s.diagnostics);
  const ref = useRef<HTMLElement>(null);

  useEffect(() => {
    if (!focusPointer || !ref.current) return;
    const fields = [...ref.current.querySelectorAll<HTMLElement>('[data-pointer]')];
    let best: HTMLElement | undefined;
    for (const f of fields) {
      const p = f.dataset.pointer ?? '';
      if ((focusPointer === p || focusPointer.startsWith(`${p}/`)) && (!best || p.length > (best.dataset.pointer ?? '').length)) best = f;
    }
    best?.focus();
    useEditor.setState({ focusPointer: null });
  }, [focusPointer, selection]);

  if (!doc || !selection) return null;
  if (selection.kind === 'start') {
    return (
      <aside className="panel" ref={ref} aria-label="Start">
        <StartPanel doc={doc} />
      </aside>
    );
  }
  const index = doc.blocks.findIndex((b) => b.id === selection.id);
  const block = doc.blocks[index];
  if (!block) return null;
  const own = diagnostics.filter((d) => placeDiagnostic(doc, d.pointer).block === block.id);
  const kind = kindOf(block.type);
  return (
    <aside className="panel" ref={ref} aria-label={`${kind.label} ${block.id}`}>
      <div className="panel-head">
        <h2>
          <Icon name={kind.icon} /> {kind.label} <span className="node-id">{block.id}</span>
        </h2>
        <button type="button" className="danger" onClick={() => props.onDelete(block.id)}>
          Delete block
        </button>
      </div>
      {own.length > 0 && (
        <ul className="panel-problems">
          {own.map((d, i) => (
            <li key={i} className={d.severity}>
              {d.message}
            </li>
          ))}
        </ul>
      )}
      {block.id === doc.start && <p className="muted">The flow starts here.</p>}
      <BlockEditor block={block} index={index} />
    </aside>
  );
}

function StartPanel({ doc }: { doc: FlowDoc }) {
  const setAt = useEditor((s) => s.setAt);
  const keywordIndex = (doc.triggers ?? []).findIndex((t) => t.type === 'keyword');
  const words = keywordIndex >= 0 ? (doc.triggers?.[keywordIndex].words ?? []) : [];
  const [text, setText] = useState(words.join(', '));
  const hasGetStarted = (doc.triggers ?? []).some((t) => t.type === 'get_started');
  return (
    <>
      <div className="panel-head">
        <h2>
          <Icon name="start" /> Start
        </h2>
      </div>
      <Plain label="Flow name" value={doc.name} pointer="/name" onChange={(v) => setAt(['name'], v)} />
      <label className="field">
        <span>Keywords (comma separated)</span>
        <input
          aria-label="Keywords"
          data-pointer="/triggers"
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            const list = e.target.value
              .split(',')
              .map((w) => w.trim())
              .filter(Boolean);
            if (keywordIndex >= 0) setAt(['triggers', keywordIndex, 'words'], list);
            else setAt(['triggers'], [...(doc.triggers ?? []), { type: 'keyword', words: list }]);
          }}
        />
      </label>
      <label className="check">
        <input
          type="checkbox"
          checked={hasGetStarted}
          onChange={(e) =>
            setAt(
              ['triggers'],
              e.target.checked ? [...(doc.triggers ?? []), { type: 'get_started' }] : (doc.triggers ?? []).filter((t) => t.type !== 'get_started'),
            )
          }
        />{' '}
        Get Started button
      </label>
      <p className="muted">Connect the Start node’s port to the first block.</p>
    </>
  );
}

function BlockEditor({ block, index }: { block: Block; index: number }) {
  const setAt = useEditor((s) => s.setAt);
  const base: Path = ['blocks', index];
  const ptr = `/blocks/${index}`;
  const str = (key: string, label: string, placeholder?: string) => (
    <Plain
      label={label}
      value={String(block[key] ?? '')}
      pointer={`${ptr}/${key}`}
      placeholder={placeholder}
      onChange={(v) => setAt([...base, key], v === '' ? undefined : v)}
    />
  );
  switch (block.type) {
    case 'send_message':
      return <SendMessageEditor block={block} index={index} />;
    case 'wait_input':
      return (
        <>
          {str('prompt', 'Question')}
          {str('field', 'Save the answer to field')}
          <label className="field">
            <span>Expected answer</span>
            <select
              aria-label="Expected answer"
              data-pointer={`${ptr}/input`}
              value={block.input ?? 'text'}
              onChange={(e) => setAt([...base, 'input'], e.target.value)}
            >
              {['text', 'number', 'email', 'phone'].map((k) => (
                <option key={k}>{k}</option>
              ))}
            </select>
          </label>
          {str('reprompt', 'When the answer is invalid, say')}
          {str('timeout', 'Give up after', 'e.g. 1h')}
        </>
      );
    case 'delay':
      return str('duration', 'Wait for', 'e.g. 30m, 1h, 2d');
    case 'otn_send':
      return (
        <>
          <label className="field">
            <span>Topic</span>
            <TopicPicker value={block.topic} pointer={`${ptr}/topic`} onChange={(ref) => setAt([...base, 'topic'], ref)} />
          </label>
          <Counted
            label="Text"
            max={TEXT_MAX}
            multiline
            value={block.message?.text ?? ''}
            pointer={`${ptr}/message/text`}
            onChange={(v) => setAt([...base, 'message'], { ...(block.message ?? {}), type: 'text', text: v })}
          />
          <p className="muted">Sent once, paid by one of the subscriber’s opt-ins; “No token” continues when they have none.</p>
        </>
      );
    case 'action':
      return <ActionEditor block={block} index={index} />;
    case 'condition':
      return <ConditionEditor block={block} index={index} />;
    default:
      return <p className="muted">This block kind has no editor; see the JSON view.</p>;
  }
}

function SendMessageEditor({ block, index }: { block: Block; index: number }) {
  const setAt = useEditor((s) => s.setAt);
  const [adding, setAdding] = useState(false);
  const messages = block.messages ?? [];
  const add = (m: Message) => {
    setAt(['blocks', index, 'messages'], [...messages, m]);
    setAdding(false);
  };
  return (
    <>
      {messages.map((m, mi) => (
        <MessageEditor key={mi} block={block} index={index} mi={mi} message={m} />
      ))}
      <div className="add-menu">
        <button type="button" aria-haspopup="menu" aria-expanded={adding} onClick={() => setAdding(!adding)}>
          + Add
        </button>
        {adding && (
          <div className="menu" role="menu" aria-label="Add to message">
            <button type="button" role="menuitem" onClick={() => add({ type: 'text', text: '' })}>
              Text
            </button>
            <button type="button" role="menuitem" onClick={() => add({ type: 'image', url: 'https://' })}>
              Image
            </button>
            <button type="button" role="menuitem" onClick={() => add({ type: 'file', url: 'https://' })}>
              File
            </button>
            <div className="menu-group">One-Time Notification</div>
            <button type="button" role="menuitem" onClick={() => add({ type: 'otn_request', title: '' })}>
              OTN Request
            </button>
            <div className="menu-group">Recurring Notification</div>
            <button type="button" role="menuitem" onClick={() => add({ type: 'recurring_request', title: '', frequency: 'weekly' })}>
              Recurring Request
            </button>
          </div>
        )}
      </div>
    </>
  );
}

function MessageEditor({ index, mi, message: m }: { block: Block; index: number; mi: number; message: Message }) {
  const setAt = useEditor((s) => s.setAt);
  const base: Path = ['blocks', index, 'messages', mi];
  const ptr = `/blocks/${index}/messages/${mi}`;
  const label = m.type === 'otn_request' ? 'OTN Request' : m.type === 'recurring_request' ? 'Recurring Request' : m.type === 'text' ? 'Text' : m.type === 'image' ? 'Image' : m.type === 'file' ? 'File' : m.type;
  const buttons = m.buttons ?? [];
  const replies = m.quick_replies ?? [];
  return (
    <section className="msg-editor" aria-label={`Message ${mi + 1}: ${label}`}>
      <div className="msg-editor-head">
        <b>{label}</b>
        <button type="button" className="icon" aria-label={`Remove message ${mi + 1}`} onClick={() => setAt(base, undefined)}>
          ✕
        </button>
      </div>
      {m.type === 'text' && (
        <>
          <Counted
            label="Text"
            multiline
            max={buttons.length ? TEXT_WITH_BUTTONS_MAX : TEXT_MAX}
            value={m.text ?? ''}
            pointer={`${ptr}/text`}
            onChange={(v) => setAt([...base, 'text'], v)}
          />
          {buttons.map((b, bi) => (
            <div key={bi} className="row">
              <Counted
                label={`Button ${bi + 1}`}
                max={BUTTON_TITLE_MAX}
                value={b.title}
                pointer={`${ptr}/buttons/${bi}/title`}
                onChange={(v) => setAt([...base, 'buttons', bi, 'title'], v)}
              />
              <button
                type="button"
                className="icon"
                aria-label={`Remove button ${bi + 1}`}
                onClick={() => setAt([...base, 'buttons'], buttons.length === 1 ? undefined : buttons.filter((_, i) => i !== bi))}
              >
                ✕
              </button>
            </div>
          ))}
          {replies.map((q, qi) => (
            <div key={qi} className="row">
              <Counted
                label={`Quick reply ${qi + 1}`}
                max={BUTTON_TITLE_MAX}
                value={q.title}
                pointer={`${ptr}/quick_replies/${qi}/title`}
                onChange={(v) => setAt([...base, 'quick_replies', qi, 'title'], v)}
              />
              <button
                type="button"
                className="icon"
                aria-label={`Remove quick reply ${qi + 1}`}
                onClick={() => setAt([...base, 'quick_replies'], replies.length === 1 ? undefined : replies.filter((_, i) => i !== qi))}
              >
                ✕
              </button>
            </div>
          ))}
          <div className="row">
            {buttons.length < 3 && replies.length === 0 && (
              <button type="button" onClick={() => setAt([...base, 'buttons'], [...buttons, { title: `Option ${buttons.length + 1}` }])}>
                + Button
              </button>
            )}
            {buttons.length === 0 && replies.length < 13 && (
              <button type="button" onClick={() => setAt([...base, 'quick_replies'], [...replies, { title: `Reply ${replies.length + 1}` }])}>
                + Quick reply
              </button>
            )}
          </div>
        </>
      )}
      {(m.type === 'image' || m.type === 'file') && (
        <Plain label="URL" value={m.url ?? ''} pointer={`${ptr}/url`} onChange={(v) => setAt([...base, 'url'], v)} />
      )}
      {m.type === 'otn_request' && <OtnRequestEditor blockIndex={index} messageIndex={mi} message={m} />}
      {m.type === 'recurring_request' && <RecurringRequestEditor blockIndex={index} messageIndex={mi} message={m} />}
    </section>
  );
}

function ActionEditor({ block, index }: { block: Block; index: number }) {
  const setAt = useEditor((s) => s.setAt);
  const actions = block.actions ?? [];
  const base: Path = ['blocks', index, 'actions'];
  return (
    <>
      {actions.map((a, ai) => (
        <div key={ai} className="msg-editor">
          <div className="msg-editor-head">
            <select aria-label={`Action ${ai + 1}`} value={a.type} onChange={(e) => setAt([...base, ai], { type: e.target.value })}>
              {['set_field', 'clear_field', 'add_tag', 'remove_tag', 'goto_flow'].map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
            <button type="button" className="icon" aria-label={`Remove action ${ai + 1}`} onClick={() => setAt([...base, ai], undefined)}>
              ✕
            </button>
          </div>
          {(a.type === 'set_field' || a.type === 'clear_field') && (
            <Plain label="Field" value={a.field ?? ''} pointer={`/blocks/${index}/actions/${ai}/field`} onChange={(v) => setAt([...base, ai, 'field'], v)} />
          )}
          {a.type === 'set_field' && (
            <Plain label="Value" value={a.value ?? ''} pointer={`/blocks/${index}/actions/${ai}/value`} onChange={(v) => setAt([...base, ai, 'value'], v)} />
          )}
          {(a.type === 'add_tag' || a.type === 'remove_tag') && (
            <Plain label="Tag" value={a.tag ?? ''} pointer={`/blocks/${index}/actions/${ai}/tag`} onChange={(v) => setAt([...base, ai, 'tag'], v)} />
          )}
          {a.type === 'goto_flow' && (
            <Plain label="Flow id" value={a.flow ?? ''} pointer={`/blocks/${index}/actions/${ai}/flow`} onChange={(v) => setAt([...base, ai, 'flow'], v)} />
          )}
        </div>
      ))}
      <button type="button" onClick={() => setAt(base, [...actions, { type: 'add_tag', tag: '' }])}>
        + Action
      </button>
    </>
  );
}

function ConditionEditor({ block, index }: { block: Block; index: number }) {
  const setAt = useEditor((s) => s.setAt);
  const branches = block.branches ?? [];
  const base: Path = ['blocks', index, 'branches'];
  return (
    <>
      {branches.map((b, bi) => (
        <div key={bi} className="msg-editor">
          <div className="msg-editor-head">
            <b>Branch {bi + 1}</b>
            <button type="button" className="icon" aria-label={`Remove branch ${bi + 1}`} onClick={() => setAt([...base, bi], undefined)}>
              ✕
            </button>
          </div>
          {(b.when ?? []).map((p, pi) => {
            const at: Path = [...base, bi, 'when', pi];
            const ptr = `/blocks/${index}/branches/${bi}/when/${pi}`;
            return p.type === 'tag' ? (
              <Plain key={pi} label="Has tag" value={p.tag ?? ''} pointer={`${ptr}/tag`} onChange={(v) => setAt([...at, 'tag'], v)} />
            ) : (
              <div key={pi} className="row">
                <Plain label="Field" value={p.field ?? ''} pointer={`${ptr}/field`} onChange={(v) => setAt([...at, 'field'], v)} />
                <select aria-label="Operator" value={p.op ?? 'equals'} onChange={(e) => setAt([...at, 'op'], e.target.value)}>
                  {['is_set', 'is_not_set', 'equals', 'not_equals', 'contains', 'greater_than', 'less_than'].map((o) => (
                    <option key={o}>{o}</option>
                  ))}
                </select>
                {p.op !== 'is_set' && p.op !== 'is_not_set' && (
                  <Plain label="Value" value={p.value ?? ''} pointer={`${ptr}/value`} onChange={(v) => setAt([...at, 'value'], v)} />
                )}
              </div>
            );
          })}
        </div>
      ))}
      <button type="button" onClick={() => setAt(base, [...branches, { when: [{ type: 'field', field: '', op: 'equals', value: '' }] }])}>
        + Branch
      </button>
      <p className="muted">Connect each branch and Else on the canvas.</p>
    </>
  );
}
