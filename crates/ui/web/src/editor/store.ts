// The one store of the edited flow document, with a snapshot undo history (zundo). Canvas nodes
// and edges are derived from `doc`; nothing else holds a copy of it.
import { create } from 'zustand';
import { temporal } from 'zundo';
import type { Diagnostic } from '../api/client';
import type { FlowDoc, Path } from './flow';
import { setIn } from './flow';

export type Selection = { kind: 'block'; id: string } | { kind: 'start' } | null;

interface EditorState {
  doc: FlowDoc | null;
  /** Bumped on every edit; the save and validate effects watch it. */
  revision: number;
  savedRevision: number;
  diagnostics: Diagnostic[];
  selection: Selection;
  /** A pointer the side panel should focus once it renders. */
  focusPointer: string | null;
  load(doc: FlowDoc): void;
  edit(change: (doc: FlowDoc) => FlowDoc): void;
  setAt(path: Path, value: unknown): void;
  select(selection: Selection, focusPointer?: string | null): void;
  setDiagnostics(diagnostics: Diagnostic[]): void;
  markSaved(revision: number): void;
}

export const useEditor = create<EditorState>()(
  temporal(
    (set, get) => ({
      doc: null,
      revision: 0,
      savedRevision: 0,
      diagnostics: [],
      selection: null,
      focusPointer: null,
      load(doc) {
        set({ doc, revision: 0, savedRevision: 0, diagnostics: [], selection: null });
        useEditor.temporal.getState().clear();
      },
      edit(change) {
        const doc = get().doc;
        if (!doc) return;
        const next = change(doc);
        if (next === doc) return;
        set({ doc: next, revision: get().revision + 1 });
      },
      setAt(path, value) {
        get().edit((doc) => setIn(doc, path, value));
      },
      select(selection, focusPointer = null) {
        set({ selection, focusPointer });
      },
      setDiagnostics(diagnostics) {
        set({ diagnostics });
      },
      markSaved(revision) {
        set({ savedRevision: revision });
      },
    }),
    {
      // Only the document is history; undo counts as an edit to save.
      partialize: (state) => ({ doc: state.doc }),
      equality: (a, b) => a.doc === b.doc,
      limit: 200,
    },
  ),
);

export function undo(): void {
  const before = useEditor.getState().doc;
  useEditor.temporal.getState().undo();
  if (useEditor.getState().doc !== before) bump();
}

export function redo(): void {
  const before = useEditor.getState().doc;
  useEditor.temporal.getState().redo();
  if (useEditor.getState().doc !== before) bump();
}

function bump(): void {
  useEditor.setState((s) => ({ revision: s.revision + 1 }));
}
