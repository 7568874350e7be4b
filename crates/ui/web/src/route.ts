// Hash routes: #/flows, #/flows/{flow}, #/content/otn-topics, #/subscribers.
import { useSyncExternalStore } from 'react';

export type Route =
  | { name: 'flows' }
  | { name: 'editor'; flow: string }
  | { name: 'topics' }
  | { name: 'subscribers' };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  const editor = /^\/flows\/(.+)$/.exec(path);
  if (editor) return { name: 'editor', flow: decodeURIComponent(editor[1]) };
  if (path === '/content/otn-topics') return { name: 'topics' };
  if (path === '/subscribers') return { name: 'subscribers' };
  return { name: 'flows' };
}

export function href(route: Route): string {
  switch (route.name) {
    case 'editor':
      return `#/flows/${encodeURIComponent(route.flow)}`;
    case 'topics':
      return '#/content/otn-topics';
    case 'subscribers':
      return '#/subscribers';
    default:
      return '#/flows';
  }
}

function subscribe(callback: () => void): () => void {
  window.addEventListener('hashchange', callback);
  return () => window.removeEventListener('hashchange', callback);
}

export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, () => window.location.hash);
  return parseRoute(hash);
}

export function navigate(route: Route): void {
  window.location.hash = href(route);
}
