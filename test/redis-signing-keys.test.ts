import { createPublicKey } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { requireRedis, redisCommand, startRedis } from './support/redis-server.js';
import { createKey, createWorkspace, expectError } from './support/admin.js';
import { gw, pollUntil } from './support/gateway.js';
import type { Keygate } from './support/keygate.js';
import { startNode, uniquePrefix, useCleanup } from './support/redis-nodes.js';
import { bearer, decodeJwt, fetchJwks, mintToken } from './support/tokens.js';
import { useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();

/** The raw values of the Redis hash holding the signing keys of the deployment with `prefix`. */
async function rawSigningKeyHash(url: string, prefix: string): Promise<string[]> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    return await client.hvals(`${prefix}{store}:e:signing-key`);
  } finally {
    client.disconnect();
  }
}

const signingKeyIds = async (kg: Keygate): Promise<string[]> => {
  const res = await kg.admin('GET', '/v1/signing-keys');
  expect(res.status).toBe(200);
  return (res.body.items as Array<{ id: string }>).map((i) => i.id);
};

describe.skipIf(!requireRedis())('token signing keys on Redis', () => {
  const defer = useCleanup();

  it('keeps no private key material in the Redis hash of signing keys: the private half is sealed (regression)', async () => {
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const keyPrefix = uniquePrefix('sealed');
    const a = await startNode(defer, { events: pair.events, eventsTest: pair.eventsTest, url: redis.url, keyPrefix });
    expect((await a.admin('POST', '/v1/signing-keys/rotate')).status).toBe(201);
    const raw = await rawSigningKeyHash(redis.url, keyPrefix);
    expect(raw).toHaveLength(2);
    for (const value of raw) {
      expect(value).toMatch(/"sealedPrivateJwk":"v1\./);
      expect(value).not.toMatch(/"d"\s*:/);
      expect(value).not.toMatch(/privateJwk"\s*:\s*\{/);
      expect(value).not.toMatch(/PRIVATE KEY/);
    }
  });

  it('after Redis loses its data (FLUSHALL), lists the signing key again within 10 s, says so in the log, and tokens minted before and after verify on both nodes, one of them with workers (regression)', async () => {
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const opts = { events: pair.events, eventsTest: pair.eventsTest, url: redis.url, keyPrefix: uniquePrefix('flush') };
    const a = await startNode(defer, opts);
    // One node of each kind: a single process, and a primary with two gateway workers.
    const b = await startNode(defer, { ...opts, gateway: { workers: 2 } });
    const before = await mintToken(a, (await createKey(a, { workspaceId: await createWorkspace(a, 'before'), name: 'before', permissions: ['*'] })).secret);
    const kid = decodeJwt(before).header.kid as string;
    expect(await signingKeyIds(a)).toEqual([kid]);

    expect(await redisCommand(redis.port, ['FLUSHALL'])).toBe('OK');
    const flushedAt = Date.now();
    const listed = await pollUntil(async () => [await signingKeyIds(a), await signingKeyIds(b)], ([x, y]) => !!x?.includes(kid) && !!y?.includes(kid), 10_000, 100);
    console.log(`signing key back in the store ${listed.ms} ms after FLUSHALL`);
    expect(listed.ok, `signing keys after FLUSHALL: ${JSON.stringify(listed.value)}`).toBe(true);
    expect(Date.now() - flushedAt).toBeLessThan(10_000);
    const warned = await pollUntil(async () => [...a.output, ...b.output].filter((l) => l.includes('lost the token signing keys')), (l) => l.length > 0, 2_000);
    expect(warned.value.length, 'a warning that the keys were written back').toBeGreaterThan(0);
    expect(JSON.parse(warned.value[0]!)).toMatchObject({ level: 'warn', kids: [kid] });

    // The token minted before still verifies against either node's JWKS (its key is gone with
    // the rest of Redis, so the gateway itself answers for the key: 401).
    for (const node of [a, b]) {
      const jwk = (await fetchJwks(node)).keys.find((k) => k.kid === kid);
      expect(jwk, 'the kid is still published').toBeDefined();
      const pem = createPublicKey({ key: jwk as any, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
      expect(createVerifier({ key: pem, algorithms: ['EdDSA'], allowedAud: 'keygate' })(before)).toMatchObject({ iss: 'keygate' });
    }
    expectError(await gw(b, '/v1/events', { headers: bearer(before) }), 401, 'TOKEN_INVALID');

    // Tokens minted after, on either node, are signed with the same key and work on both.
    const secret = (await createKey(a, { workspaceId: await createWorkspace(a, 'after'), name: 'after', permissions: ['*'] })).secret;
    for (const minter of [a, b, b, b]) {
      const after = await mintToken(minter, secret);
      expect(decodeJwt(after).header.kid).toBe(kid);
      for (const node of [a, b]) {
        const res = await gw(node, '/v1/events', { headers: bearer(after) });
        expect(res.status, res.text).toBe(200);
      }
    }
    expect(await signingKeyIds(b)).toEqual([kid]);
  });
});
