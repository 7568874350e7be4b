// The preview pane: chats with the draft through the real step function on the server
// (POST /api/pages/{page}/preview); nothing is sent to Messenger and nothing is stored.
import { useEffect, useRef, useState } from 'react';
import { api, ApiFailure, messageOf, must, type PreviewReport, type PreviewStep } from '../api/client';
import { useEditor } from './store';

export function PreviewPane(props: { page: string; onClose(): void }) {
  const [report, setReport] = useState<PreviewReport | null>(null);
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const bottom = useRef<HTMLDivElement>(null);
  useEffect(() => {
    bottom.current?.scrollIntoView({ block: 'end' });
  }, [report]);

  const play = async (input: PreviewStep) => {
    const doc = useEditor.getState().doc;
    if (!doc) return;
    setError(null);
    try {
      const next = await must(
        api.POST('/api/pages/{page}/preview', {
          params: { path: { page: props.page } },
          body: { document: doc, session: report?.session ?? null, input },
        }),
      );
      setReport(next);
    } catch (err) {
      setError(err instanceof ApiFailure && err.diagnostics.length ? `Fix the draft's errors first: ${err.diagnostics[0].message}` : messageOf(err));
    }
  };
  const lastTurn = report?.turns.length ? report.turns.length - 1 : -1;
  return (
    <section className="preview" aria-label="Preview">
      <div className="panel-head">
        <h2>Preview</h2>
        <div className="row">
          <button type="button" onClick={() => setReport(null)}>
            Restart
          </button>
          <button type="button" className="icon" aria-label="Close preview" onClick={props.onClose}>
            ✕
          </button>
        </div>
      </div>
      <div className="chat" data-testid="preview-chat">
        {!report && <p className="muted">Type a keyword, or tap Get Started, to play this draft. Nothing is sent to Messenger.</p>}
        {report?.turns.map((turn, ti) => (
          <div key={ti} className="turn">
            <div className="bubble bubble-user">{turn.input.replace(/^user( taps)?:? ?/, '')}</div>
            {turn.messages.map((m, mi) => (
              <div key={mi} className={`bubble bubble-bot${m.not_delivered ? ' bubble-failed' : ''}`} data-testid="preview-bot">
                {m.kind === 'otn_request' || m.kind === 'recurring_request' ? (
                  <div className="messenger-preview">
                    <div className="mp-title">{m.text}</div>
                    <button type="button" className="mp-button" onClick={() => void play({ optin: m.text })}>
                      {m.kind === 'recurring_request' ? 'Get messages' : 'Notify me'}
                    </button>
                  </div>
                ) : (
                  <div>{m.kind === 'image' ? `Image: ${m.text}` : m.kind === 'file' ? `File: ${m.text}` : m.text}</div>
                )}
                {m.buttons.map((b, bi) =>
                  b.url ? (
                    <a key={bi} className="chat-button" href={b.url} target="_blank" rel="noreferrer">
                      {b.title} ↗
                    </a>
                  ) : (
                    <button key={bi} type="button" className="chat-button" onClick={() => void play({ tap: b.title })}>
                      {b.title}
                    </button>
                  ),
                )}
                {m.not_delivered && <div className="muted">({m.not_delivered})</div>}
              </div>
            ))}
            {ti === lastTurn && (
              <div className="quick-replies">
                {turn.messages
                  .flatMap((m) => m.quick_replies)
                  .map((q, qi) => (
                    <button key={qi} type="button" className="qr-chip" onClick={() => void play({ tap: q })}>
                      {q}
                    </button>
                  ))}
              </div>
            )}
            {turn.notes.map((n, ni) => (
              <div key={ni} className="note">
                {n}
              </div>
            ))}
          </div>
        ))}
        <div ref={bottom} />
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (!text.trim()) return;
          void play({ user: text });
          setText('');
        }}
      >
        <input aria-label="Message the bot" placeholder="Type a message…" value={text} onChange={(e) => setText(e.target.value)} />
        <button type="submit">Send</button>
        <button type="button" onClick={() => void play({ get_started: true })}>
          Get Started
        </button>
      </form>
    </section>
  );
}
