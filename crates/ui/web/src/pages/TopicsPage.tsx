// Content › OTN Topics: the topics table (rename in place, live waiting counts, the flows that
// use each, the token ledger with a 30-day chart, live notification progress with Cancel, Notify,
// delete), + New Topic.
import { useState } from 'react';
import { api, ApiFailure, messageOf, must, type NotifyReport, type Topic } from '../api/client';
import { useLiveNotifications, useLiveTopics } from '../data/live';
import { useServer } from '../data/server';
import { href } from '../route';
import { Dialog } from '../ui/Dialog';
import { toast } from '../ui/toasts';
import { Icon } from '../ui/Icon';
import { TopicLedger } from './TopicLedger';
import { TopicNotifications } from './TopicNotifications';
import { notifyResultText, notifyToastText } from './notificationSummary';

/** Messenger's limit on an OTN topic name / request title. */
export const TOPIC_NAME_MAX = 65;

export function TopicsPage() {
  useLiveTopics();
  useLiveNotifications();
  const { topics, topicsLoaded, page } = useServer();
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Topic | null>(null);
  const [notifying, setNotifying] = useState<Topic | null>(null);
  return (
    <section className="page">
      <div className="page-head">
        <h1>OTN Topics</h1>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          + New Topic
        </button>
      </div>
      <p className="muted">
        One-Time Notification topics of Page {page}. Subscribers opt in with "Notify me"; each opt-in pays for one
        message.
      </p>
      <table className="table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Waiting opt-ins</th>
            <th>Ledger (last 30 days)</th>
            <th>Notifications</th>
            <th>Used by</th>
            <th>Created</th>
            <th aria-label="Actions" />
          </tr>
        </thead>
        <tbody>
          {topics.map((t) => (
            <TopicRow key={t.id} topic={t} onDelete={() => setDeleting(t)} onNotify={() => setNotifying(t)} />
          ))}
          {topicsLoaded && topics.length === 0 && (
            <tr>
              <td colSpan={7} className="muted">
                No topics yet. Add one with + New Topic, or from an OTN request in a flow.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {creating && <NewTopicDialog onClose={() => setCreating(false)} />}
      {deleting && <DeleteTopicDialog topic={deleting} onClose={() => setDeleting(null)} />}
      {notifying && <NotifyDialog topic={notifying} onClose={() => setNotifying(null)} />}
    </section>
  );
}

function nameProblem(name: string): string | null {
  if (!name.trim()) return 'The name cannot be empty.';
  if ([...name].length > TOPIC_NAME_MAX) return `At most ${TOPIC_NAME_MAX} characters.`;
  return null;
}

function serverNameError(err: unknown): string {
  if (err instanceof ApiFailure && err.status === 409) return `Name already used: ${err.message}`;
  return messageOf(err);
}

function TopicRow(props: { topic: Topic; onDelete(): void; onNotify(): void }) {
  const { topic } = props;
  const page = useServer((s) => s.page) ?? '';
  const refresh = useServer((s) => s.refreshTopics);
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(topic.name);
  const [error, setError] = useState<string | null>(null);
  const save = async () => {
    if (draft === topic.name) return setEditing(false);
    const problem = nameProblem(draft);
    if (problem) return setError(problem);
    try {
      await must(
        api.PATCH('/api/pages/{page}/topics/{topic}', {
          params: { path: { page, topic: topic.id } },
          body: { name: draft },
        }),
      );
      await refresh();
      setEditing(false);
      setError(null);
      toast(`Renamed to "${draft.trim()}"`);
    } catch (err) {
      setError(serverNameError(err));
    }
  };
  return (
    <tr data-testid={`topic-row-${topic.name}`}>
      <td>
        {editing ? (
          <div>
            <input
              aria-label="Topic name"
              value={draft}
              autoFocus
              aria-invalid={error ? true : undefined}
              onChange={(e) => {
                setDraft(e.target.value);
                setError(null);
              }}
              onKeyDown={(e) => {
                if (e.key === 'Enter') void save();
                if (e.key === 'Escape') {
                  setDraft(topic.name);
                  setError(null);
                  setEditing(false);
                }
              }}
            />
            <span className="counter">
              {[...draft].length}/{TOPIC_NAME_MAX}
            </span>
            {error && (
              <div className="error" role="alert">
                {error}
              </div>
            )}
          </div>
        ) : (
          <button
            type="button"
            className="link"
            aria-label={`Rename ${topic.name}`}
            title="Click to rename"
            onClick={() => {
              setDraft(topic.name);
              setEditing(true);
            }}
          >
            {topic.name}
          </button>
        )}
      </td>
      <td>
        <span className="count" data-testid={`waiting-${topic.name}`}>
          {topic.usable_tokens}
        </span>
      </td>
      <td>
        <TopicLedger topicId={topic.id} name={topic.name} usable={topic.usable_tokens} />
      </td>
      <td>
        <TopicNotifications topicId={topic.id} name={topic.name} />
      </td>
      <td>
        {topic.used_by.length === 0 ? (
          <span className="muted">not used</span>
        ) : (
          topic.used_by.map((flow) => (
            <a key={flow} className="chip" href={href({ name: 'editor', flow })}>
              {flow}
            </a>
          ))
        )}
      </td>
      <td className="muted">{new Date(topic.created_ms).toLocaleString()}</td>
      <td className="actions">
        <button type="button" onClick={props.onNotify} aria-label={`Notify ${topic.name}`}>
          Notify
        </button>
        <button type="button" className="icon danger" aria-label={`Delete ${topic.name}`} title="Delete" onClick={props.onDelete}>
          <Icon name="trash" />
        </button>
      </td>
    </tr>
  );
}

function NewTopicDialog(props: { onClose(): void }) {
  const createTopic = useServer((s) => s.createTopic);
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const length = [...name].length;
  return (
    <Dialog title="New Topic" onClose={props.onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const problem = nameProblem(name);
          if (problem) return setError(problem);
          setBusy(true);
          try {
            const topic = await createTopic(name);
            toast(`Topic "${topic.name}" added`);
            props.onClose();
          } catch (err) {
            setError(serverNameError(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <label className="field">
          <span>Topic name</span>
          <input
            aria-label="Topic name"
            value={name}
            aria-invalid={error ? true : undefined}
            onChange={(e) => {
              setName(e.target.value);
              setError(null);
            }}
          />
        </label>
        <div className={`counter${length > TOPIC_NAME_MAX ? ' over' : ''}`} data-testid="topic-name-counter">
          {length}/{TOPIC_NAME_MAX}
        </div>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            Add
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function DeleteTopicDialog(props: { topic: Topic; onClose(): void }) {
  const { topic } = props;
  const page = useServer((s) => s.page) ?? '';
  const refresh = useServer((s) => s.refreshTopics);
  const [inUse, setInUse] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const remove = async (force: boolean) => {
    try {
      const done = await must(
        api.DELETE('/api/pages/{page}/topics/{topic}', {
          params: { path: { page, topic: topic.id }, query: { force } },
        }),
      );
      await refresh();
      toast(
        `Topic "${topic.name}" deleted` +
          (done.invalidated_tokens ? `; ${done.invalidated_tokens} waiting opt-in(s) invalidated` : ''),
      );
      props.onClose();
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 409) setInUse(err.message);
      else setError(messageOf(err));
    }
  };
  const waiting = topic.usable_tokens;
  return (
    <Dialog title={`Delete topic "${topic.name}"?`} onClose={props.onClose}>
      {inUse ? (
        <>
          <p className="warning" role="alert">
            This topic is in use: {inUse}
          </p>
          <p>
            Used by: <b>{topic.used_by.join(', ') || 'a live flow'}</b>. Deleting it anyway invalidates{' '}
            <b>
              {waiting} waiting opt-in{waiting === 1 ? '' : 's'}
            </b>
            ; those flows keep naming it until you edit them.
          </p>
        </>
      ) : (
        <p>
          {waiting > 0
            ? `${waiting} waiting opt-in${waiting === 1 ? '' : 's'} will be invalidated.`
            : 'No opt-ins are waiting on it.'}
        </p>
      )}
      {error && <p className="error">{error}</p>}
      <div className="dialog-actions">
        <button type="button" onClick={props.onClose}>
          Cancel
        </button>
        {inUse ? (
          <button type="button" className="danger" onClick={() => void remove(true)}>
            Delete anyway
          </button>
        ) : (
          <button type="button" className="danger" onClick={() => void remove(false)}>
            Delete
          </button>
        )}
      </div>
    </Dialog>
  );
}

function NotifyDialog(props: { topic: Topic; onClose(): void }) {
  const { topic } = props;
  const page = useServer((s) => s.page) ?? '';
  const flows = useServer((s) => s.flows);
  const refreshFlows = useServer((s) => s.refreshFlows);
  const refresh = useServer((s) => s.refreshTopics);
  const refreshNotifications = useServer((s) => s.refreshNotifications);
  const [mode, setMode] = useState<'text' | 'flow'>('text');
  const [text, setText] = useState('');
  const [flow, setFlow] = useState('');
  const [report, setReport] = useState<NotifyReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const live = flows.filter((f) => f.active_version != null);
  return (
    <Dialog title={`Notify "${topic.name}"`} onClose={props.onClose}>
      <p>
        {topic.usable_tokens} subscriber opt-in{topic.usable_tokens === 1 ? '' : 's'} waiting. Each message spends one.
      </p>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            const body = mode === 'text' ? { text } : { flow };
            const done = await must(
              api.POST('/api/pages/{page}/topics/{topic}/notify', {
                params: { path: { page, topic: topic.id } },
                body,
              }),
            );
            setReport(done);
            toast(notifyToastText(topic.name, done));
            await Promise.all([refresh(), refreshNotifications()]);
          } catch (err) {
            setError(messageOf(err));
          }
        }}
      >
        <div className="row">
          <label>
            <input type="radio" checked={mode === 'text'} onChange={() => setMode('text')} /> Text
          </label>
          <label>
            <input
              type="radio"
              checked={mode === 'flow'}
              onChange={() => {
                setMode('flow');
                void refreshFlows();
              }}
            />{' '}
            Run a flow
          </label>
        </div>
        {mode === 'text' ? (
          <label className="field">
            <span>Message</span>
            <textarea aria-label="Message" value={text} onChange={(e) => setText(e.target.value)} rows={3} />
            <span className="counter">{[...text].length}/2000</span>
          </label>
        ) : (
          <label className="field">
            <span>Flow</span>
            <select aria-label="Flow" value={flow} onChange={(e) => setFlow(e.target.value)}>
              <option value="">Choose a published flow</option>
              {live.map((f) => (
                <option key={f.id} value={f.id}>
                  {f.name} ({f.id})
                </option>
              ))}
            </select>
          </label>
        )}
        {error && <p className="error">{error}</p>}
        {report && (
          <p className="result" data-testid="notify-result">
            {notifyResultText(report)}
          </p>
        )}
        {report && (
          <p className="muted" data-testid="notify-id">
            Notification {report.id}: its progress shows in the topic's row.
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Close
          </button>
          <button type="submit" className="primary">
            Send
          </button>
        </div>
      </form>
    </Dialog>
  );
}
