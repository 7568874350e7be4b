// The one API client: openapi-fetch over the generated types, with the admin token attached.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Topic = components['schemas']['Topic'];
export type TopicLedger = components['schemas']['TopicLedger'];
export type LedgerDay = components['schemas']['LedgerDay'];
export type Diagnostic = components['schemas']['Diagnostic'];
export type ValidationReport = components['schemas']['ValidationReport'];
export type FlowSummary = components['schemas']['FlowSummary'];
export type PublishReport = components['schemas']['PublishReport'];
export type NotifyReport = components['schemas']['NotifyReport'];
export type Notification = components['schemas']['Notification'];
export type NotificationCancelled = components['schemas']['NotificationCancelled'];
export type PreviewReport = components['schemas']['PreviewReport'];
export type PreviewMessage = components['schemas']['PreviewMessage'];
/** One subscriber action in a preview (a `botflow simulate` script step; the server checks it). */
export type PreviewStep = NonNullable<components['schemas']['PreviewRequest']['input']>;
export type FlowVersion = components['schemas']['FlowVersion'];
type ErrorBody = components['schemas']['Error'];

const TOKEN_KEY = 'botflow.token';

/** The admin token kept for this tab; `#token=…` in the URL stores a new one. */
export function takeTokenFromHash(): void {
  const match = /^#token=([^&]+)/.exec(window.location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, '', window.location.pathname + '#/flows');
}

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = getToken();
    if (token) request.headers.set('Authorization', `Bearer ${token}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(auth);

/** An answer other than 2xx: its status, message and diagnostics. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly diagnostics: Diagnostic[] = [],
  ) {
    super(message);
  }
}

/** The data of a 2xx answer, or an [`ApiFailure`] thrown with the server's message. */
export async function must<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok && data !== undefined) return data;
  const body = error as Partial<ErrorBody> | undefined;
  throw new ApiFailure(
    response.status,
    body?.error?.message ?? `HTTP ${response.status}`,
    body?.error?.code ?? 'unknown',
    body?.error?.diagnostics ?? [],
  );
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
