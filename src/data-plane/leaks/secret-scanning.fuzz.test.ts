// Properties of POST /auth/secret-scanning on a real gateway server: whatever a signed body
// holds, the answer is 200 or a catalogued 400, and only well-formed reports reach the store;
// whatever an unsigned or wrongly signed one holds, it is 401 and reaches nothing.
import { generateKeyPairSync, sign } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzz } from '../../../test/support/fuzz.js';
import { parseConfigText } from '../../config/load.js';
import type { LeakReport } from '../../domain/leak.js';
import { drainState } from '../../http/drain.js';
import { Metrics } from '../../observability/metrics.js';
import { createGatewayServer } from '../gateway-server.js';
import { UsageRecorder } from '../pipeline/usage-recorder.js';
import { GithubKeyring } from './github-keys.js';
import { compileSecretScanningRoute, SECRET_SCANNING_PATH } from './secret-scanning.js';

const github = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const logger = pino({ level: 'silent' });
const reported: LeakReport[][] = [];
let url = '';
let close: () => Promise<void>;

beforeAll(async () => {
  const loaded = parseConfigText(`
admin: { tokens: [{ name: ops, token: a-test-admin-token-of-enough-length }] }
secrets: { pepper: a-test-pepper-of-enough-length }
`, {});
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const config = loaded.config;
  const route = compileSecretScanningRoute({
    keyring: new GithubKeyring({ publicKeys: [{ id: 'gh', key: github.publicKey.export({ type: 'spki', format: 'pem' }).toString() }], cacheSeconds: 60, logger }),
    report: async (reports) => {
      reported.push([...reports]);
      return reports.map((r) => ({ token_raw: r.token, token_type: r.type, label: 'false_positive' as const }));
    },
    maxBodyBytes: config.gateway.maxBodyBytes,
    requestTimeoutMs: 5_000,
  });
  const server = createGatewayServer({
    config, routes: [], metrics: new Metrics(), logger, usage: new UsageRecorder(async () => undefined), drain: drainState(), accessLog: null,
    localRoutes: new Map([[SECRET_SCANNING_PATH, route!]]),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${SECRET_SCANNING_PATH}`;
  close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
});

afterAll(async () => { await close?.(); });

const report = fc.record({ token: fc.string({ maxLength: 60 }), type: fc.string({ maxLength: 20 }), url: fc.webUrl(), source: fc.constantFrom('content', 'commit', 'gist') });
const bodies = fc.oneof(
  fc.array(report, { maxLength: 5 }).map((r) => JSON.stringify(r)),
  fc.json({ maxDepth: 3 }),
  fc.string({ maxLength: 200 }),
  fc.array(fc.dictionary(fc.constantFrom('token', 'type', 'url', 'source', 'x'), fc.oneof(fc.string(), fc.integer(), fc.constant(null))), { maxLength: 4 }).map((r) => JSON.stringify(r)),
);

async function post(body: string, key = github.privateKey, id = 'gh'): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method: 'POST', body,
    headers: {
      'content-type': 'application/json',
      'github-public-key-identifier': id,
      'github-public-key-signature': sign('sha256', Buffer.from(body), { key, dsaEncoding: 'der' }).toString('base64'),
    },
  });
  return { status: res.status, json: await res.json() };
}

describe('POST /auth/secret-scanning', () => {
  it('answers a signed body 200 with one verdict per well-formed report, or a catalogued 400', async () => {
    await fc.assert(fc.asyncProperty(bodies, async (body) => {
      reported.length = 0;
      const res = await post(body);
      if (res.status === 200) {
        expect(reported).toHaveLength(1);
        expect(res.json).toHaveLength(reported[0]!.length);
        for (const r of reported[0]!) for (const f of ['token', 'type', 'url', 'source'] as const) expect(typeof r[f]).toBe('string');
      } else {
        expect(res.status).toBe(400);
        expect(['BAD_REQUEST', 'INVALID_BODY']).toContain(res.json.error.code);
        expect(reported).toHaveLength(0);
      }
    }), fuzz(60, 0.02));
  });

  it('refuses a body signed by another key or under another id with 401, reporting nothing', async () => {
    await fc.assert(fc.asyncProperty(bodies, fc.boolean(), async (body, wrongKey) => {
      reported.length = 0;
      const res = await (wrongKey ? post(body, other.privateKey) : post(body, github.privateKey, 'not-gh'));
      expect(res.status).toBe(401);
      expect(res.json.error.code).toBe('UNAUTHENTICATED');
      expect(reported).toHaveLength(0);
    }), fuzz(40, 0.02));
  });
});
