// Keeps the chosen Page's topics (and its notifications' progress) fresh while a component that
// shows them is mounted.
import { useEffect } from 'react';
import { LIVE_REFRESH_MS, PROGRESS_REFRESH_MS, useServer } from './server';

/** Calls `refresh` now and every `ms` while the tab is visible and a Page is chosen. */
function usePolling(refresh: () => Promise<void>, ms: number): void {
  const page = useServer((s) => s.page);
  useEffect(() => {
    if (!page) return;
    let stopped = false;
    const tick = () => {
      if (!stopped && document.visibilityState === 'visible') refresh().catch(() => undefined);
    };
    tick();
    const timer = window.setInterval(tick, ms);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [page, refresh, ms]);
}

export function useLiveTopics(): void {
  usePolling(
    useServer((s) => s.refreshTopics),
    LIVE_REFRESH_MS,
  );
}

export function useLiveNotifications(): void {
  usePolling(
    useServer((s) => s.refreshNotifications),
    PROGRESS_REFRESH_MS,
  );
}
