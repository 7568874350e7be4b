// The recurring notification request editor: Topic combobox, Title with its 65-character counter,
// Frequency, an optional image URL, and a Messenger-style preview of the request.
import type { Message } from './flow';
import { TopicPicker } from './TopicPicker';
import { useEditor } from './store';
import { Counted, Plain } from './fields';
import { OTN_TITLE_MAX } from './OtnRequestEditor';

export const FREQUENCIES = ['daily', 'weekly', 'monthly'] as const;

export function RecurringRequestEditor(props: { blockIndex: number; messageIndex: number; message: Message }) {
  const setAt = useEditor((s) => s.setAt);
  const base = ['blocks', props.blockIndex, 'messages', props.messageIndex];
  const pointer = `/blocks/${props.blockIndex}/messages/${props.messageIndex}`;
  const m = props.message;
  const frequency = typeof m.frequency === 'string' ? m.frequency : '';
  const image = typeof m.image_url === 'string' ? m.image_url : '';
  return (
    <div className="otn-editor">
      <label className="field">
        <span>Topic</span>
        <TopicPicker value={m.topic} pointer={`${pointer}/topic`} onChange={(ref) => setAt([...base, 'topic'], ref)} />
      </label>
      <Counted label="Title" max={OTN_TITLE_MAX} value={m.title ?? ''} pointer={`${pointer}/title`} onChange={(v) => setAt([...base, 'title'], v)} />
      <label className="field">
        <span>Frequency</span>
        <select aria-label="Frequency" data-pointer={`${pointer}/frequency`} value={frequency} onChange={(e) => setAt([...base, 'frequency'], e.target.value || undefined)}>
          {frequency === '' && <option value="">choose…</option>}
          {FREQUENCIES.map((f) => (
            <option key={f} value={f}>
              {f}
            </option>
          ))}
        </select>
      </label>
      <Plain
        label="Image URL"
        value={image}
        pointer={`${pointer}/image_url`}
        placeholder="optional, https://…"
        onChange={(v) => setAt([...base, 'image_url'], v === '' ? undefined : v)}
      />
      <div className="messenger-preview" aria-label="Messenger preview">
        <div className="mp-title">{m.title || 'Title'}</div>
        <div className="mp-sub muted">{frequency ? `${frequency} messages` : 'no frequency'}</div>
        <div className="mp-button">Get messages</div>
      </div>
      <p className="muted">
        At most one message per period (and never more often than Messenger’s 48-hour cap). When they opt in, the flow continues from the “on
        opt-in” port.
      </p>
    </div>
  );
}
