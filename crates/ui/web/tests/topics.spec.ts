// The OTN Topics page: UChat's list, + New Topic, rename, delete; live counts and Notify.
import { join } from 'node:path';
import { expect, openBuilder, REPO_ROOT, test } from './fixtures';

const DEMO_TOPIC = 'Red sneakers restock';

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
    // The header, the two restock topics and the weekly-deals example's recurring topic.
    await expect(page.getByRole('row')).toHaveCount(4);

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
    expect(topics.map((t) => t.name)).toEqual(['Weekly deals']);
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
