import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, filesContaining, listFiles, stopAndClean } from './support/admin.js';
import { startKeygate, type Keygate } from './support/keygate.js';

// The secret is in the create and rotate responses and nowhere else, ever: not in a later
// admin response, not in the audit log, not on disk, not in the logs. The simple-auth salt is
// in the response that enabled it and in no other admin response (it is stored server-side
// by design, since the gateway verifies signatures with it).

describe('secret hygiene', () => {
  let kg: Keygate;
  let ws: string;
  let keyId: string;
  let profileId: string;
  let lateProfileId: string;
  const secrets: string[] = [];
  const salts: string[] = [];
  /** Every admin response body after the ones allowed to carry secrets, as text. */
  const laterResponses: string[] = [];

  const fetchEverything = async (): Promise<void> => {
    const paths = [
      `/v1/keys/${keyId}`, `/v1/keys/${profileId}`, `/v1/keys/${lateProfileId}`,
      '/v1/keys', `/v1/keys?workspaceId=${ws}`, '/v1/keys?limit=1',
      '/v1/audit?limit=1000', `/v1/audit?keyId=${keyId}`, `/v1/audit?keyId=${profileId}`, `/v1/audit?keyId=${lateProfileId}`,
      `/v1/keys/${keyId}/usage`, `/v1/keys/${profileId}/usage`,
      '/v1/workspaces', `/v1/workspaces/${ws}`, '/v1/groups', '/v1/owners', '/v1/permissions', '/v1/nodes',
    ];
    for (const p of paths) {
      const res = await kg.admin('GET', p);
      expect(res.status, p).toBe(200);
      laterResponses.push(`${p} ${JSON.stringify(res.body)}`);
    }
    // A PATCH response is not a place for the secret or the salt either.
    const patched = await kg.admin('PATCH', `/v1/keys/${profileId}`, { description: 'touched' });
    expect(patched.status).toBe(200);
    laterResponses.push(JSON.stringify(patched.body));
    const metrics = await fetch(`${kg.adminUrl}/metrics`);
    laterResponses.push(await metrics.text());
  };

  beforeAll(async () => {
    kg = await startKeygate();
    ws = await createWorkspace(kg, 'hygiene');
    const a = await createKey(kg, { workspaceId: ws, name: 'hygiene-key', permissions: ['events.create'] });
    keyId = a.key.id;
    secrets.push(a.secret);
    const rotated = await kg.admin('POST', `/v1/keys/${keyId}/rotate`, { gracePeriodSeconds: 3600 });
    expect(rotated.status).toBe(200);
    secrets.push(rotated.body.secret);

    const p = await createKey(kg, { workspaceId: ws, name: 'hygiene-profile', type: 'profile', simpleAuth: { enabled: true } });
    profileId = p.key.id;
    secrets.push(p.secret);
    salts.push(p.key.simpleAuth.salt);
    const rp = await kg.admin('POST', `/v1/keys/${profileId}/rotate`, {});
    secrets.push(rp.body.secret);

    const late = await createKey(kg, { workspaceId: ws, name: 'hygiene-late', type: 'profile' });
    lateProfileId = late.key.id;
    secrets.push(late.secret);
    const enabled = await kg.admin('PATCH', `/v1/keys/${lateProfileId}`, { simpleAuth: { enabled: true } });
    salts.push(enabled.body.simpleAuth.salt);

    // Send every secret through the gateway in each credential form (the upstream is
    // unreachable, so these end in 502/401/403): the gateway's logs must not keep them either.
    expect(kg.gatewayUrl).not.toBeNull();
    for (const secret of secrets) {
      const flipped = secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A'); // bad checksum
      for (const s of [secret, flipped]) {
        const attempts: Array<[string, RequestInit]> = [
          ['/v1/events', { headers: { 'x-api-key': s } }],
          ['/v1/events', { headers: { authorization: `Bearer ${s}` } }],
          ['/v1/events', { headers: { authorization: `Basic ${Buffer.from(`${ws}:${s}`).toString('base64')}` } }],
          ['/v1/events', { headers: { 'x-api-key': s, authorization: `Bearer ${s}` } }],
          ['/auth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: s }) }],
        ];
        for (const [path, init] of attempts) {
          const res = await fetch(`${kg.gatewayUrl}${path}`, init);
          await res.arrayBuffer();
          expect(res.status).toBeGreaterThanOrEqual(200);
        }
      }
    }

    for (const s of [...secrets, ...salts]) {
      expect(typeof s).toBe('string');
      expect(s.length).toBeGreaterThanOrEqual(16);
    }
    // The random body of each secret (kg_live_<random>_<checksum>) must not leak on its own either.
    for (const s of [...secrets]) secrets.push(s.split('_')[2]!);
    await fetchEverything();
  });

  afterAll(async () => {
    await stopAndClean(kg);
  });

  it('no secret appears in GET key, list, audit, usage or any other admin response after create/rotate', () => {
    expect(laterResponses.length).toBeGreaterThan(10);
    for (const text of laterResponses) for (const s of secrets) expect(text.includes(s), text.slice(0, 200)).toBe(false);
  });

  it('no simple-auth salt appears in any admin response other than the one that enabled it', () => {
    for (const text of laterResponses) for (const s of salts) expect(text.includes(s), text.slice(0, 200)).toBe(false);
  });

  it('the audit log never carries a secret, secret hash or salt field', () => {
    const audit = laterResponses.filter((t) => t.startsWith('/v1/audit'));
    expect(audit.length).toBeGreaterThan(0);
    for (const text of audit) expect(text).not.toMatch(/secretHash|retiredSecrets|"salt"|"hash"/);
  });

  it('no file in the data dir contains a secret (checked while running and after a clean stop)', async () => {
    const files = listFiles(kg.dataDir);
    expect(files.length).toBeGreaterThan(0);
    for (const s of secrets) expect(filesContaining(kg.dataDir, s)).toEqual([]);
  });

  it('no stdout log line contains a secret or a salt', () => {
    expect(kg.output.length).toBeGreaterThan(0);
    const log = kg.output.join('\n');
    for (const s of [...secrets, ...salts]) expect(log.includes(s)).toBe(false);
  });

  it('after SIGTERM the data files and logs still hold no secret', async () => {
    const code = await kg.stop('SIGTERM');
    expect(code).toBe(0);
    for (const s of secrets) expect(filesContaining(kg.dataDir, s)).toEqual([]);
    const log = kg.output.join('\n');
    for (const s of [...secrets, ...salts]) expect(log.includes(s)).toBe(false);
  });
});
