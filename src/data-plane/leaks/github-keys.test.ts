import { generateKeyPairSync, sign } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { GithubKeyring, signatureValid } from './github-keys.js';

const logger = pino({ level: 'silent' });
const pem = (k: ReturnType<typeof generateKeyPairSync>['publicKey']): string => k.export({ type: 'spki', format: 'pem' }).toString();
const one = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const two = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

/** A fetch that serves GitHub's key list format and counts its calls. */
function keyServer(keys: Array<{ id: string; key: string }>) {
  const server = {
    keys,
    calls: 0,
    failing: false,
    fetch: (async () => {
      server.calls++;
      if (server.failing) return new Response('down', { status: 503 });
      return Response.json({ public_keys: server.keys.map((k) => ({ key_identifier: k.id, key: k.key, is_current: true })) });
    }) as typeof fetch,
  };
  return server;
}

describe('GithubKeyring', () => {
  it('verifies GitHub\'s signature (base64 DER ECDSA P-256 over the raw body) and nothing else', async () => {
    const ring = new GithubKeyring({ publicKeys: [{ id: 'k1', key: pem(one.publicKey) }], cacheSeconds: 60, logger });
    const body = Buffer.from('[{"token":"x"}]');
    const sig = sign('sha256', body, { key: one.privateKey, dsaEncoding: 'der' }).toString('base64');
    const key = await ring.key('k1');
    expect(key).not.toBeNull();
    expect(signatureValid(key!, body, sig)).toBe(true);
    expect(signatureValid(key!, Buffer.from('[{"token":"y"}]'), sig)).toBe(false);
    expect(signatureValid(key!, body, sign('sha256', body, { key: two.privateKey, dsaEncoding: 'der' }).toString('base64'))).toBe(false);
    expect(signatureValid(key!, body, '')).toBe(false);
    expect(signatureValid(key!, body, 'bm90IGEgc2lnbmF0dXJl')).toBe(false);
    expect(await ring.key('unknown')).toBeNull();
  });

  it('fetches the keys from keysUrl once, caches them for keysCacheSeconds, and fetches again after', async () => {
    const server = keyServer([{ id: 'k1', key: pem(one.publicKey) }]);
    const clock = { now: 1_000_000 };
    const ring = new GithubKeyring({ publicKeys: [], keysUrl: 'https://api.github.example/meta/public_keys/secret_scanning', cacheSeconds: 3600, logger, fetch: server.fetch, now: () => clock.now });
    expect(ring.configuredAtAll).toBe(true);
    expect(await ring.key('k1')).not.toBeNull();
    expect(await ring.key('k1')).not.toBeNull();
    expect(server.calls).toBe(1);
    // A key GitHub adds later is found once the cache has aged out.
    server.keys.push({ id: 'k2', key: pem(two.publicKey) });
    clock.now += 3_600_000;
    expect(await ring.key('k2')).not.toBeNull();
    expect(server.calls).toBe(2);
  });

  it('asks again for an unknown key id at most once a minute, and keeps its keys when a fetch fails', async () => {
    const server = keyServer([{ id: 'k1', key: pem(one.publicKey) }]);
    const clock = { now: 1_000_000 };
    const ring = new GithubKeyring({ publicKeys: [], keysUrl: 'https://keys.example', cacheSeconds: 3600, logger, fetch: server.fetch, now: () => clock.now });
    await ring.key('k1');
    expect(await ring.key('forged')).toBeNull();
    expect(await ring.key('forged')).toBeNull();
    expect(server.calls).toBe(1);
    clock.now += 61_000;
    server.failing = true;
    expect(await ring.key('forged')).toBeNull();
    expect(server.calls).toBe(2);
    expect(await ring.key('k1')).not.toBeNull();
  });

  it('is off without configured keys or a URL', () => {
    expect(new GithubKeyring({ publicKeys: [], cacheSeconds: 60, logger }).configuredAtAll).toBe(false);
  });
});
