// The flow editor: the canvas, the OTN request editor and its topic picker, problems on the
// blocks, and the preview pane, on the demo's restock flow.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Locator, Page } from '@playwright/test';
import { expect, openBuilder, openRestock, REPO_ROOT, test } from './fixtures';

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

function overlap(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** The node's position in flow coordinates (React Flow's translate on the node wrapper). */
async function flowPosition(page: Page, id: string): Promise<{ x: number; y: number }> {
  const transform = await page.locator(`.react-flow__node[data-id="${id}"]`).evaluate((el) => (el as HTMLElement).style.transform);
  const match = /translate\((-?[\d.]+)px, ?(-?[\d.]+)px\)/.exec(transform);
  if (!match) throw new Error(`no translate in ${transform}`);
  return { x: Number(match[1]), y: Number(match[2]) };
}

async function scale(page: Page): Promise<number> {
  const transform = await page.locator('.react-flow__viewport').evaluate((el) => (el as HTMLElement).style.transform);
  return Number(/scale\(([\d.]+)\)/.exec(transform)?.[1] ?? 'NaN');
}

async function center(locator: Locator): Promise<{ x: number; y: number }> {
  const box = await locator.boundingBox();
  if (!box) throw new Error('not visible');
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

interface Draft {
  document: { blocks: { id: string; position?: { x: number; y: number } }[] } & Record<string, unknown>;
}

test('restock opens without overlaps; edges, drag and save, zoom, Tidy up and Undo', async ({ page, demo }) => {
  await openRestock(page, demo);
  const ids = ['welcome', 'thanks', 'colours', 'blue'];
  const boxes: Box[] = [];
  for (const id of [...ids, 'start']) {
    const box = await page.getByTestId(`block-${id}`).boundingBox();
    expect(box, id).not.toBeNull();
    boxes.push(box as Box);
  }
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) expect(overlap(boxes[i], boxes[j]), `${i} overlaps ${j}`).toBe(false);

  // Start → welcome, and one edge per connected port, labelled.
  await expect(page.locator('.react-flow__edge')).toHaveCount(4);
  for (const label of ['Other colours', 'on opt-in', 'Blue'])
    await expect(page.locator('.react-flow__edge-textwrapper', { hasText: label })).toHaveCount(1);
  await expect(page.getByTestId('port-welcome-messages/1/on_optin')).toBeVisible();

  // Drag a block that had no saved position; it is saved in its `position`, the rest unchanged.
  const before = await flowPosition(page, 'thanks');
  const head = page.getByTestId('block-thanks').locator('.node-head');
  const from = await center(head);
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(from.x + 40, from.y + 60, { steps: 5 });
  await page.mouse.move(from.x + 80, from.y + 120, { steps: 5 });
  await page.mouse.up();
  const after = await flowPosition(page, 'thanks');
  expect(after.y).toBeGreaterThan(before.y + 50);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('save-state')).toHaveText('Saved');
  const draft = await demo.api<Draft>(`/api/pages/${demo.page}/flows/restock`);
  const original = JSON.parse(readFileSync(join(REPO_ROOT, 'flows', 'restock.json'), 'utf8')) as Draft['document'];
  const saved = draft.document.blocks.find((b) => b.id === 'thanks');
  expect(saved?.position).toEqual({ x: Math.round(after.x), y: Math.round(after.y) });
  const expected = structuredClone(original);
  const thanks = expected.blocks.find((b) => b.id === 'thanks');
  if (thanks) thanks.position = saved?.position;
  expect(draft.document).toEqual(expected);
  await page.reload();
  await expect(page.getByTestId('block-thanks')).toBeVisible();
  expect(await flowPosition(page, 'thanks')).toEqual(saved?.position);

  // Zoom.
  const zoomBefore = await scale(page);
  await page.getByRole('button', { name: 'Zoom In' }).click();
  await expect.poll(() => scale(page)).toBeGreaterThan(zoomBefore);

  // Tidy up moves blocks; Undo puts them back.
  const positions = await Promise.all(ids.map((id) => flowPosition(page, id)));
  await page.getByRole('button', { name: 'Tidy up' }).click();
  await expect.poll(async () => JSON.stringify(await Promise.all(ids.map((id) => flowPosition(page, id))))).not.toBe(JSON.stringify(positions));
  await page.getByRole('button', { name: 'Undo' }).click();
  await expect.poll(async () => JSON.stringify(await Promise.all(ids.map((id) => flowPosition(page, id))))).toBe(JSON.stringify(positions));
});

test('the OTN story: add an OTN request, create its topic from the picker, connect, publish', async ({ page, demo, context }) => {
  await openRestock(page, demo);
  await page.getByTestId('block-welcome').locator('.node-head').click();
  const panel = page.getByRole('complementary', { name: 'Send Message welcome' });
  await panel.getByRole('button', { name: '+ Add' }).click();
  await panel.getByRole('menuitem', { name: 'OTN Request' }).click();
  const request = panel.getByRole('region', { name: 'Message 3: OTN Request' });
  await expect(request).toBeVisible();

  // The topic picker lists topics with their waiting counts and creates one at once.
  const topic = request.getByRole('combobox', { name: 'Topic' });
  await topic.click();
  await expect(page.getByRole('option', { name: /Red sneakers restock 0 waiting/ })).toBeVisible();
  await topic.fill('Green sneakers restock');
  await page.getByRole('option', { name: 'Create topic "Green sneakers restock"' }).click();
  await expect(page.getByRole('status')).toContainText('Topic "Green sneakers restock" created');
  await expect(topic).toHaveValue('Green sneakers restock');

  // It is on the OTN Topics page right away (another tab, same server).
  const other = await context.newPage();
  await other.goto(demo.link);
  await other.getByRole('link', { name: 'OTN Topics' }).click();
  await expect(other.getByTestId('topic-row-Green sneakers restock')).toBeVisible();
  await other.close();

  const title = request.getByLabel('Title');
  await title.fill('Tell me when green ones are back');
  await expect(request.getByText('32/65')).toBeVisible();
  await expect(request.getByLabel('Messenger preview')).toContainText('Tell me when green ones are backNotify me');

  // Connect on_optin to the thanks block by dragging from its port.
  const port = page.getByTestId('port-welcome-messages/2/on_optin');
  await expect(port).toBeVisible();
  const from = await center(port);
  const to = await center(page.getByTestId('block-thanks').locator('.react-flow__handle-left'));
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 5 });
  await page.mouse.move(to.x, to.y, { steps: 5 });
  await page.mouse.up();
  await expect(page.locator('.react-flow__edge')).toHaveCount(5);

  await page.getByRole('button', { name: 'Fit View' }).click();
  await page.getByRole('button', { name: 'Dismiss' }).first().click();
  await page.screenshot({ path: join(REPO_ROOT, 'docs', 'ui', 'editor.png') });
  const publish = page.getByRole('button', { name: 'Publish' });
  await expect(publish).toBeEnabled();
  await publish.click();
  await expect(page.getByRole('status')).toContainText('Published v2');

  const draft = await demo.api<Draft & { document: { blocks: { id: string; messages?: Record<string, unknown>[] }[] } }>(
    `/api/pages/${demo.page}/flows/restock`,
  );
  const topics = await demo.api<{ id: string; name: string; used_by: string[] }[]>(`/api/pages/${demo.page}/topics`);
  const green = topics.find((t) => t.name === 'Green sneakers restock');
  expect(green?.used_by).toEqual(['restock']);
  expect(draft.document.blocks[0].messages?.[2]).toEqual({
    type: 'otn_request',
    title: 'Tell me when green ones are back',
    topic: { id: green?.id },
    on_optin: 'thanks',
  });
});

test('the + Add menu offers a recurring request whose editor sets title and frequency', async ({ page, demo }) => {
  await openRestock(page, demo);
  await page.getByTestId('block-welcome').locator('.node-head').click();
  const panel = page.getByRole('complementary', { name: 'Send Message welcome' });
  await panel.getByRole('button', { name: '+ Add' }).click();
  await panel.getByRole('menuitem', { name: 'Recurring Request' }).click();
  const request = panel.getByRole('region', { name: 'Message 3: Recurring Request' });
  await expect(request).toBeVisible();
  await expect(request.getByLabel('Frequency')).toHaveValue('weekly');
  await request.getByLabel('Title').fill('Monthly sneaker news');
  await expect(request.getByText('20/65')).toBeVisible();
  await request.getByLabel('Frequency').selectOption('monthly');
  await expect(request.getByLabel('Messenger preview')).toContainText('Monthly sneaker news');
  await expect(request.getByLabel('Messenger preview')).toContainText('monthly messages');
  await expect(page.getByTestId('msg-welcome-2')).toContainText('Recurring Notification · monthly');
  await expect(page.getByTestId('port-welcome-messages/2/on_optin')).toBeVisible();
  // No topic yet: the validator's `recurring-missing-topic` marks the block.
  await expect(page.getByTestId('diag-badge-welcome')).toBeVisible();
  await request.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(REPO_ROOT, 'docs', 'ui', 'recurring-request.png') });
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('save-state')).toHaveText('Saved');
  const draft = await demo.api<{ document: { blocks: { id: string; messages?: Record<string, unknown>[] }[] } }>(
    `/api/pages/${demo.page}/flows/restock`,
  );
  expect(draft.document.blocks[0].messages?.[2]).toEqual({
    type: 'recurring_request',
    title: 'Monthly sneaker news',
    frequency: 'monthly',
  });
});

test('problems on the blocks: a cleared title gets a badge and a Problems entry that focuses the field', async ({ page, demo }) => {
  await openRestock(page, demo);
  await expect(page.getByRole('button', { name: 'Publish' })).toBeEnabled();
  await page.getByTestId('block-welcome').locator('.node-head').click();
  const title = page.getByRole('region', { name: 'Message 2: OTN Request' }).getByLabel('Title');
  await title.fill('');
  await expect(page.getByTestId('diag-badge-welcome')).toBeVisible({ timeout: 1_000 });
  await expect(page.getByTestId('msg-welcome-1')).toHaveClass(/msg-problem/);
  await expect(page.getByRole('button', { name: 'Publish' })).toBeDisabled();

  await page.getByRole('button', { name: /Problems/ }).click();
  const problems = page.getByRole('region', { name: 'Problems' });
  const entry = problems.getByRole('button', { name: /title/i });
  await expect(entry).toBeVisible();
  await page.getByTestId('block-blue').locator('.node-head').click();
  await entry.click();
  await expect(page.getByRole('region', { name: 'Message 2: OTN Request' }).getByLabel('Title')).toBeFocused();

  await page.keyboard.type('Back soon?');
  await expect(page.getByTestId('diag-badge-welcome')).toBeHidden();
  await expect(page.getByRole('button', { name: 'Publish' })).toBeEnabled();
});

test('the preview pane plays the restock story through the step function', async ({ page, demo }) => {
  await openRestock(page, demo);
  await page.getByRole('button', { name: 'Preview' }).click();
  const preview = page.getByRole('region', { name: 'Preview' });
  await preview.getByLabel('Message the bot').fill('restock');
  await preview.getByRole('button', { name: 'Send' }).click();
  const chat = preview.getByTestId('preview-chat');
  await expect(chat).toContainText('Hi Preview! The red sneakers are sold out.');
  await expect(chat).toContainText('Tell me when red sneakers are back');
  await chat.getByRole('button', { name: 'Notify me' }).click();
  await expect(chat).toContainText('Done: one message when they are back.');
  await chat.getByRole('button', { name: 'Other colours' }).click();
  await expect(chat).toContainText('Blue and white are in stock.');
  await chat.getByRole('button', { name: 'Blue', exact: true }).click();
  await expect(chat).toContainText('Here are the blue sneakers.');
  await expect(chat.getByRole('link', { name: 'Open the shop ↗' })).toBeVisible();
  // Nothing was sent to Messenger: the subscriber of the preview does not exist on the server.
  const flows = await demo.api<{ id: string; draft: { state: string } }[]>(`/api/pages/${demo.page}/flows`);
  expect(flows.find((f) => f.id === 'restock')?.draft.state).toBe('published');
});

test('versions, rollback and the JSON view', async ({ page, demo }) => {
  await openBuilder(page, demo);
  await page.getByRole('link', { name: 'Restock alerts' }).click();
  await page.getByTestId('block-welcome').locator('.node-head').click();
  await page.getByRole('region', { name: 'Message 1: Text' }).getByLabel('Text').fill('Hi! Sold out, sorry.');
  await expect(page.getByRole('button', { name: 'Publish' })).toBeEnabled();
  await page.getByRole('button', { name: 'Publish' }).click();
  await expect(page.getByRole('status')).toContainText('Published v2');

  await page.getByRole('button', { name: 'JSON' }).click();
  await expect(page.getByTestId('json-view')).toContainText('"text": "Hi! Sold out, sorry."');
  await page.getByRole('dialog', { name: 'JSON' }).getByRole('button', { name: 'Close' }).click();

  await page.getByRole('button', { name: 'Versions' }).click();
  const versions = page.getByRole('dialog', { name: 'Versions' });
  await versions.getByRole('button', { name: 'View' }).last().click();
  await expect(versions.getByLabel('Version 1')).toContainText('Hi {{first_name|there}}! The red sneakers are sold out.');
  await versions.getByRole('button', { name: 'Roll back to v1' }).click();
  await expect(page.getByRole('status')).toContainText('v1 is live again as v3');
});

test('add from the menu (dimmed while unreachable), drop a connection on empty canvas, delete with confirm, Ctrl+Z', async ({ page, demo }) => {
  await openRestock(page, demo);
  const edges = page.locator('.react-flow__edge');
  await expect(edges).toHaveCount(4);

  await page.getByRole('button', { name: '+ Block' }).click();
  await page.getByRole('menuitem', { name: 'Delay' }).click();
  await expect(page.getByTestId('block-delay_1')).toBeVisible();
  await expect(page.getByTestId('block-delay_1')).toHaveClass(/dimmed/);
  await expect(page.getByTestId('diag-badge-delay_1')).toBeVisible();

  // Zoom out so the canvas corner is empty, then drop a connection from blue's Next there.
  for (let i = 0; i < 3; i++) await page.getByRole('button', { name: 'Zoom Out' }).click();
  const canvas = await page.getByTestId('canvas').boundingBox();
  if (!canvas) throw new Error('no canvas');
  const from = await center(page.getByTestId('port-blue-next'));
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(canvas.x + 80, canvas.y + 60, { steps: 8 });
  await page.mouse.up();
  await page.getByRole('menu', { name: 'Add a connected block' }).getByRole('menuitem', { name: 'User Input' }).click();
  await expect(page.getByTestId('block-wait_1')).toBeVisible();
  await expect(edges).toHaveCount(5);
  await expect(page.getByTestId('block-wait_1')).not.toHaveClass(/dimmed/);

  // Delete it: another block leads to it, so the editor asks first.
  await page.getByTestId('block-wait_1').locator('.node-head').click();
  await page.keyboard.press('Delete');
  const confirm = page.getByRole('dialog', { name: 'Delete block wait_1?' });
  await expect(confirm).toContainText('1 connection leads to this block');
  await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(page.getByTestId('block-wait_1')).toBeHidden();
  await expect(edges).toHaveCount(4);

  await page.getByTestId('canvas').locator('.react-flow__pane').click({ position: { x: 20, y: 20 } });
  await page.keyboard.press('Control+z');
  await expect(page.getByTestId('block-wait_1')).toBeVisible();
  await expect(edges).toHaveCount(5);
  await page.keyboard.press('Control+Shift+z');
  await expect(page.getByTestId('block-wait_1')).toBeHidden();

  // Delete an edge: the quick reply "Blue" no longer leads anywhere; Undo brings it back.
  await expect(edges).toHaveCount(4);
  await page.locator('.react-flow__edge-textwrapper', { hasText: 'Blue' }).click();
  await page.keyboard.press('Delete');
  await expect(edges).toHaveCount(3);
  await expect(page.getByTestId('port-colours-messages/0/quick_replies/0/next')).not.toHaveClass(/port-linked/);
  await page.getByRole('button', { name: 'Undo' }).click();
  await expect(edges).toHaveCount(4);
});

test('a new flow from the Flows page opens in the editor and publishes as v1', async ({ page, demo }) => {
  await openBuilder(page, demo);
  await page.getByRole('button', { name: 'New flow' }).click();
  await page.getByRole('dialog', { name: 'New flow' }).getByLabel('Flow name').fill('Winter sale');
  await page.getByRole('dialog', { name: 'New flow' }).getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(/#\/flows\/winter-sale$/);
  await expect(page.getByTestId('block-welcome')).toBeVisible();
  await expect(page.getByTestId('block-start')).toContainText('"winter sale"');
  const publish = page.getByRole('button', { name: 'Publish' });
  await expect(publish).toBeEnabled();
  await publish.click();
  await expect(page.getByRole('status')).toContainText('Published v1');
  await page.getByRole('link', { name: '← Flows' }).click();
  await expect(page.getByTestId('flow-row-winter-sale')).toContainText('Winter sale');
  await expect(page.getByTestId('flow-row-winter-sale')).toContainText('v1');
});

test('a message sent 25 hours after the last input gets the 24-hour clock badge', async ({ page, demo }) => {
  await openRestock(page, demo);
  for (let i = 0; i < 3; i++) await page.getByRole('button', { name: 'Zoom Out' }).click();
  const dropFrom = async (port: string, corner: 'left' | 'right', kind: string) => {
    const canvas = await page.getByTestId('canvas').boundingBox();
    if (!canvas) throw new Error('no canvas');
    const from = await center(page.getByTestId(port));
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    const x = corner === 'left' ? canvas.x + 80 : canvas.x + canvas.width - 120;
    await page.mouse.move(x, canvas.y + 50, { steps: 8 });
    await page.mouse.up();
    await page.getByRole('menu', { name: 'Add a connected block' }).getByRole('menuitem', { name: kind }).click();
  };
  await dropFrom('port-thanks-next', 'left', 'Delay');
  await page.getByRole('complementary', { name: 'Delay delay_1' }).getByLabel('Wait for').fill('25h');
  await expect(page.getByTestId('block-delay_1')).toContainText('Wait 25h');
  await dropFrom('port-delay_1-next', 'right', 'Send Message');
  await expect(page.getByTestId('clock-badge-send_1')).toBeVisible();
  await expect(page.getByTestId('diag-badge-send_1')).toHaveAttribute('title', /outside Messenger's 24-hour window/);
  await expect(page.getByRole('button', { name: 'Publish' })).toBeDisabled();
  // A shorter delay brings it back inside the window.
  await page.getByTestId('block-delay_1').locator('.node-head').click();
  await page.getByRole('complementary', { name: 'Delay delay_1' }).getByLabel('Wait for').fill('2h');
  await expect(page.getByTestId('clock-badge-send_1')).toBeHidden();
  await expect(page.getByRole('button', { name: 'Publish' })).toBeEnabled();
});
