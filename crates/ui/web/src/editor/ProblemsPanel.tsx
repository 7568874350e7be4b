// The Problems panel: every diagnostic of the draft; a click selects its block and focuses the field.
import { placeDiagnostic } from './diagnostics';
import { useEditor } from './store';

export function ProblemsPanel(props: { onClose(): void }) {
  const doc = useEditor((s) => s.doc);
  const diagnostics = useEditor((s) => s.diagnostics);
  const select = useEditor((s) => s.select);
  return (
    <section className="problems" aria-label="Problems">
      <div className="panel-head">
        <h2>Problems ({diagnostics.length})</h2>
        <button type="button" className="icon" aria-label="Close problems" onClick={props.onClose}>
          ✕
        </button>
      </div>
      {diagnostics.length === 0 && <p className="muted">No problems: this flow can be published.</p>}
      <ul>
        {diagnostics.map((d, i) => {
          const where = placeDiagnostic(doc, d.pointer);
          return (
            <li key={i}>
              <button
                type="button"
                className={`problem problem-${d.severity}`}
                onClick={() => {
                  if (where.block) select({ kind: 'block', id: where.block }, d.pointer);
                  else if (where.start) select({ kind: 'start' }, d.pointer);
                }}
              >
                <span className="problem-where">{where.block ?? (where.start ? 'Start' : 'Flow')}</span>
                <span>{d.message}</span>
                {d.hint && <span className="muted"> {d.hint}</span>}
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
