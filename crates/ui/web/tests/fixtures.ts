// Test fixtures: a real `botflow serve --demo` per test (port 0, its own data dir), the builder
// opened through the printed link, and a guard that fails the test on any console or page error.
import { test as base, expect, type Page } from '@playwright/test';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const BINARY = process.env.BOTFLOW_BIN ?? join(ROOT, 'target', 'debug', 'botflow');
const START_DEADLINE_MS = 30_000;

export interface SignedWebhook {
  body: string;
  signature: string;
}

export interface Demo {
  /** http://127.0.0.1:PORT */
  url: string;
  token: string;
  page: string;
  /** The builder link the demo prints (with #token=). */
  link: string;
  /** The walkthrough's signed webhooks: [0] the keyword message, [1] the opt-in. */
  webhooks: SignedWebhook[];
  /** Posts a signed webhook body as Messenger would. */
  postWebhook(hook: SignedWebhook): Promise<void>;
  /** GET on the admin API with the token. */
  api<T>(path: string): Promise<T>;
}

function startDemo(): Promise<{ demo: Demo; stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'botflow-ui-test-'));
  const child: ChildProcessWithoutNullStreams = spawn(BINARY, ['serve', '--demo'], {
    cwd: dataDir,
    env: { ...process.env, BOTFLOW_LISTEN: '127.0.0.1:0', BOTFLOW_DATA_DIR: join(dataDir, 'db'), NO_COLOR: '1' },
  });
  let out = '';
  let err = '';
  const exited = new Promise<void>((done) => child.on('exit', () => done()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  };
  return new Promise((resolveDemo, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`botflow serve --demo printed no walkthrough within ${START_DEADLINE_MS} ms:\n${out}\n${err}`));
    }, START_DEADLINE_MS);
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${BINARY}: ${e.message} (build it with cargo build -p botflow-cli)`));
    });
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!out.includes('Stop with Ctrl-C.')) return;
      clearTimeout(timer);
      const url = /botflow listening on (http:\/\/\S+)/.exec(out)?.[1];
      const link = /Open the builder[^:]*: (http:\/\/\S+)/.exec(out)?.[1];
      const page = /published on Page (\S+?);/.exec(out)?.[1];
      if (!url || !link || !page) return reject(new Error(`unexpected demo output:\n${out}`));
      const token = decodeURIComponent(link.split('#token=')[1]);
      const webhooks = out
        .split('\n')
        .filter((line) => line.includes('X-Hub-Signature-256'))
        .map((line) => ({
          signature: /X-Hub-Signature-256: ([^']+)'/.exec(line)?.[1] ?? '',
          body: / -d '(.*)'$/.exec(line)?.[1] ?? '',
        }));
      const demo: Demo = {
        url,
        token,
        page,
        link,
        webhooks,
        async postWebhook(hook) {
          const response = await fetch(`${url}/webhook`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': hook.signature },
            body: hook.body,
          });
          if (!response.ok) throw new Error(`webhook answered ${response.status}: ${await response.text()}`);
        },
        async api<T>(path: string) {
          const response = await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
          if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`);
          return (await response.json()) as T;
        },
      };
      resolveDemo({ demo, stop });
    });
  });
}

interface Fixtures {
  demo: Demo;
  /** HTTP statuses a test expects the UI to receive (Chromium logs each as a console error). */
  allowHttpErrors: number[];
}

export const test = base.extend<Fixtures>({
  allowHttpErrors: [[], { option: true }],
  demo: async ({}, use) => {
    const { demo, stop } = await startDemo();
    await use(demo);
    await stop();
  },
  page: async ({ page, allowHttpErrors, demo }, use) => {
    void demo; // the server outlives the page, so its last requests do not fail
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      const status = /the server responded with a status of (\d+)/.exec(message.text())?.[1];
      if (status && allowHttpErrors.includes(Number(status))) return;
      problems.push(`console error: ${message.text()}`);
    });
    await use(page);
    expect(problems, 'the page logged errors').toEqual([]);
  },
});

export { expect };

/** Opens the builder through the demo's printed link (logged in) and waits for the Flows page. */
export async function openBuilder(page: Page, demo: Demo): Promise<void> {
  await page.goto(demo.link);
  await expect(page.getByRole('heading', { name: 'Flows' })).toBeVisible();
}

/** Opens the restock flow in the editor. */
export async function openRestock(page: Page, demo: Demo): Promise<void> {
  await openBuilder(page, demo);
  await page.getByRole('link', { name: 'Restock alerts' }).click();
  await expect(page.getByTestId('block-welcome')).toBeVisible();
}

/** The repository root (screenshots go to docs/). */
export const REPO_ROOT = ROOT;
