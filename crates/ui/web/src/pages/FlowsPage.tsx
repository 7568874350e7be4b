// Flows: one row per flow (name, id, triggers, draft state with problem counts, live and latest
// version), New flow, open a flow.
import { useEffect, useRef, useState } from 'react';
import { api, messageOf, must } from '../api/client';
import { useServer } from '../data/server';
import { href, navigate } from '../route';
import { Dialog } from '../ui/Dialog';
import { toast } from '../ui/toasts';
import { describeTrigger, newFlowDocument, slugify } from '../editor/flow';

export function FlowsPage() {
  const { flows, page, refreshFlows } = useServer();
  const [creating, setCreating] = useState(false);
  const [triggers, setTriggers] = useState<Record<string, string>>({});
  const asked = useRef(new Set<string>());
  useEffect(() => {
    refreshFlows().catch((err: unknown) => toast(messageOf(err), 'error'));
  }, [refreshFlows]);
  useEffect(() => {
    if (!page) return;
    for (const flow of flows) {
      if (asked.current.has(flow.id) || flow.draft.state === 'none') continue;
      asked.current.add(flow.id);
      must(api.GET('/api/pages/{page}/flows/{flow}', { params: { path: { page, flow: flow.id } } }))
        .then((draft) => {
          const list = (draft.document as { triggers?: { type: string; words?: string[]; ref?: string }[] }).triggers ?? [];
          setTriggers((t) => ({ ...t, [flow.id]: list.map(describeTrigger).join(', ') }));
        })
        .catch(() => setTriggers((t) => ({ ...t, [flow.id]: '' })));
    }
  }, [flows, page]);
  return (
    <section className="page">
      <div className="page-head">
        <h1>Flows</h1>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          New flow
        </button>
      </div>
      <table className="table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Id</th>
            <th>Triggers</th>
            <th>Draft</th>
            <th>Live</th>
            <th>Latest</th>
          </tr>
        </thead>
        <tbody>
          {flows.map((f) => (
            <tr key={f.id} data-testid={`flow-row-${f.id}`}>
              <td>
                <a href={href({ name: 'editor', flow: f.id })}>{f.name}</a>
              </td>
              <td className="mono">{f.id}</td>
              <td>{triggers[f.id] === '' ? <span className="muted">none (started by go to flow or a notification)</span> : (triggers[f.id] ?? '')}</td>
              <td>
                {f.draft.state === 'unpublished' ? 'unpublished changes' : f.draft.state === 'published' ? 'published' : 'none'}
                {f.broken && <span className="pill pill-error" title={f.broken}>live version unreadable</span>}
                {f.draft.state === 'unpublished' && f.draft.errors > 0 && <span className="pill pill-error">{f.draft.errors} errors</span>}
                {f.draft.state === 'unpublished' && f.draft.warnings > 0 && <span className="pill pill-warning">{f.draft.warnings} warnings</span>}
              </td>
              <td>{f.active_version != null ? `v${f.active_version}` : '—'}</td>
              <td>{f.latest_version != null ? `v${f.latest_version}` : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {creating && page && <NewFlowDialog page={page} onClose={() => setCreating(false)} />}
    </section>
  );
}

function NewFlowDialog(props: { page: string; onClose(): void }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <Dialog title="New flow" onClose={props.onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const id = slugify(name);
          if (!id) return setError('Give the flow a name.');
          try {
            await must(
              api.PUT('/api/pages/{page}/flows/{flow}', {
                params: { path: { page: props.page, flow: id } },
                body: newFlowDocument(id, name.trim()) as never,
              }),
            );
            navigate({ name: 'editor', flow: id });
          } catch (err) {
            setError(messageOf(err));
          }
        }}
      >
        <label className="field">
          <span>Flow name</span>
          <input aria-label="Flow name" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <p className="muted">Id: {slugify(name) || '…'}</p>
        {error && <p className="error">{error}</p>}
        <div className="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary">
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}
