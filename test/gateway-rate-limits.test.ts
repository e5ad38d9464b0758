import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw, metricSum, scrape } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { postToken } from './support/tokens.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
const pair = useUpstreamPair();
let ups: RecordingUpstream[];

beforeAll(async () => {
  ({ events, eventsTest } = pair);
  ups = pair.all;
});

/** `n` requests in parallel batches of 16; returns the status counts. */
async function burst(kg: Keygate, secret: string, n: number, connection?: 'close'): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (let done = 0; done < n; done += 16) {
    const size = Math.min(16, n - done);
    const statuses = await Promise.all(Array.from({ length: size }, () =>
      gw(kg, '/v1/events', { headers: { 'x-api-key': secret, ...(connection ? { connection } : {}) } }).then((r) => r.status)));
    for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  return counts;
}

for (const workers of [1, 2]) {
  describe(`rate limits and quotas with gateway.workers: ${workers}`, () => {
    let kg: Keygate;
    let ws: string;

    beforeAll(async () => {
      kg = await startKeygate({ config: gatewayConfig({ events, eventsTest, gateway: { workers } }) });
      ws = await createWorkspace(kg, 'limits');
    });
    afterAll(async () => {
      await stopAndClean(kg);
    });

    it('admits exactly the limit within a window and answers the rest 429 RATE_LIMITED with Retry-After and RateLimit-*', async () => {
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'rl', permissions: ['*'], rateLimit: { limit: 25, windowSeconds: 3600 } });
      // Connection: close spreads the requests over the workers; the limit still holds in total.
      const counts = await burst(kg, secret, 60, 'close');
      expect(counts.get(200)).toBe(25);
      expect(counts.get(429)).toBe(35);
      const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } });
      events.reset();
      await expectRefused(res, 429, 'RATE_LIMITED', []);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(res.headers.get('ratelimit-limit')).toBe('25');
      expect(res.headers.get('ratelimit-remaining')).toBe('0');
      expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    });

    it('sends RateLimit-* on every forwarded answer of a rate-limited key, remaining counting down, and none to a key without limits (regression)', async () => {
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'rl-headers', permissions: ['*'], rateLimit: { limit: 10, windowSeconds: 3600 } });
      for (const left of [9, 8, 7]) {
        const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } });
        expect(res.status).toBe(200);
        expect(res.body.name).toBe('events');
        expect(res.headers.get('ratelimit-limit')).toBe('10');
        expect(res.headers.get('ratelimit-remaining')).toBe(String(left));
        expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
        expect(Number(res.headers.get('ratelimit-reset'))).toBeLessThanOrEqual(3600);
        expect(res.headers.get('retry-after')).toBeNull();
      }
      // An answer the gateway makes for a forwarded request (the upstream is down) carries them too.
      const down = await gw(kg, '/v1/down', { headers: { 'x-api-key': secret } });
      expect(down.status).toBe(502);
      expect(down.headers.get('ratelimit-remaining')).toBe('6');
      const { secret: unlimited } = await createKey(kg, { workspaceId: ws, name: 'no-limits', permissions: ['*'] });
      const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': unlimited } });
      expect(res.status).toBe(200);
      expect([...res.headers.keys()].filter((n) => n.startsWith('ratelimit'))).toEqual([]);
    });

    it('sends the quota\'s RateLimit-* on forwarded answers of a key whose quota is nearer exhaustion', async () => {
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'q-headers', permissions: ['*'], rateLimit: { limit: 100, windowSeconds: 60 }, quota: { limit: 5, period: 'month' } });
      const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } });
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('5');
      expect(res.headers.get('ratelimit-remaining')).toBe('4');
      expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(60);
    });

    it('counts POST /auth/token against the key\'s rate limit: RateLimit-* on each mint, 429 RATE_LIMITED past it, and the budget shared with its requests (regression)', async () => {
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'rl-mint', permissions: ['*'], rateLimit: { limit: 3, windowSeconds: 3600 } });
      for (const left of [2, 1]) {
        const minted = await postToken(kg, { apiKey: secret });
        expect(minted.status, minted.text).toBe(200);
        expect(minted.headers.get('ratelimit-limit')).toBe('3');
        expect(minted.headers.get('ratelimit-remaining')).toBe(String(left));
      }
      expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } })).status).toBe(200);
      const refused = await postToken(kg, { apiKey: secret });
      await expectRefused(refused, 429, 'RATE_LIMITED', []);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers.get('ratelimit-limit')).toBe('3');
      expect(refused.headers.get('ratelimit-remaining')).toBe('0');
      events.reset();
      await expectRefused(await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } }), 429, 'RATE_LIMITED', ups);
    });

    it('counts POST /auth/token against the key\'s quota: 429 QUOTA_EXCEEDED once it is used up (regression)', async () => {
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'q-mint', permissions: ['*'], quota: { limit: 1, period: 'day' } });
      const minted = await postToken(kg, { apiKey: secret });
      expect(minted.status, minted.text).toBe(200);
      expect(minted.headers.get('ratelimit-remaining')).toBe('0');
      await expectRefused(await postToken(kg, { apiKey: secret }), 429, 'QUOTA_EXCEEDED', []);
      events.reset();
      await expectRefused(await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } }), 429, 'QUOTA_EXCEEDED', ups);
    });

    it('forwards nothing for a rate-limited request', async () => {
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'rl-nothing', permissions: ['*'], rateLimit: { limit: 1, windowSeconds: 3600 } });
      expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } })).status).toBe(200);
      events.reset();
      await expectRefused(await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } }), 429, 'RATE_LIMITED', ups);
    });

    it('enforces a daily quota with 429 QUOTA_EXCEEDED once it is used up', async () => {
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'quota', permissions: ['*'], quota: { limit: 3, period: 'day' } });
      const counts = await burst(kg, secret, 8);
      expect(counts.get(200)).toBe(3);
      events.reset();
      const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } });
      await expectRefused(res, 429, 'QUOTA_EXCEEDED', ups);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    });

    it('does not count requests refused before the limit (a missing permission) against it', async () => {
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'rl-perm', permissions: ['events.read'], rateLimit: { limit: 2, windowSeconds: 3600 } });
      for (let i = 0; i < 5; i++) expect((await gw(kg, '/v1/profiles/p1', { headers: { 'x-api-key': secret } })).status).toBe(403);
      expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } })).status).toBe(200);
      expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } })).status).toBe(200);
      expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } })).status).toBe(429);
    });

    it('applies a limit added by PATCH to the next requests', async () => {
      const { key, secret } = await createKey(kg, { workspaceId: ws, name: 'rl-patch', permissions: ['*'] });
      expect((await burst(kg, secret, 5)).get(200)).toBe(5);
      const patched = await kg.admin('PATCH', `/v1/keys/${key.id}`, { rateLimit: { limit: 2, windowSeconds: 3600 } });
      expect(patched.status).toBe(200);
      const counts = await burst(kg, secret, 6);
      expect(counts.get(200)).toBe(2);
      expect(counts.get(429)).toBe(4);
    });

    it('shows the budgets left in GET /v1/keys/{id}/usage without consuming them', async () => {
      const { key, secret } = await createKey(kg, { workspaceId: ws, name: 'usage-budgets', permissions: ['*'],
        rateLimit: { limit: 10, windowSeconds: 3600 }, quota: { limit: 50, period: 'month' } });
      await burst(kg, secret, 4);
      for (let i = 0; i < 2; i++) {
        const usage = await kg.admin('GET', `/v1/keys/${key.id}/usage`);
        expect(usage.status).toBe(200);
        expect(usage.body.rateLimit).toMatchObject({ limit: 10, windowSeconds: 3600 });
        expect(usage.body.rateLimit.remaining).toBeLessThanOrEqual(6);
        expect(usage.body.quota).toMatchObject({ limit: 50, period: 'month', used: 4, remaining: 46 });
      }
    });

    it('counts every refusal in keygate_rate_limited_total', async () => {
      expect(metricSum(await scrape(kg), 'keygate_rate_limited_total')).toBeGreaterThanOrEqual(35);
    });
  });
}
