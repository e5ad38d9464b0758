// The admin console end to end: `keygate serve` (dist/cli.js, with the built console) before a
// real upstream, driven in Debian's Chromium by role and accessible name, with an axe-core
// check of every page. It also writes the README's screenshots (docs/screenshots).
import { createHmac } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { expectAccessible, launchChromium, requireChromium, screenshot } from './support/browser.js';
import { ADMIN_TOKEN, baseConfig, startKeygate, type Keygate } from './support/keygate.js';
import { useUpstreamPair } from './support/upstream.js';


const upstreams = useUpstreamPair();
let kg: Keygate;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let consoleUrl: string;
/** Script errors and CSP violations the page reported while it was driven. */
const pageProblems: string[] = [];

/** Calls the gateway with a secret; the status and error code. */
async function gateway(secret: string, method = 'GET', path = '/v1/events'): Promise<{ status: number; code: string | null }> {
  const res = await fetch(kg.gatewayUrl! + path, { method, headers: { 'x-api-key': secret } });
  const text = await res.text();
  let code: string | null = null;
  try { code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null; } catch { /* an upstream answer */ }
  return { status: res.status, code };
}

async function signIn(p: Page): Promise<void> {
  await p.goto(consoleUrl);
  await p.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => p.getByRole('heading', { name: 'API keys' }).isVisible()).toBe(true);
}

const dialog = (name: string) => page.getByRole('dialog', { name });

/** Opens a view by its hash route; the same route again is a reload (a fragment navigation to itself does nothing). */
async function open(route: string): Promise<void> {
  const target = `${consoleUrl}#${route}`;
  if (page.url() === target) await page.reload();
  else await page.goto(target);
}

/**
 * Presses Tab through the page and returns the visible, enabled controls it never reached
 * (tabs other than the selected one are left out: the arrow keys move between them).
 */
async function unreachableByTab(p: Page): Promise<string[]> {
  const count = await p.evaluate(() => {
    const d = (globalThis as any).document;
    const all = [...d.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')] as any[];
    const controls = all.filter((el) => !el.disabled && el.getClientRects().length > 0 && el.tabIndex >= 0 && el.closest('[inert]') === null);
    all.forEach((el) => el.removeAttribute('data-kbd'));
    controls.forEach((el, i) => el.setAttribute('data-kbd', `${i}: ${el.tagName.toLowerCase()} ${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 40)}`));
    controls[0]?.focus();
    return controls.length;
  });
  const reached = new Set<string>();
  const first = await p.evaluate(() => (globalThis as any).document.activeElement?.getAttribute('data-kbd') ?? null);
  if (first !== null) reached.add(first);
  for (let i = 0; i < count + 5; i++) {
    await p.keyboard.press('Tab');
    const label = await p.evaluate(() => (globalThis as any).document.activeElement?.getAttribute('data-kbd') ?? null);
    if (label !== null) reached.add(label);
  }
  const all = await p.evaluate(() => [...(globalThis as any).document.querySelectorAll('[data-kbd]')].map((el: any) => el.getAttribute('data-kbd') as string));
  return all.filter((l) => !reached.has(l));
}

/** The key created through the console, shared by the steps that follow it. */
const created = { id: '', name: 'ios-app', secret: '', workspaceId: '' };

// Under CI a missing browser is a failure, never a skip.
describe.skipIf(!requireChromium())('admin console in Chromium', () => {
  beforeAll(async () => {
    kg = await startKeygate({
      config: (dir) => ({
        ...baseConfig(dir),
        upstreams: { events: { url: upstreams.events.url }, 'events-test': { url: upstreams.eventsTest.url } },
      }),
    });
    consoleUrl = `${kg.adminUrl}/console/`;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 860 }, reducedMotion: 'reduce' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: kg.adminUrl });
    // Shorter than a test's own timeout, so a control that never appears is named in the failure.
    context.setDefaultTimeout(10_000);
    page = await context.newPage();
    page.on('pageerror', (err) => pageProblems.push(`pageerror: ${err.message}`));
    page.on('console', (m) => {
      // A refused API call is logged by Chromium as a failed resource: those are expected answers.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageProblems.push(`console: ${m.text()}`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stopAndClean(kg);
  });

  it('refuses a wrong admin token inline, signs in with a right one and keeps it in sessionStorage only', async () => {
    await page.goto(consoleUrl);
    await expect.poll(() => page.getByLabel('Admin token').isVisible()).toBe(true);
    await expectAccessible(page, 'sign-in page');
    await page.getByLabel('Admin token').fill('not-the-admin-token-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByText('That admin token was refused.').isVisible()).toBe(true);
    expect(await page.getByLabel('Admin token').getAttribute('aria-invalid')).toBe('true');

    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'API keys' }).isVisible()).toBe(true);
    const storage = await page.evaluate(() => { const g = globalThis as any; return { session: { ...g.sessionStorage }, local: { ...g.localStorage }, cookie: g.document.cookie as string, url: g.location.href as string }; });
    expect(Object.values(storage.session)).toContain(ADMIN_TOKEN);
    expect(JSON.stringify(storage.local)).not.toContain(ADMIN_TOKEN);
    expect(storage.cookie).toBe('');
    expect(storage.url).not.toContain(ADMIN_TOKEN);
  });

  it('creates a workspace and shows its GUID with a copy button', async () => {
    await page.getByRole('link', { name: 'Workspaces' }).click();
    await page.getByLabel('Workspace name').fill('acme');
    await page.getByRole('button', { name: 'Create workspace' }).click();
    const row = page.getByRole('row', { name: /acme/ });
    await expect.poll(() => row.count()).toBe(1);
    const list = await kg.admin('GET', '/v1/workspaces');
    created.workspaceId = list.body.items.find((w: any) => w.name === 'acme').id;
    expect(await row.textContent()).toContain(created.workspaceId);
    await row.getByRole('button', { name: 'Copy GUID of acme' }).click();
    expect(await page.evaluate(() => (globalThis as any).navigator.clipboard.readText())).toBe(created.workspaceId);
    await expectAccessible(page, 'workspaces page');
  });

  it('adds a key: the secret shows once with Copy and a QR code, works at the gateway, and is gone after Done', async () => {
    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    await page.getByRole('button', { name: 'Add API key' }).click();
    const add = dialog('Add API key');
    await expect.poll(() => add.isVisible()).toBe(true);
    // The page behind the dialog is out of reach: only the dialog's controls are found.
    expect(await page.getByRole('button', { name: 'Add API key' }).count()).toBe(0);
    await add.getByLabel('Name', { exact: true }).fill(created.name);
    await add.getByLabel('Description', { exact: true }).fill('The iOS app');
    await add.getByLabel('Workspace', { exact: true }).selectOption({ label: 'acme' });
    await add.getByLabel('Type', { exact: true }).selectOption('workspace');
    await add.getByLabel('Environment', { exact: true }).selectOption('live');
    expect(await add.getByLabel('Group', { exact: true }).inputValue()).toBe('');
    await expectAccessible(page, 'add key dialog');
    await add.getByRole('button', { name: 'Create' }).click();

    const once = dialog('Copy this key now');
    await expect.poll(() => once.isVisible()).toBe(true);
    const secretField = once.getByRole('textbox', { name: 'Secret' });
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^kg_live_[0-9A-Za-z]{24}_[0-9A-Za-z]{6}$/);
    expect(await secretField.getAttribute('readonly')).not.toBeNull();
    const qr = once.getByRole('img', { name: 'QR code of the key' });
    expect(await qr.getAttribute('src')).toMatch(/^data:image\/gif;base64,/);
    expect(await qr.evaluate((img: any) => img.complete && img.naturalWidth > 0)).toBe(true);
    await once.getByRole('button', { name: 'Copy' }).click();
    expect(await page.evaluate(() => (globalThis as any).navigator.clipboard.readText())).toBe(secret);
    await expect.poll(() => once.getByText('Copied').isVisible()).toBe(true);
    await expectAccessible(page, 'secret dialog');
    await screenshot(page, 'add-key-secret');

    // The secret works at the gateway: the key has no permission yet, so a route answers 403.
    expect(await gateway(secret)).toEqual({ status: 403, code: 'PERMISSION_DENIED' });
    created.secret = secret;

    await once.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => page.getByRole('heading', { name: created.name }).isVisible()).toBe(true);
    expect(await page.getByRole('dialog').count()).toBe(0);
    created.id = new URL(page.url()).hash.split('/').pop()!;
    expect(created.id).toMatch(/^key_/);
    expect(await page.content()).not.toContain(secret);
    await page.reload();
    await expect.poll(() => page.getByRole('heading', { name: created.name }).isVisible()).toBe(true);
    expect(await page.content()).not.toContain(secret);
    expect(JSON.stringify(await page.evaluate(() => ({ ...(globalThis as any).sessionStorage, ...(globalThis as any).localStorage })))).not.toContain(secret);
  });

  it('shows the key in sections as tabs, reachable by the arrow keys, each passing axe', async () => {
    const names = ['General', 'Permissions', 'Allowlist', 'Denylist', 'IP access restriction', 'Basic authentication', 'Simple authentication',
      'Profile modification allowlist', 'Usage', 'Activity'];
    expect(await page.getByRole('tab').allTextContents()).toEqual(names);
    await page.getByRole('tab', { name: 'General' }).focus();
    for (const name of names.slice(1)) {
      await page.keyboard.press('ArrowRight');
      await expect.poll(() => page.getByRole('tab', { name, exact: true }).getAttribute('aria-selected')).toBe('true');
      await expect.poll(() => page.evaluate(() => (globalThis as any).document.activeElement?.textContent)).toBe(name);
      await expectAccessible(page, `key page, ${name} tab`);
    }
    await page.keyboard.press('Home');
    await expect.poll(() => page.getByRole('tab', { name: 'General' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.getByRole('tabpanel').getByRole('textbox', { name: 'Name', exact: true }).inputValue()).toBe(created.name);
  });

  it('ticks a permission in the matrix, shows Custom, applies it, and the gateway lets the key through', async () => {
    await page.getByRole('tab', { name: 'Permissions' }).click();
    const read = page.getByRole('checkbox', { name: 'events.read', exact: true });
    expect(await read.isChecked()).toBe(false);
    for (const id of ['events.create', 'events.read', 'profiles.read', 'profiles.update']) {
      expect(await page.getByRole('checkbox', { name: id, exact: true }).count()).toBe(1);
    }
    expect(await page.getByRole('button', { name: 'read-only' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'full-access' }).count()).toBe(1);
    await read.check();
    await expect.poll(() => page.getByText('Custom', { exact: true }).isVisible()).toBe(true);
    await screenshot(page, 'permissions-matrix');
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(async () => (await kg.admin('GET', `/v1/keys/${created.id}`)).body.permissions).toEqual(['events.read']);
    await expect.poll(() => gateway(created.secret)).toEqual({ status: 200, code: null });
    expect(await gateway(created.secret, 'POST', '/v1/events')).toEqual({ status: 403, code: 'PERMISSION_DENIED' });

    // A preset ticks its permissions; the name it has is shown instead of Custom, and applies as the preset.
    await page.getByRole('button', { name: 'read-only' }).click();
    expect(await page.getByRole('checkbox', { name: 'profiles.read', exact: true }).isChecked()).toBe(true);
    expect(await page.getByRole('checkbox', { name: 'events.create', exact: true }).isChecked()).toBe(false);
    expect(await page.getByRole('status').filter({ hasText: 'Current:' }).textContent()).toBe('Current: read-only');
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(async () => (await kg.admin('GET', `/v1/keys/${created.id}`)).body.permissions).toEqual(['*.read']);
  });

  it('shows an API error inline with the field it names, and saves nothing', async () => {
    await page.getByRole('tab', { name: 'IP access restriction' }).click();
    const field = page.getByRole('textbox', { name: 'Allowed IP addresses and CIDRs' });
    await field.fill('127.0.0.0/8\n010.0.0.1');
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(() => field.getAttribute('aria-invalid')).toBe('true');
    const describedBy = (await field.getAttribute('aria-describedby'))!;
    const message = await page.locator(`[id="${describedBy.split(' ').pop()!}"]`).textContent();
    expect(message).toContain('line 2');
    expect(message).toContain('010.0.0.1');
    expect((await kg.admin('GET', `/v1/keys/${created.id}`)).body.ipAllowlist).toEqual([]);
    await field.fill('127.0.0.0/8');
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(async () => (await kg.admin('GET', `/v1/keys/${created.id}`)).body.ipAllowlist).toEqual(['127.0.0.0/8']);
    expect(await field.getAttribute('aria-invalid')).toBeNull();
  });

  it('sends If-Match with the ETag it read: a change made meanwhile is answered 412, and Reload shows it', async () => {
    await open(`/keys/${created.id}`);
    await expect.poll(() => page.getByRole('heading', { name: created.name }).isVisible()).toBe(true);
    const seen = (await kg.admin('GET', `/v1/keys/${created.id}`)).headers.get('etag');
    expect(seen).toMatch(/^"[^"]+"$/);
    const sent: Array<string | undefined> = [];
    const onRequest = (r: import('playwright-core').Request): void => {
      if (r.method() === 'PATCH' && r.url().endsWith(`/v1/keys/${created.id}`)) sent.push(r.headers()['if-match']);
    };
    page.on('request', onRequest);
    try {
      // Another admin changes the key behind the console's back.
      expect((await kg.admin('PATCH', `/v1/keys/${created.id}`, { description: 'Changed elsewhere' })).status).toBe(200);
      await page.getByRole('tab', { name: 'General' }).click();
      const description = page.getByRole('tabpanel').getByRole('textbox', { name: 'Description', exact: true });
      expect(await description.inputValue()).toBe('The iOS app');
      await description.fill('changed meanwhile');
      await page.getByRole('button', { name: 'Apply settings' }).click();
      const reload = page.getByRole('button', { name: 'Reload the key' });
      await expect.poll(() => reload.isVisible()).toBe(true);
      expect(sent).toEqual([seen]);
      expect(await page.getByRole('alert').textContent()).toContain('Someone else changed this key');
      expect((await kg.admin('GET', `/v1/keys/${created.id}`)).body.description).toBe('Changed elsewhere');
      await reload.click();
      await expect.poll(() => description.inputValue()).toBe('Changed elsewhere');
      expect(await reload.count()).toBe(0);

      // With the ETag read again, the next write applies.
      await description.fill('The iOS app');
      await page.getByRole('button', { name: 'Apply settings' }).click();
      await expect.poll(async () => (await kg.admin('GET', `/v1/keys/${created.id}`)).body.description).toBe('The iOS app');
      expect(sent).toHaveLength(2);
      expect(sent[1]).not.toBe(seen);
    } finally {
      page.off('request', onRequest);
    }
  });

  it('disables the key with the Enabled switch and the gateway refuses it; enabling lets it back', async () => {
    const enabled = page.getByRole('switch', { name: 'Enabled' });
    expect(await enabled.getAttribute('aria-checked')).toBe('true');
    await enabled.click();
    await expect.poll(() => enabled.getAttribute('aria-checked')).toBe('false');
    expect(await gateway(created.secret)).toEqual({ status: 403, code: 'KEY_DISABLED' });
    // The switch works from the keyboard too.
    await enabled.focus();
    await page.keyboard.press('Space');
    await expect.poll(() => enabled.getAttribute('aria-checked')).toBe('true');
    expect(await gateway(created.secret)).toEqual({ status: 200, code: null });
  });

  it('rotates with a grace period of none: the new secret shows once and works, the old one stops', async () => {
    await page.getByRole('button', { name: 'Rotate' }).click();
    const rotate = dialog(`Rotate key “${created.name}”`);
    await rotate.getByLabel('Grace period').selectOption('0');
    await rotate.getByRole('button', { name: 'Rotate' }).click();
    const once = dialog('Copy this key now');
    await expect.poll(() => once.isVisible()).toBe(true);
    const fresh = await once.getByRole('textbox', { name: 'Secret' }).inputValue();
    expect(fresh).not.toBe(created.secret);
    await once.getByRole('button', { name: 'Done' }).click();
    expect(await page.content()).not.toContain(fresh);
    expect(await gateway(fresh)).toEqual({ status: 200, code: null });
    expect((await gateway(created.secret)).status).toBe(401);
    created.secret = fresh;
  });

  it('shows an error of the add dialog with the field it names, and creates nothing', async () => {
    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    const before = (await kg.admin('GET', '/v1/keys?limit=500')).body.items.length;
    await page.getByRole('button', { name: 'Add API key' }).click();
    const add = dialog('Add API key');
    await add.getByRole('button', { name: 'Create' }).click();
    const name = add.getByRole('textbox', { name: 'Name', exact: true });
    await expect.poll(() => name.getAttribute('aria-invalid')).toBe('true');
    const errorId = (await name.getAttribute('aria-describedby'))!.split(' ').pop()!;
    expect(await add.locator(`[id="${errorId}"]`).textContent()).toBe('must not be empty');
    await add.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => add.count()).toBe(0);
    expect((await kg.admin('GET', '/v1/keys?limit=500')).body.items.length).toBe(before);
  });

  it('reaches every control of every page by the keyboard', async () => {
    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    await expect.poll(() => page.getByRole('link', { name: created.name }).isVisible()).toBe(true);
    expect(await unreachableByTab(page)).toEqual([]);
    await open(`/keys/${created.id}`);
    await page.getByRole('tab', { name: 'Permissions' }).click();
    await expect.poll(() => page.getByRole('checkbox', { name: 'events.read', exact: true }).isVisible()).toBe(true);
    expect(await unreachableByTab(page)).toEqual([]);
    await page.getByRole('tab', { name: 'General' }).click();
    expect(await unreachableByTab(page)).toEqual([]);
    for (const [link, heading] of [['Workspaces', 'Workspaces'], ['Groups', 'Groups'], ['Owners', 'Owners'], ['Audit log', 'Audit log'], ['Nodes', 'Nodes']]) {
      await page.getByRole('link', { name: link, exact: true }).click();
      await expect.poll(() => page.getByRole('heading', { name: heading, exact: true }).isVisible()).toBe(true);
      expect(await unreachableByTab(page), link).toEqual([]);
    }
  });

  it('sets a rate limit and a quota in General, and Usage shows their state', async () => {
    await open(`/keys/${created.id}`);
    const panel = page.getByRole('tabpanel');
    // A window or period without a limit changes nothing.
    await panel.getByRole('spinbutton', { name: 'Rate limit window (seconds)' }).fill('5');
    await panel.getByRole('combobox', { name: 'Quota period' }).selectOption('day');
    expect(await page.getByRole('button', { name: 'Apply settings' }).isDisabled()).toBe(true);
    expect(await page.getByText('No pending change').isVisible()).toBe(true);
    await panel.getByRole('spinbutton', { name: 'Rate limit (requests)' }).fill('100');
    await panel.getByRole('spinbutton', { name: 'Rate limit window (seconds)' }).fill('60');
    await panel.getByRole('spinbutton', { name: 'Quota (requests)' }).fill('1000');
    await panel.getByRole('combobox', { name: 'Quota period' }).selectOption('day');
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(async () => {
      const key = (await kg.admin('GET', `/v1/keys/${created.id}`)).body;
      return [key.rateLimit, key.quota];
    }).toEqual([{ limit: 100, windowSeconds: 60 }, { limit: 1000, period: 'day' }]);
    expect((await gateway(created.secret)).status).toBe(200);
    await page.getByRole('tab', { name: 'Usage' }).click();
    await expect.poll(() => page.getByRole('tabpanel').textContent()).toMatch(/99 of 100 left in 60 s/);
    expect(await page.getByRole('tabpanel').textContent()).toMatch(/1 of 1000 used this day/);
    // Emptying the fields removes both.
    await page.getByRole('tab', { name: 'General' }).click();
    await panel.getByRole('spinbutton', { name: 'Rate limit (requests)' }).fill('');
    await panel.getByRole('spinbutton', { name: 'Quota (requests)' }).fill('');
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(async () => {
      const key = (await kg.admin('GET', `/v1/keys/${created.id}`)).body;
      return [key.rateLimit, key.quota];
    }).toEqual([null, null]);

    // The expiry date, in the browser's local time.
    await panel.getByLabel('Expires').fill('2030-01-02T03:04');
    const expected = await page.evaluate(() => new Date('2030-01-02T03:04').toISOString());
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(async () => (await kg.admin('GET', `/v1/keys/${created.id}`)).body.expiresAt).toBe(expected);
  });

  it('keeps an edit made while Apply settings is under way', async () => {
    await open(`/keys/${created.id}`);
    const panel = page.getByRole('tabpanel');
    const name = panel.getByRole('textbox', { name: 'Name', exact: true });
    await expect.poll(() => name.inputValue()).toBe(created.name);
    // The answer to the write is held back a moment, as on a slow link.
    const keyPath = `**/v1/keys/${created.id}`;
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => { release = r; });
    await page.route(keyPath, async (route) => {
      if (route.request().method() === 'PATCH') {
        const res = await route.fetch();
        await held;
        await route.fulfill({ response: res });
      } else await route.continue();
    });
    const applied = page.getByRole('status').filter({ hasText: 'Settings applied' });
    try {
      await panel.getByRole('spinbutton', { name: 'Quota (requests)' }).fill('500');
      await page.getByRole('button', { name: 'Apply settings' }).click();
      await expect.poll(async () => (await kg.admin('GET', `/v1/keys/${created.id}`)).body.quota).toEqual({ limit: 500, period: 'month' });
      await panel.getByRole('textbox', { name: 'Description', exact: true }).fill('The iOS app, edited meanwhile');
      release();
      await expect.poll(() => applied.count()).toBe(1);
      expect(await panel.getByRole('textbox', { name: 'Description', exact: true }).inputValue()).toBe('The iOS app, edited meanwhile');
      expect(await panel.getByRole('spinbutton', { name: 'Quota (requests)' }).inputValue()).toBe('500');
      await page.getByRole('button', { name: 'Apply settings' }).click();
      await expect.poll(async () => (await kg.admin('GET', `/v1/keys/${created.id}`)).body.description).toBe('The iOS app, edited meanwhile');
      await expect.poll(() => applied.count()).toBe(1);
      expect(await page.getByRole('button', { name: 'Reload the key' }).count()).toBe(0);
    } finally {
      release();
      await page.unroute(keyPath);
    }
    await panel.getByRole('textbox', { name: 'Description', exact: true }).fill('The iOS app');
    await panel.getByRole('spinbutton', { name: 'Quota (requests)' }).fill('');
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(async () => {
      const key = (await kg.admin('GET', `/v1/keys/${created.id}`)).body;
      return [key.description, key.quota];
    }).toEqual(['The iOS app', null]);
  });

  it('shows usage by outcome and the activity of the key', async () => {
    await open(`/keys/${created.id}`);
    await page.getByRole('tab', { name: 'Usage' }).click();
    // Usage counts are flushed every second.
    await expect.poll(async () => {
      await page.getByRole('button', { name: 'Refresh usage' }).click();
      return (await page.getByRole('row', { name: /PERMISSION_DENIED|KEY_DISABLED/ }).allTextContents()).length;
    }, { timeout: 10_000 }).toBe(2);
    await page.getByRole('tab', { name: 'Activity' }).click();
    const actions = page.getByRole('tabpanel').getByRole('cell', { name: /^key\./ });
    await expect.poll(async () => (await actions.allTextContents()).sort()).toEqual(
      expect.arrayContaining(['key.create', 'key.update', 'key.rotate']),
    );
    // The key's own requests (its activity records, written each second): method, route, status and outcome.
    await expect.poll(async () => {
      await page.getByRole('tab', { name: 'Usage' }).click();
      await page.getByRole('tab', { name: 'Activity' }).click();
      // Each switch loads the tab afresh: count once its table is there, not before.
      const table = page.getByRole('table', { name: 'Recent requests' });
      await table.waitFor({ timeout: 5_000 });
      return table.getByRole('row', { name: /GET \S+ \d{3} (PERMISSION_DENIED|KEY_DISABLED)/ }).count();
    }, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
  });

  it('lists keys grouped by group, searches as you type and filters by type, environment, status, workspace and rotation due', async () => {
    const other = await createWorkspace(kg, 'globex');
    const group = (await kg.admin('POST', '/v1/groups', { name: 'mobile', description: 'phone apps' })).body.id;
    await createKey(kg, { workspaceId: created.workspaceId, name: 'android-app', description: 'The Android app', groupId: group });
    await createKey(kg, { workspaceId: created.workspaceId, name: 'web-widget', type: 'profile', environment: 'test', description: 'embeds' });
    const off = await createKey(kg, { workspaceId: other, name: 'batch-export', description: 'nightly' });
    await kg.admin('PATCH', `/v1/keys/${off.key.id}`, { enabled: false });

    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    const rows = page.locator('table.keys tbody tr:not(.group-row)');
    const names = async (): Promise<string[]> => (await rows.locator('td:first-child a').allTextContents()).sort();
    await expect.poll(names).toEqual(['android-app', 'batch-export', 'ios-app', 'web-widget']);
    expect(await page.getByRole('rowheader', { name: /mobile/ }).count()).toBe(1);
    expect(await page.getByRole('rowheader', { name: /No group/ }).count()).toBe(1);
    await expectAccessible(page, 'key list');
    await screenshot(page, 'key-list');

    const search = page.getByRole('searchbox', { name: 'Search keys' });
    await search.pressSequentially('andr');
    await expect.poll(names).toEqual(['android-app']);
    await search.fill('NIGHT'); // the description, any case
    await expect.poll(names).toEqual(['batch-export']);
    await search.fill(created.secret.slice(0, 12)); // the prefix
    await expect.poll(names).toEqual(['ios-app']);
    await search.fill('');
    await expect.poll(names).toHaveLength(4);

    await page.getByLabel('Filter by type').selectOption('profile');
    await expect.poll(names).toEqual(['web-widget']);
    await page.getByLabel('Filter by type').selectOption('');
    await page.getByLabel('Filter by environment').selectOption('test');
    await expect.poll(names).toEqual(['web-widget']);
    await page.getByLabel('Filter by environment').selectOption('');
    await page.getByLabel('Filter by status').selectOption('disabled');
    await expect.poll(names).toEqual(['batch-export']);
    await page.getByLabel('Filter by status').selectOption('');
    await page.getByLabel('Filter by workspace').selectOption({ label: 'globex' });
    await expect.poll(names).toEqual(['batch-export']);
    await page.getByLabel('Filter by workspace').selectOption('');
    await expect.poll(names).toHaveLength(4);    // Every key here is new: none is due for rotation.
    await page.getByLabel('Filter by rotation due').selectOption('true');
    await expect.poll(names).toEqual([]);
    // An old key's answer says rotationDue: true; the list shows it with a badge.
    const keyList = /\/v1\/keys\?/;
    await page.route(keyList, async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      for (const k of body.items) if (k.name === 'android-app') k.rotationDue = true;
      await route.fulfill({ response: res, json: body });
    });
    await page.getByLabel('Filter by rotation due').selectOption('false');
    await expect.poll(names).toHaveLength(4);
    await expect.poll(() => page.getByRole('row', { name: /android-app/ }).getByText('rotation due').count()).toBe(1);
    expect(await page.locator('table.keys .badge.due').count()).toBe(1);
    await page.unroute(keyList);
    await page.getByLabel('Filter by rotation due').selectOption('');
    await expect.poll(names).toHaveLength(4);
  });

  it('enables Basic authentication: the workspace GUID to copy, and the gateway takes GUID:secret', async () => {
    await open(`/keys/${created.id}`);
    await page.getByRole('tab', { name: 'Basic authentication' }).click();
    expect(await page.getByRole('textbox', { name: 'Workspace GUID' }).inputValue()).toBe(created.workspaceId);
    await page.getByRole('button', { name: 'Copy workspace GUID' }).click();
    expect(await page.evaluate(() => (globalThis as any).navigator.clipboard.readText())).toBe(created.workspaceId);
    const basic = `Basic ${Buffer.from(`${created.workspaceId}:${created.secret}`).toString('base64')}`;
    const call = async (): Promise<number> => (await fetch(`${kg.gatewayUrl}/v1/events`, { headers: { authorization: basic } })).status;
    expect(await call()).toBe(401);
    await page.getByRole('checkbox', { name: 'Allow Basic authentication' }).check();
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(call).toBe(200);
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Settings applied' }).count()).toBe(1);
    expect(await page.getByText('after a propagation delay').isVisible()).toBe(true);
  });

  it('edits the event denylist and allowlist, and the gateway checks the events of a body by them', async () => {
    const sender = await createKey(kg, { workspaceId: created.workspaceId, name: 'event-sender', permissions: ['events.create'] });
    const send = async (action: string): Promise<{ status: number; code: string | null }> => {
      const res = await fetch(`${kg.gatewayUrl}/v1/events`, {
        method: 'POST', headers: { 'x-api-key': sender.secret, 'content-type': 'application/json' }, body: JSON.stringify({ action }),
      });
      const body = await res.json() as { error?: { code: string } };
      return { status: res.status, code: body.error?.code ?? null };
    };
    await open(`/keys/${sender.key.id}`);
    await page.getByRole('tab', { name: 'Denylist' }).click();
    await page.getByRole('textbox', { name: 'Denied events' }).fill('transaction.*');
    await page.getByRole('tab', { name: 'Allowlist', exact: true }).click();
    await page.getByRole('textbox', { name: 'Allowed events' }).fill('page.view\ntransaction.charge');
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await expect.poll(() => send('transaction.charge')).toEqual({ status: 403, code: 'EVENT_NOT_ALLOWED' });
    expect(await send('page.view')).toEqual({ status: 200, code: null });
    expect(await send('signup')).toEqual({ status: 403, code: 'EVENT_NOT_ALLOWED' });
    const key = (await kg.admin('GET', `/v1/keys/${sender.key.id}`)).body;
    expect(key.eventDenylist).toEqual(['transaction.*']);
    expect(key.eventAllowlist).toEqual(['page.view', 'transaction.charge']);
  });

  it('enables simple authentication on a profile key: the salt shows once, and signs a profile token', async () => {
    const profile = await createKey(kg, { workspaceId: created.workspaceId, name: 'mobile-sdk', type: 'profile', permissions: ['profiles.read'] });
    await open(`/keys/${profile.key.id}`);
    await page.getByRole('tab', { name: 'Basic authentication' }).click();
    expect(await page.getByRole('checkbox', { name: 'Allow Basic authentication' }).isDisabled()).toBe(true);
    expect(await page.getByText('Only workspace keys may use Basic authentication').isVisible()).toBe(true);
    await page.getByRole('tab', { name: 'Simple authentication' }).click();
    await page.getByRole('checkbox', { name: 'Allow simple authentication' }).check();
    await page.getByRole('button', { name: 'Apply settings' }).click();
    const once = dialog('Copy this salt now');
    await expect.poll(() => once.isVisible()).toBe(true);
    const salt = await once.getByRole('textbox', { name: 'Salt' }).inputValue();
    expect(salt.length).toBeGreaterThan(20);
    await expectAccessible(page, 'salt dialog');
    await once.getByRole('button', { name: 'Done' }).click();
    expect(await page.content()).not.toContain(salt);
    const signature = createHmac('sha256', Buffer.from(salt, 'utf8')).update('user-42').digest('hex');
    const mint = await fetch(`${kg.gatewayUrl}/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: profile.secret, identity: { customId: 'user-42' }, signature }),
    });
    expect(mint.status).toBe(200);
    const { token } = await mint.json() as { token: string };
    const res = await fetch(`${kg.gatewayUrl}/v1/profiles/user-42`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
  });

  it('pages a long key list: "Load more keys" asks for the next page', async () => {
    const ws = await createWorkspace(kg, 'bulk');
    for (let i = 0; i < 105; i++) await createKey(kg, { workspaceId: ws, name: `bulk-${String(i).padStart(3, '0')}` });
    await open(`/keys`);
    await page.getByLabel('Filter by workspace').selectOption({ label: 'bulk' });
    const rows = page.locator('table.keys tbody tr:not(.group-row)');
    await expect.poll(() => rows.count()).toBe(100);
    expect(await page.getByRole('status').filter({ hasText: 'keys' }).textContent()).toBe('100+ keys');
    await page.getByRole('button', { name: 'Load more keys' }).click();
    await expect.poll(() => rows.count()).toBe(105);
    expect(await page.getByRole('button', { name: 'Load more keys' }).count()).toBe(0);
    expect(new Set(await rows.locator('td:first-child a').allTextContents()).size).toBe(105);
    await page.getByLabel('Filter by workspace').selectOption('');
  });

  it('creates a key with a preset and locked permissions, which then show read-only with the reason', async () => {
    await open('/keys');
    await page.getByRole('button', { name: 'Add API key' }).click();
    const add = dialog('Add API key');
    await add.getByLabel('Name', { exact: true }).fill('locked-key');
    await add.getByLabel('Permission preset').selectOption('read-only');
    await add.getByRole('checkbox', { name: /Lock permissions/ }).check();
    await add.getByRole('button', { name: 'Create' }).click();
    await dialog('Copy this key now').getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'locked-key' }).isVisible()).toBe(true);
    const id = new URL(page.url()).hash.split('/').pop()!;
    const locked = (await kg.admin('GET', `/v1/keys/${id}`)).body;
    expect([locked.permissions, locked.permissionsLocked]).toEqual([['*.read'], true]);
    await page.getByRole('tab', { name: 'Permissions' }).click();
    const box = page.getByRole('checkbox', { name: 'events.read', exact: true });
    expect(await box.isChecked()).toBe(true);
    expect(await box.isDisabled()).toBe(true);
    expect(await page.getByRole('checkbox', { name: 'events.create', exact: true }).isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'full-access' }).isDisabled()).toBe(true);
    expect(await page.getByText('locked when the key was created').isVisible()).toBe(true);
    await expectAccessible(page, 'locked permissions');
  });

  it('deletes a key after a confirmation naming it, and the gateway refuses its secret', async () => {
    await open(`/keys/${created.id}`);
    await expect.poll(() => page.getByRole('heading', { name: created.name }).isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Delete' }).click();
    const confirm = dialog(`Delete key “${created.name}”?`);
    await expect.poll(() => confirm.isVisible()).toBe(true);
    await expectAccessible(page, 'delete confirmation');
    // Escape cancels, and nothing is deleted.
    await page.keyboard.press('Escape');
    await expect.poll(() => confirm.count()).toBe(0);
    expect((await kg.admin('GET', `/v1/keys/${created.id}`)).status).toBe(200);
    const etag = (await kg.admin('GET', `/v1/keys/${created.id}`)).headers.get('etag');
    await page.getByRole('button', { name: 'Delete' }).click();
    const deleting = page.waitForRequest((r) => r.method() === 'DELETE' && r.url().endsWith(`/v1/keys/${created.id}`));
    await confirm.getByRole('button', { name: 'Delete' }).click();
    expect((await deleting).headers()['if-match']).toBe(etag);
    await expect.poll(() => page.getByRole('heading', { name: 'API keys' }).isVisible()).toBe(true);
    expect((await kg.admin('GET', `/v1/keys/${created.id}`)).status).toBe(404);
    expect(await gateway(created.secret)).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  });

  it('disabling an owner says how many keys it suspends, and suspends them', async () => {
    const owner = (await kg.admin('POST', '/v1/owners', { name: 'partner-co', permissions: ['*'] })).body;
    const k1 = await createKey(kg, { workspaceId: created.workspaceId, name: 'partner-1', ownerId: owner.id, permissions: ['events.read'] });
    await createKey(kg, { workspaceId: created.workspaceId, name: 'partner-2', ownerId: owner.id });
    await page.getByRole('link', { name: 'Owners' }).click();
    await page.getByRole('button', { name: 'Disable owner partner-co' }).click();
    const confirm = dialog('Disable owner “partner-co”?');
    await expect.poll(() => confirm.isVisible()).toBe(true);
    expect(await confirm.textContent()).toContain('suspends 2 keys');
    const etag = (await kg.admin('GET', `/v1/owners/${owner.id}`)).headers.get('etag');
    const patching = page.waitForRequest((r) => r.method() === 'PATCH' && r.url().endsWith(`/v1/owners/${owner.id}`));
    await confirm.getByRole('button', { name: 'Disable' }).click();
    expect((await patching).headers()['if-match']).toBe(etag);
    await expect.poll(() => page.getByRole('button', { name: 'Enable owner partner-co' }).isVisible()).toBe(true);
    expect(await gateway(k1.secret)).toEqual({ status: 403, code: 'KEY_SUSPENDED' });
    await expectAccessible(page, 'owners page');
    await page.getByRole('button', { name: 'Enable owner partner-co' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Disable owner partner-co' }).isVisible()).toBe(true);
    expect(await gateway(k1.secret)).toEqual({ status: 200, code: null });
  });

  it('deletes a workspace and an owner after a confirmation naming them; one still in use stays, with the API\'s reason', async () => {
    await page.getByRole('link', { name: 'Workspaces' }).click();
    await page.getByRole('button', { name: 'Delete workspace acme' }).click();
    const inUse = dialog('Delete workspace “acme”?');
    await expect.poll(() => inUse.isVisible()).toBe(true);
    await expectAccessible(page, 'delete workspace confirmation');
    await inUse.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('still holds keys');
    expect(await page.getByRole('row', { name: /acme/ }).count()).toBe(1);
    expect((await kg.admin('GET', `/v1/workspaces/${created.workspaceId}`)).status).toBe(200);

    const spare = await createWorkspace(kg, 'spare-ws');
    const spareEtag = (await kg.admin('GET', `/v1/workspaces/${spare}`)).headers.get('etag');
    await open('/workspaces');
    const deleting = page.waitForRequest((r) => r.method() === 'DELETE' && r.url().endsWith(`/v1/workspaces/${spare}`));
    await page.getByRole('button', { name: 'Delete workspace spare-ws' }).click();
    await dialog('Delete workspace “spare-ws”?').getByRole('button', { name: 'Delete' }).click();
    expect((await deleting).headers()['if-match']).toBe(spareEtag);
    await expect.poll(() => page.getByRole('row', { name: /spare-ws/ }).count()).toBe(0);
    expect((await kg.admin('GET', `/v1/workspaces/${spare}`)).status).toBe(404);
    expect(await page.getByRole('alert').count()).toBe(0);

    await page.getByRole('link', { name: 'Owners' }).click();
    await page.getByRole('button', { name: 'Delete owner partner-co' }).click();
    const ownerInUse = dialog('Delete owner “partner-co”?');
    await expect.poll(() => ownerInUse.isVisible()).toBe(true);
    await expectAccessible(page, 'delete owner confirmation');
    await ownerInUse.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('still refer to the owner');
    expect(await page.getByRole('row', { name: /partner-co/ }).count()).toBe(1);

    await kg.admin('POST', '/v1/owners', { name: 'spare-owner' });
    await open('/owners');
    await page.getByRole('button', { name: 'Delete owner spare-owner' }).click();
    await dialog('Delete owner “spare-owner”?').getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.getByRole('row', { name: /spare-owner/ }).count()).toBe(0);
    expect((await kg.admin('GET', '/v1/owners')).body.items.map((o: any) => o.name)).not.toContain('spare-owner');
  });

  it('lists groups, the audit log and the nodes with their applied store version', async () => {
    await page.getByRole('link', { name: 'Groups' }).click();
    await page.getByLabel('Group name').fill('backend');
    await page.getByRole('button', { name: 'Create group' }).click();
    await expect.poll(() => page.getByRole('row', { name: /backend/ }).count()).toBe(1);
    await expectAccessible(page, 'groups page');
    // A group with keys is not deleted, and the page says why.
    await page.getByRole('button', { name: 'Delete group mobile' }).click();
    await dialog('Delete group “mobile”?').getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/group/i);
    expect(await page.getByRole('row', { name: /mobile/ }).count()).toBe(1);
    await page.getByRole('button', { name: 'Delete group backend' }).click();
    await dialog('Delete group “backend”?').getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.getByRole('row', { name: /backend/ }).count()).toBe(0);

    await page.getByRole('link', { name: 'Audit log' }).click();
    await expect.poll(() => page.getByRole('cell', { name: 'owner.update' }).count()).toBeGreaterThan(0);
    expect(await page.getByRole('cell', { name: 'key.delete' }).count()).toBe(1);
    await expectAccessible(page, 'audit page');
    await page.getByLabel('Key ID').fill(created.id);
    await page.getByRole('button', { name: 'Show entries' }).click();
    await expect.poll(async () => new Set(await page.locator('tbody tr td:nth-child(4)').allTextContents())).toEqual(new Set([created.id]));

    await page.getByRole('link', { name: 'Nodes' }).click();
    const nodes = (await kg.admin('GET', '/v1/nodes')).body.items;
    expect(nodes.length).toBe(1);
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'applied store version' }).textContent()).toMatch(/^All 1 node has applied store version \d+\.$/);
    expect(await page.getByRole('cell', { name: nodes[0].id }).count()).toBe(1);
    await expectAccessible(page, 'nodes page');
  });

  it('opens the add dialog from the keyboard, keeps focus in it, and Escape returns focus to the button', async () => {
    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    const add = page.getByRole('button', { name: 'Add API key' });
    await add.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => dialog('Add API key').isVisible()).toBe(true);
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => { const d = (globalThis as any).document; return d.activeElement?.closest('dialog') !== null || d.activeElement === d.body; })).toBe(true);
    }
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog('Add API key').count()).toBe(0);
    await expect.poll(() => page.evaluate(() => (globalThis as any).document.activeElement?.textContent)).toBe('Add API key');
  });

  it('signs in with a scoped token made at /v1/admin-tokens: the keys show, and a write it may not make names the missing scope', async () => {
    const made = await kg.admin('POST', '/v1/admin-tokens', { name: 'console-reader', scopes: ['keys:read'] });
    expect(made.status).toBe(201);
    await page.evaluate(() => (globalThis as any).sessionStorage.clear());
    await page.reload();
    await page.getByLabel('Admin token').fill(made.body.secret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'API keys' }).isVisible()).toBe(true);
    await expect.poll(() => page.getByRole('link', { name: 'android-app' }).isVisible()).toBe(true);
    const before = (await kg.admin('GET', '/v1/keys?limit=500')).body.items.length;
    await page.getByRole('button', { name: 'Add API key' }).click();
    const add = dialog('Add API key');
    await add.getByLabel('Name', { exact: true }).fill('not-allowed');
    await add.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => add.getByRole('alert').textContent()).toContain('keys:write');
    await expectAccessible(page, 'add key dialog, scope missing');
    await page.keyboard.press('Escape');
    expect((await kg.admin('GET', '/v1/keys?limit=500')).body.items.length).toBe(before);
  });

  it('goes back to sign-in when the API refuses the stored token', async () => {
    await page.evaluate(() => {
      const store = (globalThis as any).sessionStorage;
      for (const k of Object.keys(store)) store.setItem(k, 'a-token-that-was-revoked');
    });
    await page.reload();
    await expect.poll(() => page.getByLabel('Admin token').isVisible()).toBe(true);
    expect(await page.getByRole('alert').textContent()).toContain('sign in again');
    await signIn(page);
  });
  it('logged no script error and no CSP violation while it was driven', () => {
    expect(pageProblems).toEqual([]);
  });

  it('runs under its CSP: the browser refuses an inline script', async () => {
    const violations: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy/.test(m.text())) violations.push(m.text()); });
    await page.addScriptTag({ content: '(globalThis).__inlineRan = true;' }).catch(() => undefined);
    expect(await page.evaluate(() => (globalThis as any).__inlineRan === true)).toBe(false);
    await expect.poll(() => violations.length).toBeGreaterThan(0);
  });

  it('has an accessibility check that does catch a violation (an unnamed image and a field without a label)', async () => {
    await page.evaluate(() => {
      const d = (globalThis as any).document;
      const img = d.createElement('img');
      img.src = 'favicon.svg';
      img.id = 'axe-probe-img';
      const input = d.createElement('input');
      input.id = 'axe-probe-input';
      d.querySelector('main').append(img, input);
    });
    await expect(expectAccessible(page, 'probe')).rejects.toThrow(/image-alt|label/);
    await page.evaluate(() => {
      const d = (globalThis as any).document;
      d.getElementById('axe-probe-img').remove();
      d.getElementById('axe-probe-input').remove();
    });
    await expectAccessible(page, 'after the probe');
  });
});
