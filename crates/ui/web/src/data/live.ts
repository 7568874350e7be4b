// Keeps the chosen Page's topics fresh while a component that shows them is mounted.
import { useEffect } from 'react';
import { LIVE_REFRESH_MS, useServer } from './server';

export function useLiveTopics(): void {
  const page = useServer((s) => s.page);
  const refresh = useServer((s) => s.refreshTopics);
  useEffect(() => {
    if (!page) return;
    let stopped = false;
    const tick = () => {
      if (!stopped && document.visibilityState === 'visible') refresh().catch(() => undefined);
    };
    tick();
    const timer = window.setInterval(tick, LIVE_REFRESH_MS);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [page, refresh]);
}
