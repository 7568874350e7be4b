// Versions: the published versions of the flow, a read-only view of each, and rollback.
import { useEffect, useState } from 'react';
import { api, messageOf, must, type FlowSummary, type FlowVersion } from '../api/client';
import { Dialog } from '../ui/Dialog';
import { toast } from '../ui/toasts';

export function VersionsDialog(props: { page: string; flow: string; onClose(): void; onRolledBack(): void }) {
  const [summary, setSummary] = useState<FlowSummary | null>(null);
  const [viewing, setViewing] = useState<FlowVersion | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    must(api.GET('/api/pages/{page}/flows', { params: { path: { page: props.page } } }))
      .then((flows) => setSummary(flows.find((f) => f.id === props.flow) ?? null))
      .catch((err: unknown) => setError(messageOf(err)));
  useEffect(() => {
    void load();
  }, []); // once: `load` reads only the props the dialog was opened with
  const latest = summary?.latest_version ?? 0;
  const versions = Array.from({ length: latest }, (_, i) => latest - i);
  const path = (n: number) => ({ page: props.page, flow: props.flow, n });
  return (
    <Dialog title="Versions" onClose={props.onClose} wide>
      {error && <p className="error">{error}</p>}
      {latest === 0 && <p className="muted">Not published yet.</p>}
      <ul className="versions">
        {versions.map((n) => (
          <li key={n}>
            <span>
              v{n} {summary?.active_version === n && <span className="pill">live</span>}
            </span>
            <button
              type="button"
              onClick={() =>
                must(api.GET('/api/pages/{page}/flows/{flow}/versions/{n}', { params: { path: path(n) } }))
                  .then(setViewing)
                  .catch((err: unknown) => setError(messageOf(err)))
              }
            >
              View
            </button>
            <button
              type="button"
              disabled={summary?.active_version === n}
              onClick={async () => {
                try {
                  const done = await must(api.POST('/api/pages/{page}/flows/{flow}/rollback/{n}', { params: { path: path(n) } }));
                  toast(`Rolled back: v${n} is live again as v${done.version}`);
                  await load();
                  props.onRolledBack();
                } catch (err) {
                  setError(messageOf(err));
                }
              }}
            >
              Roll back to v{n}
            </button>
          </li>
        ))}
      </ul>
      {viewing && (
        <>
          <h3>
            v{viewing.version}
            {viewing.published_ms ? ` · published ${new Date(viewing.published_ms).toLocaleString()}` : ''} (read-only)
          </h3>
          <pre className="json" aria-label={`Version ${viewing.version}`}>
            {JSON.stringify(viewing.source, null, 2)}
          </pre>
        </>
      )}
    </Dialog>
  );
}
