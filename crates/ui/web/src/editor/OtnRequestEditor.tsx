// The OTN request editor: Topic combobox, Title with its 65-character counter, a Messenger-style
// preview of the request with its Notify me button.
import type { Message } from './flow';
import { TopicPicker } from './TopicPicker';
import { useEditor } from './store';
import { Counted } from './fields';

export const OTN_TITLE_MAX = 65;

export function OtnRequestEditor(props: { blockIndex: number; messageIndex: number; message: Message }) {
  const setAt = useEditor((s) => s.setAt);
  const base = ['blocks', props.blockIndex, 'messages', props.messageIndex];
  const pointer = `/blocks/${props.blockIndex}/messages/${props.messageIndex}`;
  const m = props.message;
  return (
    <div className="otn-editor">
      <label className="field">
        <span>Topic</span>
        <TopicPicker value={m.topic} pointer={`${pointer}/topic`} onChange={(ref) => setAt([...base, 'topic'], ref)} />
      </label>
      <Counted label="Title" max={OTN_TITLE_MAX} value={m.title ?? ''} pointer={`${pointer}/title`} onChange={(v) => setAt([...base, 'title'], v)} />
      <div className="messenger-preview" aria-label="Messenger preview">
        <div className="mp-title">{m.title || 'Title'}</div>
        <div className="mp-button">Notify me</div>
      </div>
      <p className="muted">When they tap Notify me, the flow continues from the “on opt-in” port.</p>
    </div>
  );
}
