// The flow editor: toolbar (undo/redo, tidy up, add block, save, publish, versions, problems,
// preview, JSON), the canvas, the side panel; validation and autosave as the author edits.
import { ReactFlowProvider, useReactFlow } from '@xyflow/react';
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiFailure, messageOf, must } from '../api/client';
import { useLiveTopics } from '../data/live';
import { useServer } from '../data/server';
import { href } from '../route';
import { Dialog } from '../ui/Dialog';
import { toast } from '../ui/toasts';
import { Canvas } from './Canvas';
import { placeAll } from './diagnostics';
import { BLOCK_KINDS, newBlock, referencesTo, removeBlock, setIn, type FlowDoc } from './flow';
import { dagrePositions } from './layout';
import { PreviewPane } from './PreviewPane';
import { ProblemsPanel } from './ProblemsPanel';
import { SidePanel } from './SidePanel';
import { redo, undo, useEditor } from './store';
import { VersionsDialog } from './VersionsDialog';
import { Icon } from '../ui/Icon';

const VALIDATE_DEBOUNCE_MS = 250;
const AUTOSAVE_DEBOUNCE_MS = 1200;

export function EditorPage(props: { page: string; flowId: string }) {
  return (
    <ReactFlowProvider>
      <Editor {...props} />
    </ReactFlowProvider>
  );
}

function Editor({ page, flowId }: { page: string; flowId: string }) {
  useLiveTopics();
  const doc = useEditor((s) => s.doc);
  const revision = useEditor((s) => s.revision);
  const savedRevision = useEditor((s) => s.savedRevision);
  const diagnostics = useEditor((s) => s.diagnostics);
  const canUndo = useEditor.temporal.getState().pastStates.length > 0;
  const canRedo = useEditor.temporal.getState().futureStates.length > 0;
  const refreshFlows = useServer((s) => s.refreshFlows);
  const flow = useReactFlow();
  const [loadError, setLoadError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [validated, setValidated] = useState(-1);
  const [panel, setPanel] = useState<'problems' | 'preview' | null>(null);
  const [dialog, setDialog] = useState<'json' | 'versions' | null>(null);
  const [adding, setAdding] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState<{ id: string; refs: number } | null>(null);
  const [live, setLive] = useState<number | null>(null);
  const saveChain = useRef<Promise<void>>(Promise.resolve());
  const flowRef = useRef(flow);
  flowRef.current = flow;

  useEffect(() => {
    let cancelled = false;
    useEditor.setState({ doc: null });
    must(api.GET('/api/pages/{page}/flows/{flow}', { params: { path: { page, flow: flowId } } }))
      .then((draft) => {
        if (cancelled) return;
        useEditor.getState().load(draft.document as unknown as FlowDoc);
        useEditor.getState().setDiagnostics(draft.diagnostics);
        window.setTimeout(() => void flowRef.current.fitView({ padding: 0.15 }), 50);
      })
      .catch((err: unknown) => !cancelled && setLoadError(messageOf(err)));
    useServer
      .getState()
      .refreshFlows()
      .then(() => !cancelled && setLive(useServer.getState().flows.find((f) => f.id === flowId)?.active_version ?? null))
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, [page, flowId]);

  // Validate every edit (debounced) against the Page: diagnostics drawn on the blocks.
  useEffect(() => {
    if (!doc) return;
    const at = revision;
    const timer = window.setTimeout(() => {
      must(api.POST('/api/validate', { params: { query: { page } }, body: doc as never }))
        .then((report) => {
          if (useEditor.getState().revision === at) {
            useEditor.getState().setDiagnostics(report.diagnostics);
            setValidated(at);
          }
        })
        .catch((err: unknown) => toast(`Validation failed: ${messageOf(err)}`, 'error'));
    }, VALIDATE_DEBOUNCE_MS);
    return () => window.clearTimeout(timer);
  }, [doc, revision, page]);

  const save = useCallback((): Promise<void> => {
    const run = async () => {
      const { doc: current, revision: at, savedRevision: saved } = useEditor.getState();
      if (!current || at === saved) return;
      setSaving(true);
      try {
        await must(api.PUT('/api/pages/{page}/flows/{flow}', { params: { path: { page, flow: flowId } }, body: current as never }));
        useEditor.getState().markSaved(at);
      } catch (err) {
        toast(`Not saved: ${messageOf(err)}`, 'error');
        throw err;
      } finally {
        setSaving(false);
      }
    };
    saveChain.current = saveChain.current.catch(() => undefined).then(run);
    return saveChain.current;
  }, [page, flowId]);

  // Leaving the editor saves what the debounce has not saved yet.
  useEffect(
    () => () => {
      const { doc: current, revision: at, savedRevision: saved } = useEditor.getState();
      if (current && at !== saved)
        void must(api.PUT('/api/pages/{page}/flows/{flow}', { params: { path: { page, flow: flowId } }, body: current as never })).catch(
          (err: unknown) => toast(`Not saved: ${messageOf(err)}`, 'error'),
        );
    },
    [page, flowId],
  );

  // Autosave, debounced.
  useEffect(() => {
    if (revision === savedRevision) return;
    const timer = window.setTimeout(() => void save().catch(() => undefined), AUTOSAVE_DEBOUNCE_MS);
    return () => window.clearTimeout(timer);
  }, [revision, savedRevision, save]);

  // Undo/redo from the keyboard (not while typing in a field).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
      if (!(e.ctrlKey || e.metaKey)) return;
      const key = e.key.toLowerCase();
      if (key === 'z' && !e.shiftKey) {
        e.preventDefault();
        undo();
      } else if ((key === 'z' && e.shiftKey) || key === 'y') {
        e.preventDefault();
        redo();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  const placed = placeAll(doc, diagnostics);
  const upToDate = validated === revision;

  const publish = async () => {
    try {
      await save();
      const done = await must(api.POST('/api/pages/{page}/flows/{flow}/publish', { params: { path: { page, flow: flowId } } }));
      const created = done.topics_created.map((t) => `"${t.name}"`).join(', ');
      toast(done.unchanged ? `Nothing new to publish: v${done.version} is live` : `Published v${done.version}${created ? `; topics created: ${created}` : ''}`);
      setLive(done.version);
      await useServer.getState().refreshTopics();
    } catch (err) {
      if (err instanceof ApiFailure && err.diagnostics.length) useEditor.getState().setDiagnostics(err.diagnostics);
      toast(`Not published: ${messageOf(err)}`, 'error');
    }
  };

  const tidyUp = () => {
    useEditor.getState().edit((d) => {
      const positions = dagrePositions(d);
      let next = d;
      d.blocks.forEach((b, i) => {
        const p = positions.get(b.id);
        if (p) next = setIn(next, ['blocks', i, 'position'], p);
      });
      return next;
    });
    window.setTimeout(() => flow.fitView({ padding: 0.15, duration: 200 }), 50);
  };

  const addBlock = (type: string) => {
    const bounds = document.querySelector('.canvas')?.getBoundingClientRect();
    const center = bounds ? flow.screenToFlowPosition({ x: bounds.left + bounds.width / 2, y: bounds.top + bounds.height / 2 }) : { x: 0, y: 0 };
    const current = useEditor.getState().doc;
    if (!current) return;
    const block = newBlock(current, type, center);
    useEditor.getState().edit((d) => ({ ...d, blocks: [...d.blocks, block] }));
    useEditor.getState().select({ kind: 'block', id: block.id });
    setAdding(false);
  };

  const requestDelete = (id: string) => {
    const current = useEditor.getState().doc;
    if (!current) return;
    const refs = referencesTo(current, id).filter((r) => current.blocks[r.index].id !== id).length + (current.start === id ? 1 : 0);
    if (refs > 0) setConfirmDelete({ id, refs });
    else {
      useEditor.getState().edit((d) => removeBlock(d, id));
      useEditor.getState().select(null);
    }
  };

  if (loadError) {
    return (
      <section className="page">
        <p className="error">{loadError}</p>
        <a href={href({ name: 'flows' })}>Back to flows</a>
      </section>
    );
  }
  if (!doc) return <section className="page muted">Loading…</section>;
  const dirty = revision !== savedRevision;
  return (
    <div className="editor">
      <header className="toolbar" role="toolbar" aria-label="Flow editor">
        <a href={href({ name: 'flows' })} className="back">
          ← Flows
        </a>
        <h1 className="flow-name">{doc.name}</h1>
        <span className="save-state" data-testid="save-state">
          {saving ? 'Saving…' : dirty ? 'Unsaved changes' : 'Saved'}
        </span>
        <span className="muted">{live != null ? `live v${live}` : 'not published'}</span>
        <span className="spacer" />
        <button type="button" aria-label="Undo" title="Undo (Ctrl+Z)" disabled={!canUndo} onClick={undo}>
          ↶
        </button>
        <button type="button" aria-label="Redo" title="Redo (Ctrl+Shift+Z)" disabled={!canRedo} onClick={redo}>
          ↷
        </button>
        <div className="add-menu">
          <button type="button" aria-haspopup="menu" aria-expanded={adding} onClick={() => setAdding(!adding)}>
            + Block
          </button>
          {adding && (
            <div className="menu" role="menu" aria-label="Add a block">
              {BLOCK_KINDS.map((k) => (
                <button key={k.type} type="button" role="menuitem" onClick={() => addBlock(k.type)}>
                  <Icon name={k.icon} /> {k.label}
                </button>
              ))}
            </div>
          )}
        </div>
        <button type="button" onClick={tidyUp}>
          Tidy up
        </button>
        <button
          type="button"
          className={errors ? 'problems-button has-errors' : 'problems-button'}
          aria-pressed={panel === 'problems'}
          onClick={() => setPanel(panel === 'problems' ? null : 'problems')}
        >
          Problems{' '}
          <span className="pill">
            {errors ? `${errors} error${errors === 1 ? '' : 's'}` : warnings ? `${warnings} warning${warnings === 1 ? '' : 's'}` : '0'}
          </span>
        </button>
        <button type="button" aria-pressed={panel === 'preview'} onClick={() => setPanel(panel === 'preview' ? null : 'preview')}>
          Preview
        </button>
        <button type="button" onClick={() => setDialog('json')}>
          JSON
        </button>
        <button type="button" onClick={() => setDialog('versions')}>
          Versions
        </button>
        <button type="button" onClick={() => void save().catch(() => undefined)} disabled={!dirty}>
          Save
        </button>
        <button
          type="button"
          className="primary"
          onClick={() => void publish()}
          disabled={errors > 0 || !upToDate}
          title={errors > 0 ? 'Fix the errors first (see Problems)' : undefined}
        >
          Publish
        </button>
      </header>
      {placed.banner.length > 0 && (
        <div className="banner banner-error" role="alert">
          {placed.banner.map((d) => d.message).join(' · ')}
        </div>
      )}
      <div className="editor-body">
        <div className="canvas-column">
          <Canvas onConfirmDelete={(id, refs) => setConfirmDelete({ id, refs })} />
          {panel === 'problems' && <ProblemsPanel onClose={() => setPanel(null)} />}
        </div>
        <SidePanel onDelete={requestDelete} />
        {panel === 'preview' && <PreviewPane page={page} onClose={() => setPanel(null)} />}
      </div>
      {dialog === 'json' && (
        <Dialog title="JSON" onClose={() => setDialog(null)} wide>
          <pre className="json" data-testid="json-view">
            {JSON.stringify(doc, null, 2)}
          </pre>
        </Dialog>
      )}
      {dialog === 'versions' && (
        <VersionsDialog page={page} flow={flowId} onClose={() => setDialog(null)} onRolledBack={() => void refreshFlows().then(() => setLive(useServer.getState().flows.find((f) => f.id === flowId)?.active_version ?? null))} />
      )}
      {confirmDelete && (
        <Dialog title={`Delete block ${confirmDelete.id}?`} onClose={() => setConfirmDelete(null)}>
          <p>
            {confirmDelete.refs} connection{confirmDelete.refs === 1 ? '' : 's'} lead{confirmDelete.refs === 1 ? 's' : ''} to this block; they will be removed.
          </p>
          <div className="dialog-actions">
            <button type="button" onClick={() => setConfirmDelete(null)}>
              Cancel
            </button>
            <button
              type="button"
              className="danger"
              onClick={() => {
                useEditor.getState().edit((d) => removeBlock(d, confirmDelete.id));
                useEditor.getState().select(null);
                setConfirmDelete(null);
              }}
            >
              Delete
            </button>
          </div>
        </Dialog>
      )}
    </div>
  );
}

