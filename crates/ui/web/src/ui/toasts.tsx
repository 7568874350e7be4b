// Toasts: short confirmations and errors, announced through an aria-live region.
import { create } from 'zustand';

interface Toast {
  id: number;
  text: string;
  kind: 'info' | 'error';
}

interface Toasts {
  toasts: Toast[];
  push(text: string, kind?: 'info' | 'error'): void;
  dismiss(id: number): void;
}

let nextId = 1;

export const useToasts = create<Toasts>((set, get) => ({
  toasts: [],
  push(text, kind = 'info') {
    const id = nextId++;
    set({ toasts: [...get().toasts, { id, text, kind }] });
    window.setTimeout(() => get().dismiss(id), 6000);
  },
  dismiss(id) {
    set({ toasts: get().toasts.filter((t) => t.id !== id) });
  },
}));

export function toast(text: string, kind: 'info' | 'error' = 'info'): void {
  useToasts.getState().push(text, kind);
}

export function ToastRegion() {
  const toasts = useToasts((s) => s.toasts);
  const dismiss = useToasts((s) => s.dismiss);
  return (
    <div className="toasts" aria-live="polite" role="status">
      {toasts.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`}>
          <span>{t.text}</span>
          <button type="button" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
