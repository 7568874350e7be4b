// Subscribers: look one up by PSID and see their session, fields, tags and tokens.
import { useState } from 'react';
import { api, messageOf, must } from '../api/client';
import type { components } from '../api/schema';

type Subscriber = components['schemas']['Subscriber'];

export function SubscribersPage(props: { page: string }) {
  const [psid, setPsid] = useState('');
  const [found, setFound] = useState<Subscriber | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <section className="page">
      <h1>Subscribers</h1>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          setError(null);
          must(api.GET('/api/pages/{page}/subscribers/{psid}', { params: { path: { page: props.page, psid } } }))
            .then(setFound)
            .catch((err: unknown) => {
              setFound(null);
              setError(messageOf(err));
            });
        }}
      >
        <label>
          PSID <input value={psid} onChange={(e) => setPsid(e.target.value)} />
        </label>
        <button type="submit">Look up</button>
      </form>
      {error && <p className="error">{error}</p>}
      {found && (
        <div className="card">
          <p>
            <b>Tags:</b> {found.tags.join(', ') || 'none'}
          </p>
          <p>
            <b>Fields:</b>{' '}
            {Object.entries(found.fields)
              .map(([k, v]) => `${k} = ${v}`)
              .join(', ') || 'none'}
          </p>
          <p>
            <b>Opt-ins:</b>{' '}
            {found.tokens_by_topic.map((t) => `${t.name ?? t.topic}: ${t.usable}`).join(', ') || 'none'}
          </p>
          <pre className="json">{JSON.stringify(found.session, null, 2)}</pre>
        </div>
      )}
    </section>
  );
}
