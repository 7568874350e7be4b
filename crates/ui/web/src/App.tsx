// The shell: navigation (Flows; Content › OTN Topics; Subscribers), the Page switcher, the
// token prompt and the toast region; the routed page fills the rest.
import { useEffect, useState } from 'react';
import { ApiFailure, getToken, messageOf, setToken } from './api/client';
import { useServer } from './data/server';
import { EditorPage } from './editor/EditorPage';
import { FlowsPage } from './pages/FlowsPage';
import { SubscribersPage } from './pages/SubscribersPage';
import { TopicsPage } from './pages/TopicsPage';
import { href, useRoute } from './route';
import { ToastRegion } from './ui/toasts';

export function App() {
  const [token, setTokenState] = useState(getToken());
  const [failure, setFailure] = useState<string | null>(null);
  const page = useServer((s) => s.page);
  const pages = useServer((s) => s.pages);
  const loadPages = useServer((s) => s.loadPages);
  const choosePage = useServer((s) => s.choosePage);
  const route = useRoute();

  useEffect(() => {
    if (!token) return;
    loadPages().catch((err: unknown) => {
      if (err instanceof ApiFailure && err.status === 401) {
        setToken(null);
        setTokenState(null);
        setFailure('That token was refused. Paste the admin token (BOTFLOW_ADMIN_TOKEN).');
      } else setFailure(messageOf(err));
    });
  }, [token, loadPages]);

  if (!token) {
    return (
      <TokenPrompt
        failure={failure}
        onToken={(t) => {
          setToken(t);
          setFailure(null);
          setTokenState(t);
        }}
      />
    );
  }

  return (
    <div className="shell">
      <nav className="sidebar" aria-label="Main">
        <div className="brand">botflow</div>
        <label className="page-switch">
          <span>Page</span>
          <select aria-label="Page" value={page ?? ''} onChange={(e) => choosePage(e.target.value)}>
            {pages.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <a href={href({ name: 'flows' })} aria-current={route.name === 'flows' || route.name === 'editor' ? 'page' : undefined}>
          Flows
        </a>
        <div className="nav-group">Content</div>
        <a className="nav-sub" href={href({ name: 'topics' })} aria-current={route.name === 'topics' ? 'page' : undefined}>
          OTN Topics
        </a>
        <a href={href({ name: 'subscribers' })} aria-current={route.name === 'subscribers' ? 'page' : undefined}>
          Subscribers
        </a>
      </nav>
      <main className="main">
        {failure && <div className="banner banner-error">{failure}</div>}
        {page &&
          (route.name === 'topics' ? (
            <TopicsPage key={page} />
          ) : route.name === 'editor' ? (
            <EditorPage key={`${page}/${route.flow}`} page={page} flowId={route.flow} />
          ) : route.name === 'subscribers' ? (
            <SubscribersPage key={page} page={page} />
          ) : (
            <FlowsPage key={page} />
          ))}
      </main>
      <ToastRegion />
    </div>
  );
}

function TokenPrompt(props: { failure: string | null; onToken(token: string): void }) {
  const [value, setValue] = useState('');
  return (
    <main className="login">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) props.onToken(value.trim());
        }}
      >
        <h1>botflow builder</h1>
        <p>Paste the admin token, or open the link `botflow serve --demo` prints.</p>
        {props.failure && <p className="error">{props.failure}</p>}
        <label>
          Admin token
          <input type="password" value={value} onChange={(e) => setValue(e.target.value)} autoFocus />
        </label>
        <button type="submit" className="primary">
          Open
        </button>
      </form>
    </main>
  );
}
