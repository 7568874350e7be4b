// The OTN Topics page: UChat's list, + New Topic, rename, delete; live counts and Notify.
import { join } from 'node:path';
import { expect, openBuilder, REPO_ROOT, test } from './fixtures';

const DEMO_TOPIC = 'Red sneakers restock';
/** The demo topic 300 seeded subscribers wait on. */
const CROWD_TOPIC = 'Weekend sale';
const CROWD = 300;

test.describe('topics page', () => {
  test.use({ allowHttpErrors: [409] });

  test('add, duplicate name, 66 characters, rename, Esc, delete unused, delete in use', async ({ page, demo }) => {
    await openBuilder(page, demo);
    await page.getByRole('link', { name: 'OTN Topics' }).click();
    await expect(page).toHaveURL(/#\/content\/otn-topics$/);
    await expect(page.getByRole('heading', { name: 'OTN Topics' })).toBeVisible();
    const demoRow = page.getByTestId(`topic-row-${DEMO_TOPIC}`);
    await expect(demoRow).toContainText('restock');

    // Add.
    await page.getByRole('button', { name: '+ New Topic' }).click();
    let dialog = page.getByRole('dialog', { name: 'New Topic' });
    await expect(dialog.getByTestId('topic-name-counter')).toHaveText('0/65');
    await dialog.getByLabel('Topic name').fill('Blue sneakers restock');
    await expect(dialog.getByTestId('topic-name-counter')).toHaveText('21/65');
    await dialog.getByRole('button', { name: 'Add' }).click();
    await expect(dialog).toBeHidden();
    await expect(page.getByTestId('topic-row-Blue sneakers restock')).toContainText('not used');

    // A duplicate name (compared case-insensitively) and 66 characters stay in the open dialog.
    await page.getByRole('button', { name: '+ New Topic' }).click();
    dialog = page.getByRole('dialog', { name: 'New Topic' });
    await dialog.getByLabel('Topic name').fill('blue SNEAKERS restock');
    await dialog.getByRole('button', { name: 'Add' }).click();
    await expect(dialog.getByRole('alert')).toContainText('Name already used');
    await dialog.getByLabel('Topic name').fill('x'.repeat(66));
    await expect(dialog.getByTestId('topic-name-counter')).toHaveText('66/65');
    await dialog.getByRole('button', { name: 'Add' }).click();
    await expect(dialog.getByRole('alert')).toHaveText('At most 65 characters.');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(dialog).toBeHidden();
    // Header, the demo's topics (its restock topic, the crowd's and the weekly-deals example's
    // recurring topic) and the new one.
    await expect(page.getByRole('row')).toHaveCount(5);

    // Rename in place: Enter saves; Esc cancels; a taken name is refused inline.
    await page.getByRole('button', { name: 'Rename Blue sneakers restock' }).click();
    const row = page.getByTestId('topic-row-Blue sneakers restock');
    await row.getByLabel('Topic name').fill('Blue sneakers back');
    await row.getByLabel('Topic name').press('Enter');
    const renamed = page.getByTestId('topic-row-Blue sneakers back');
    await expect(renamed).toBeVisible();
    await renamed.getByRole('button', { name: 'Rename' }).click();
    await renamed.getByLabel('Topic name').fill('Something else');
    await renamed.getByLabel('Topic name').press('Escape');
    await expect(renamed.getByRole('button', { name: 'Rename Blue sneakers back' })).toBeVisible();
    await renamed.getByRole('button', { name: 'Rename' }).click();
    await renamed.getByLabel('Topic name').fill(DEMO_TOPIC);
    await renamed.getByLabel('Topic name').press('Enter');
    await expect(renamed.getByRole('alert')).toContainText('Name already used');
    await renamed.getByLabel('Topic name').press('Escape');

    // Delete an unused topic.
    await renamed.getByRole('button', { name: 'Delete' }).click();
    dialog = page.getByRole('dialog');
    await expect(dialog).toContainText('No opt-ins are waiting on it.');
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await expect(renamed).toBeHidden();

    // Delete a topic in use: the answer names the flow; Delete anyway.
    await demoRow.getByRole('button', { name: 'Delete' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await expect(dialog.getByRole('alert')).toContainText('in use');
    await expect(dialog).toContainText('Used by: restock');
    await expect(dialog).toContainText('invalidates 0 waiting opt-ins');
    await dialog.getByRole('button', { name: 'Delete anyway' }).click();
    await expect(demoRow).toBeHidden();
    await expect(page.getByRole('status')).toContainText(`Topic "${DEMO_TOPIC}" deleted`);
    const topics = await demo.api<{ name: string }[]>(`/api/pages/${demo.page}/topics`);
    expect(topics.map((t) => t.name).sort()).toEqual([CROWD_TOPIC, 'Weekly deals']);
  });

  test('a topic can be created with the keyboard alone', async ({ page, demo }) => {
    await openBuilder(page, demo);
    await page.getByRole('link', { name: 'OTN Topics' }).click();
    await page.getByRole('button', { name: '+ New Topic' }).focus();
    await page.keyboard.press('Enter');
    await expect(page.getByLabel('Topic name')).toBeFocused();
    await page.keyboard.type('Typed topic');
    await page.keyboard.press('Enter');
    await expect(page.getByTestId('topic-row-Typed topic')).toBeVisible();
  });
});

test('the waiting count rises live after the demo opt-in, then Notify sends with it', async ({ page, demo }) => {
  await openBuilder(page, demo);
  await page.getByRole('link', { name: 'OTN Topics' }).click();
  const waiting = page.getByTestId(`waiting-${DEMO_TOPIC}`);
  await expect(waiting).toHaveText('0');
  await page.getByRole('button', { name: '+ New Topic' }).click();
  await page.getByLabel('Topic name').fill('Blue sneakers restock');
  await page.getByRole('button', { name: 'Add' }).click();
  await expect(page.getByTestId('topic-row-Blue sneakers restock')).toBeVisible();

  // The subscriber writes the keyword, then taps Notify me: Messenger's signed webhooks.
  expect(demo.webhooks).toHaveLength(2);
  await demo.postWebhook(demo.webhooks[0]);
  await demo.postWebhook(demo.webhooks[1]);
  await expect(waiting).toHaveText('1', { timeout: 10_000 });
  // The ledger counts the opt-in and today's bar shows it.
  await expect(page.getByTestId(`ledger-issued-${DEMO_TOPIC}`)).toHaveText('1');
  await expect(page.getByTestId(`ledger-usable-${DEMO_TOPIC}`)).toHaveText('1');
  await expect(page.getByRole('img', { name: `Opt-ins and sends of ${DEMO_TOPIC}: 1 opt-in and 0 sends in the last 30 days` })).toBeVisible();
  await page.screenshot({ path: join(REPO_ROOT, 'docs', 'ui', 'otn-topics.png') });

  await page.getByRole('button', { name: `Notify ${DEMO_TOPIC}` }).click();
  const dialog = page.getByRole('dialog', { name: `Notify "${DEMO_TOPIC}"` });
  await dialog.getByLabel('Message').fill('The red sneakers are back in stock!');
  await dialog.getByRole('button', { name: 'Send' }).click();
  await expect(dialog.getByTestId('notify-result')).toHaveText('Queued 1 · no token 0 · expired 0');
  await dialog.getByRole('button', { name: 'Close', exact: true }).click();
  await expect(waiting).toHaveText('0', { timeout: 10_000 });
  await expect(page.getByTestId(`ledger-spent-${DEMO_TOPIC}`)).toHaveText('1');
});

test.describe('notification progress', () => {
  async function notifyCrowd(page: import('@playwright/test').Page, text: string) {
    await page.getByRole('button', { name: `Notify ${CROWD_TOPIC}` }).click();
    const dialog = page.getByRole('dialog', { name: `Notify "${CROWD_TOPIC}"` });
    await dialog.getByLabel('Message').fill(text);
    await dialog.getByRole('button', { name: 'Send' }).click();
    await expect(dialog.getByTestId('notify-result')).toHaveText(`Queued ${CROWD} · no token 0 · expired 0`);
    await dialog.getByRole('button', { name: 'Close', exact: true }).click();
  }

  test('a notification to the waiting crowd shows a live progress bar until done', async ({ page, demo }) => {
    await openBuilder(page, demo);
    await page.getByRole('link', { name: 'OTN Topics' }).click();
    const row = page.getByTestId(`topic-row-${CROWD_TOPIC}`);
    await expect(page.getByTestId(`waiting-${CROWD_TOPIC}`)).toHaveText(String(CROWD));
    await expect(row).toContainText('none yet');
    await notifyCrowd(page, 'Weekend sale: 20% off everything!');

    const bar = row.getByRole('progressbar');
    await expect(bar).toHaveAttribute('aria-valuemax', String(CROWD));
    await expect(bar).toHaveAttribute('aria-valuetext', /^sending · \d+\/300 sent · about \d+s left$/);
    // It moves: more is sent later than at first sight.
    const first = Number(await bar.getAttribute('aria-valuenow'));
    await expect.poll(async () => Number(await bar.getAttribute('aria-valuenow'))).toBeGreaterThan(first);
    await page.screenshot({ path: join(REPO_ROOT, 'docs', 'ui', 'notification-progress.png') });

    await expect(row.getByTestId(`last-notification-${CROWD_TOPIC}`)).toContainText('done · 300/300 sent', {
      timeout: 20_000,
    });
    await expect(row.getByRole('button', { name: /Cancel notification/ })).toHaveCount(0);
    await expect(page.getByTestId(`waiting-${CROWD_TOPIC}`)).toHaveText('0');
  });

  test('Cancel stops a running notification and its unsent opt-ins wait again', async ({ page, demo }) => {
    await openBuilder(page, demo);
    await page.getByRole('link', { name: 'OTN Topics' }).click();
    const row = page.getByTestId(`topic-row-${CROWD_TOPIC}`);
    await notifyCrowd(page, 'Flash sale!');
    const bar = row.getByRole('progressbar');
    await expect(bar).toHaveAttribute('aria-valuetext', /^sending/);
    await row.getByRole('button', { name: /Cancel notification \d+/ }).click();
    await expect(page.getByRole('status')).toContainText(/Notification \d+ cancelled: \d+ not sent, \d+ opt-in\(s\) usable again/);
    const last = row.getByTestId(`last-notification-${CROWD_TOPIC}`);
    await expect(last).toContainText(/^cancelled · \d+\/300 sent · \d+ not sent$/);
    const text = (await last.textContent()) ?? '';
    const [, sent, unsent] = /(\d+)\/300 sent · (\d+) not sent/.exec(text) ?? [];
    expect(Number(sent) + Number(unsent)).toBe(CROWD);
    expect(Number(unsent)).toBeGreaterThan(0);
    // The opt-ins of the messages not sent are waiting again.
    await expect(page.getByTestId(`waiting-${CROWD_TOPIC}`)).toHaveText(unsent);
    await page.screenshot({ path: join(REPO_ROOT, 'docs', 'ui', 'notification-cancelled.png') });
  });
});
