// Key hygiene end to end on the embedded store: per-key and per-owner activity (kept across a
// restart), leak reports by an admin and by GitHub's secret scanning, against `keygate serve`.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, expectError, stopAndClean } from './support/admin.js';
import { gatewayConfig, gw, metricSamples, pollUntil, scrape } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;

/** A GitHub-like signer: the test's own P-256 key, configured as GitHub's. */
const github = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const impostor = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const GITHUB_KEY_ID = 'bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c';

function signed(body: string, key: KeyObject = github.privateKey, keyId = GITHUB_KEY_ID): Record<string, string> {
  return {
    'content-type': 'application/json',
    'github-public-key-identifier': keyId,
    'github-public-key-signature': sign('sha256', Buffer.from(body), { key, dsaEncoding: 'der' }).toString('base64'),
  };
}

let kg: Keygate;
let ws: string;

const config = (dir: string): Record<string, unknown> => ({
  ...gatewayConfig({ events, eventsTest })(dir),
  keys: { activityPerKey: 50 },
  leaks: { github: { publicKeys: [{ id: GITHUB_KEY_ID, key: github.publicKey.export({ type: 'spki', format: 'pem' }).toString() }] } },
});

beforeAll(async () => {
  ({ events, eventsTest } = pair);
  kg = await startKeygate({ config });
  ws = await createWorkspace(kg, 'hygiene');
});

afterAll(async () => {
  await stopAndClean(kg);
});

/** The key's activity once `n` records have reached the store (usage-like batches, every second). */
async function activityOf(id: string, n: number, query = ''): Promise<any> {
  const polled = await pollUntil(() => kg.admin('GET', `/v1/keys/${id}/activity${query}`), (r) => r.status === 200 && r.body.items.length >= n, 5_000, 100);
  expect(polled.value.status, JSON.stringify(polled.value.body)).toBe(200);
  return polled.value.body;
}

describe('activity', () => {
  it('records what a key did, newest first, with exactly the documented fields and no secret, query or body', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'act', permissions: ['events.read', 'events.create'] });
    expect((await gw(kg, '/v1/events?token=sekrit-query', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
    expect((await gw(kg, '/v1/events', { method: 'POST', headers: { 'x-api-key': k.secret, 'content-type': 'application/json' }, body: '{"action":"body-secret"}' })).status).toBe(200);
    const refused = await gw(kg, '/v1/stats', { headers: { authorization: `Bearer ${k.secret}` } });
    expect(refused.status).toBe(403);

    const page = await activityOf(k.key.id, 3);
    expect(page.nextCursor).toBeNull();
    expect(page.items.map((i: any) => [i.method, i.route, i.status, i.outcome])).toEqual([
      ['GET', 'stats', 403, 'PERMISSION_DENIED'],
      ['POST', 'send-events', 200, 'OK'],
      ['GET', 'list-events', 200, 'OK'],
    ]);
    for (const item of page.items) {
      expect(Object.keys(item).sort()).toEqual(['at', 'clientIp', 'keyId', 'method', 'outcome', 'requestId', 'route', 'status']);
      expect(item.keyId).toBe(k.key.id);
      expect(item.clientIp).toBe('127.0.0.1');
      expect(Date.parse(item.at)).toBeGreaterThan(Date.now() - 60_000);
    }
    expect(page.items[0].requestId).toBe(refused.headers.get('x-request-id'));
    const text = JSON.stringify(page);
    expect(text).not.toContain(k.secret);
    expect(text).not.toContain('sekrit-query');
    expect(text).not.toContain('body-secret');
  });

  it('pages with limit and cursor, each request once, in order', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'pages', permissions: ['events.read'] });
    for (let i = 0; i < 7; i++) expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
    const all = (await activityOf(k.key.id, 7)).items as any[];
    const seen: any[] = [];
    let cursor: string | null = null;
    do {
      const res = await kg.admin('GET', `/v1/keys/${k.key.id}/activity?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.items);
      cursor = res.body.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual(all);
    expect(seen.map((i) => i.at)).toEqual([...seen.map((i) => i.at)].sort().reverse());
    expectError(await kg.admin('GET', `/v1/keys/${k.key.id}/activity?cursor=bm9wZQ`), 400, 'BAD_REQUEST');
    expectError(await kg.admin('GET', `/v1/keys/${k.key.id}/activity?limit=0`), 400, 'BAD_REQUEST');
    expectError(await kg.admin('GET', '/v1/keys/key_nope/activity'), 404, 'KEY_NOT_FOUND');
  });

  it('merges the activity of every key of an owner', async () => {
    const owner = (await kg.admin('POST', '/v1/owners', { name: 'alice', permissions: ['*'] })).body;
    const a = await createKey(kg, { workspaceId: ws, name: 'a', ownerId: owner.id, permissions: ['events.read'] });
    const b = await createKey(kg, { workspaceId: ws, name: 'b', ownerId: owner.id, permissions: ['events.read'] });
    const other = await createKey(kg, { workspaceId: ws, name: 'other', permissions: ['events.read'] });
    for (const s of [a.secret, b.secret, other.secret, a.secret]) expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': s } })).status).toBe(200);
    const polled = await pollUntil(() => kg.admin('GET', `/v1/owners/${owner.id}/activity`), (r) => r.body.items?.length >= 3, 5_000, 100);
    expect(polled.value.body.items.map((i: any) => i.keyId)).toEqual([a.key.id, b.key.id, a.key.id]);
    const first = await kg.admin('GET', `/v1/owners/${owner.id}/activity?limit=2`);
    expect(first.body.items).toEqual(polled.value.body.items.slice(0, 2));
    const second = await kg.admin('GET', `/v1/owners/${owner.id}/activity?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body).toEqual({ items: polled.value.body.items.slice(2), nextCursor: null });
    expectError(await kg.admin('GET', '/v1/owners/own_nope/activity'), 404, 'OWNER_NOT_FOUND');
  });

  it('keeps a key\'s activity across a restart of the embedded store', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'durable', permissions: ['events.read'] });
    for (let i = 0; i < 3; i++) expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
    const before = (await activityOf(k.key.id, 3)).items;
    const dataDir = kg.dataDir;
    await stopAndClean(kg, { keepData: true });
    kg = await startKeygate({ config, dataDir });
    const after = await kg.admin('GET', `/v1/keys/${k.key.id}/activity`);
    expect(after.status).toBe(200);
    expect(after.body.items).toEqual(before);
  });
});

describe('rotation due', () => {
  it('shows rotationDue on keys, filters the list on it, and exports keygate_keys_rotation_due', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'fresh', permissions: ['events.read'] });
    expect(k.key).toMatchObject({ rotationDue: false, rotatedAt: null, expiredReason: null });
    const due = await kg.admin('GET', '/v1/keys?rotationDue=true');
    expect(due.status).toBe(200);
    expect(due.body.items).toEqual([]);
    const notDue = await kg.admin('GET', `/v1/keys?rotationDue=false&workspaceId=${ws}&limit=500`);
    expect(notDue.body.items.map((i: any) => i.id)).toContain(k.key.id);
    expectError(await kg.admin('GET', '/v1/keys?rotationDue=maybe'), 400, 'BAD_REQUEST');
    const samples = metricSamples(await scrape(kg)).filter((m) => m.name === 'keygate_keys_rotation_due');
    expect(samples.map((m) => m.value)).toEqual([0]);
  });
});

describe('leaked keys', () => {
  it('POST /v1/leaks disables the key found by its secret, audits the source and URL, and answers {keyId, action}', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'leaky', permissions: ['events.read'] });
    expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
    const res = await kg.admin('POST', '/v1/leaks', { secret: k.secret, source: 'pastebin', url: 'https://pastebin.example/abc' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ keyId: k.key.id, action: 'disable' });
    const refused = await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('KEY_DISABLED');
    expect((await kg.admin('GET', `/v1/keys/${k.key.id}`)).body.status).toBe('disabled');
    const audit = await kg.admin('GET', `/v1/audit?keyId=${k.key.id}&limit=1`);
    expect(audit.body.items[0]).toMatchObject({
      action: 'key.leak', actor: { type: 'admin', name: 'ops' },
      detail: { source: 'pastebin', url: 'https://pastebin.example/abc', action: 'disable' },
      after: { status: 'disabled' },
    });
    expect(JSON.stringify(audit.body)).not.toContain(k.secret);
  });

  it('finds the key by a retired secret still in its grace, and disables it', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'rotated-leak', permissions: ['events.read'] });
    const rotated = await kg.admin('POST', `/v1/keys/${k.key.id}/rotate`, { gracePeriodSeconds: 3600 });
    expect(rotated.status).toBe(200);
    const res = await kg.admin('POST', '/v1/leaks', { secret: k.secret });
    expect(res.body).toEqual({ keyId: k.key.id, action: 'disable' });
    expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': rotated.body.secret } })).body.error.code).toBe('KEY_DISABLED');
  });

  it('answers 404 for an unknown or malformed secret, saying nothing more, and 400 naming a bad field', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'other', permissions: ['events.read'] });
    // A valid-looking secret of no key: the same secret with another random part.
    const unknown = await createKey(kg, { workspaceId: ws, name: 'gone', permissions: ['events.read'] });
    expect((await kg.admin('DELETE', `/v1/keys/${unknown.key.id}`)).status).toBe(204);
    for (const secret of [unknown.secret, 'kg_live_not-a-secret', k.secret.slice(0, -1) + (k.secret.endsWith('A') ? 'B' : 'A')]) {
      const res = await kg.admin('POST', '/v1/leaks', { secret });
      expectError(res, 404, 'KEY_NOT_FOUND');
      expect(res.body.error.message).toBe('No key has this secret.');
    }
    const bad = await kg.admin('POST', '/v1/leaks', { secret: k.secret, url: 'not a url' });
    expectError(bad, 400, 'BAD_REQUEST');
    expect(bad.body.error.message).toContain('url');
    expectError(await kg.admin('POST', '/v1/leaks', { source: 'x' }), 400, 'BAD_REQUEST');
    expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
  });

  it('POST /auth/secret-scanning with a correctly signed payload disables the key and answers in GitHub\'s format', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'pushed-to-github', permissions: ['events.read'] });
    const gone = await createKey(kg, { workspaceId: ws, name: 'gone', permissions: ['events.read'] });
    expect((await kg.admin('DELETE', `/v1/keys/${gone.key.id}`)).status).toBe(204);
    const body = JSON.stringify([
      { token: k.secret, type: 'keygate_api_key', url: 'https://github.com/acme/app/blob/abc/config.js', source: 'content' },
      { token: gone.secret, type: 'keygate_api_key', url: 'https://github.com/acme/app/commit/def', source: 'commit' },
      { token: 'ghp_notours', type: 'keygate_api_key', url: 'https://github.com/acme/app', source: 'content' },
    ]);
    const res = await gw(kg, '/auth/secret-scanning', { method: 'POST', headers: signed(body), body });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual([
      { token_raw: k.secret, token_type: 'keygate_api_key', label: 'true_positive' },
      { token_raw: gone.secret, token_type: 'keygate_api_key', label: 'false_positive' },
    ]);
    expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret } })).body.error.code).toBe('KEY_DISABLED');
    const audit = await kg.admin('GET', `/v1/audit?keyId=${k.key.id}&limit=1`);
    expect(audit.body.items[0]).toMatchObject({
      action: 'key.leak', actor: { type: 'system', name: 'github-secret-scanning' },
      detail: { source: 'github:content', url: 'https://github.com/acme/app/blob/abc/config.js' },
    });
  });

  it('refuses a wrongly signed, unsigned or unknown-key payload with 401 and changes nothing', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'safe', permissions: ['events.read'] });
    const body = JSON.stringify([{ token: k.secret, type: 'keygate_api_key', url: 'https://github.com/x', source: 'content' }]);
    const attempts: Array<Record<string, string>> = [
      signed(body, impostor.privateKey),
      signed(body, github.privateKey, 'some-other-key-id'),
      { ...signed(body), 'github-public-key-signature': signed('[]')['github-public-key-signature']! },
      { 'content-type': 'application/json' },
    ];
    for (const headers of attempts) {
      const res = await gw(kg, '/auth/secret-scanning', { method: 'POST', headers, body });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHENTICATED');
    }
    // A signed body that was changed on the way.
    const tampered = await gw(kg, '/auth/secret-scanning', { method: 'POST', headers: signed(body), body: body.replace('content', 'commit!') });
    expect(tampered.status).toBe(401);
    expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
    expect((await kg.admin('GET', `/v1/keys/${k.key.id}`)).body.version).toBe(1);
    expect((await gw(kg, '/auth/secret-scanning', { headers: signed(body) })).status).toBe(405);
  });

  it('bounds the body of /auth/secret-scanning', async () => {
    const big = JSON.stringify([{ token: 'x'.repeat(900), type: 't', url: 'u', source: 's' }]).repeat(400);
    const res = await gw(kg, '/auth/secret-scanning', { method: 'POST', headers: signed(big), body: big });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('BODY_TOO_LARGE');
  });
});
