// The loader: defaults, the Redis store settings, rate-limit defaults and the signing key
// encryption key (parsing, interpolation and path-naming messages are in load.test.ts).
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { errors, ok, PEPPER, TOKEN, yaml } from '../../test/support/config-text.js';
import { parseConfigText } from './load.js';

describe('defaults', () => {
  const config = ok(parseConfigText(yaml(), {}));

  it('listens on 0.0.0.0:8080 for the gateway and 127.0.0.1:8081 for admin', () => {
    expect(config.gateway.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.admin.listen).toEqual({ host: '127.0.0.1', port: 8081 });
  });

  it('opens the status port on 0.0.0.0:8082, which `status.enabled: false` turns off (from the environment too)', () => {
    expect(config.status).toEqual({ enabled: true, listen: { host: '0.0.0.0', port: 8082 } });
    const off = ok(parseConfigText(yaml({ extra: 'status:\n  enabled: "${KEYGATE_STATUS:-true}"\n  listen: { port: 9102 }' }), { KEYGATE_STATUS: 'false' }));
    expect(off.status).toEqual({ enabled: false, listen: { host: '0.0.0.0', port: 9102 } });
    expect(errors(parseConfigText(yaml({ extra: 'status:\n  listen: { port: 70000 }' }), {})).join('\n')).toMatch(/status\.listen\.port/);
    expect(errors(parseConfigText(yaml({ extra: 'status:\n  path: /metrics' }), {})).join('\n')).toMatch(/status/);
  });

  it('fills the gateway limits', () => {
    expect(config.gateway.trustedProxies).toEqual([]);
    expect(config.gateway.maxBodyBytes).toBe(1_048_576);
    expect(config.gateway.workers).toBe(1);
    expect(config.gateway.requestTimeoutMs).toBe(30_000);
  });

  it('uses the embedded store under ./data', () => {
    expect(config.store.driver).toBe('embedded');
    expect(config.store.path).toBe('./data');
  });

  it('gives keys a 90-day TTL and a one-day rotation grace', () => {
    expect(config.keys.defaultTtlDays).toBe(90);
    expect(config.keys.rotationGraceSeconds).toBe(86_400);
  });

  it('fills propagation, tokens and rate-limit defaults', () => {
    expect(config.propagation.maxStalenessMs).toBe(30_000);
    expect(config.tokens).toEqual({ ttlSeconds: 3600, algorithm: 'EdDSA', issuer: 'keygate', audience: 'keygate', rotationDelaySeconds: 300 });
    expect(config.rateLimit.onStoreError).toBe('local');
  });

  it('offers the read-only and full-access presets', () => {
    expect(config.permissionPresets).toEqual({ 'read-only': ['*.read'], 'full-access': ['*'] });
  });

  it('gives an upstream a 10 s timeout and a route no inspection', () => {
    expect(config.upstreams.events!.timeoutMs).toBe(10_000);
    expect(config.routes[0]!.profileAttributes).toBe(false);
    expect(config.routes[0]!.keyTypes).toBeUndefined();
  });

  it('keeps the admin host default when only the admin port is given', () => {
    const c = ok(parseConfigText(yaml({ admin: `  listen: { port: 9999 }\n  tokens:\n    - { name: ops, token: "${TOKEN}" }` }), {}));
    expect(c.admin.listen).toEqual({ host: '127.0.0.1', port: 9999 });
  });

  it('accepts defaultTtlDays: null for keys that never expire', () => {
    const c = ok(parseConfigText(yaml({ extra: 'keys:\n  defaultTtlDays: null' }), {}));
    expect(c.keys.defaultTtlDays).toBeNull();
  });

  it('accepts workers: auto', () => {
    const c = ok(parseConfigText(yaml({ gateway: '  workers: auto' }), {}));
    expect(c.gateway.workers).toBe('auto');
  });

  it('warns about nothing for a config with real secrets', () => {
    const result = parseConfigText(yaml(), {});
    expect(result.ok && result.warnings).toEqual([]);
  });
});

describe('the Redis store settings', () => {
  const store = (lines: string[]): string => lines.map((l) => `  ${l}`).join('\n');

  it('names store.url when the redis driver has neither a url nor a cluster', () => {
    const errs = errors(parseConfigText(yaml({ store: store(['driver: redis']) }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^store\.url: /);
    expect(errs[0]).toContain('store.cluster');
  });

  it('names store.cluster when both a url and a cluster are given', () => {
    const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', 'url: redis://127.0.0.1:6379', 'cluster: ["redis://127.0.0.1:7000"]']) }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^store\.cluster: /);
  });

  it('accepts a cluster of seed nodes', () => {
    const config = ok(parseConfigText(yaml({ store: store(['driver: redis', 'cluster: ["redis://10.0.0.1:7000", "rediss://10.0.0.2:7000"]']) }), {}));
    expect(config.store.cluster).toEqual(['redis://10.0.0.1:7000', 'rediss://10.0.0.2:7000']);
    expect(config.store.url).toBeUndefined();
  });

  it('accepts rediss:// and credentials in the url', () => {
    const config = ok(parseConfigText(yaml({ store: store(['driver: redis', 'url: "rediss://user:pw@cache.internal:6380/0"']) }), {}));
    expect(config.store.url).toBe('rediss://user:pw@cache.internal:6380/0');
  });

  it('refuses a url that is not redis:// or rediss://, naming store.url', () => {
    const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', 'url: http://x']) }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^store\.url: /);
    expect(errs[0]).toContain('http://x');
  });

  it('refuses text that is no url at all, naming store.url', () => {
    const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', 'url: "not a url"']) }), {}));
    expect(errs.some((e) => e.startsWith('store.url: '))).toBe(true);
  });

  it('names a bad cluster seed by its index', () => {
    const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', 'cluster: ["redis://10.0.0.1:7000", "tcp://10.0.0.2:7000"]']) }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^store\.cluster\[1\]: /);
  });

  it('does not echo the password of a refused url', () => {
    for (const url of ['http://user:hunter2secret@cache.internal:6379', 'http://:hunter2secret@cache.internal']) {
      const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', `url: "${url}"`]) }), {}));
      expect(errs.some((e) => e.startsWith('store.url: ')), url).toBe(true);
      expect(errs.join('\n'), url).not.toContain('hunter2secret');
    }
    const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', 'cluster: ["ftp://admin:hunter2secret@10.0.0.1:7000"]']) }), {}));
    expect(errs[0]).toMatch(/^store\.cluster\[0\]: /);
    expect(errs.join('\n')).not.toContain('hunter2secret');
  });

  it('does not echo the password of a url missing its redis:// scheme', () => {
    const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', 'url: "default:hunter2secret@cache.internal:6379"']) }), {}));
    expect(errs.some((e) => e.startsWith('store.url: '))).toBe(true);
    expect(errs.join('\n')).not.toContain('hunter2secret');
  });

  it('does not echo a password taken from the environment', () => {
    const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', 'url: "http://app:${REDIS_PASSWORD}@cache.internal:6379"']) }), { REDIS_PASSWORD: 'hunter2secret' }));
    expect(errs.some((e) => e.startsWith('store.url: '))).toBe(true);
    expect(errs.join('\n')).not.toContain('hunter2secret');
  });

  it('refuses a keyPrefix with a brace, naming store.keyPrefix', () => {
    for (const prefix of ['kg{1}:', 'kg}:', '{kg']) {
      const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', 'url: redis://127.0.0.1:6379', `keyPrefix: "${prefix}"`]) }), {}));
      expect(errs, prefix).toHaveLength(1);
      expect(errs[0], prefix).toMatch(/^store\.keyPrefix: /);
    }
  });

  it('accepts a keyPrefix without braces', () => {
    const config = ok(parseConfigText(yaml({ store: store(['driver: redis', 'url: redis://127.0.0.1:6379', 'keyPrefix: "tenant-a:keygate:"']) }), {}));
    expect(config.store.keyPrefix).toBe('tenant-a:keygate:');
  });

  it('takes the url and timeoutMs from the environment, the timeout as a number', () => {
    const text = yaml({ store: store(['driver: redis', 'url: "${REDIS_URL}"', 'timeoutMs: "${REDIS_TIMEOUT_MS:-200}"']) });
    const config = ok(parseConfigText(text, { REDIS_URL: 'redis://cache.internal:6379', REDIS_TIMEOUT_MS: '350' }));
    expect(config.store.url).toBe('redis://cache.internal:6379');
    expect(config.store.timeoutMs).toBe(350);
    expect(ok(parseConfigText(text, { REDIS_URL: 'redis://cache.internal:6379' })).store.timeoutMs).toBe(200);
  });

  it('defaults timeoutMs to 200 and refuses one that is not a positive number, naming store.timeoutMs', () => {
    expect(ok(parseConfigText(yaml({ store: store(['driver: redis', 'url: redis://127.0.0.1:6379']) }), {})).store.timeoutMs).toBe(200);
    for (const bad of ['0', '"soon"', '20000']) {
      const errs = errors(parseConfigText(yaml({ store: store(['driver: redis', 'url: redis://127.0.0.1:6379', `timeoutMs: ${bad}`]) }), {}));
      expect(errs.some((e) => e.startsWith('store.timeoutMs: ')), bad).toBe(true);
    }
  });

  it('does not check Redis settings for the embedded driver', () => {
    expect(ok(parseConfigText(yaml({ store: store(['driver: embedded', 'keyPrefix: "{x}"']) }), {})).store.driver).toBe('embedded');
  });
});

describe('rate-limit defaults for new keys', () => {
  it('default to none for both key types', () => {
    expect(ok(parseConfigText(yaml(), {})).rateLimit.defaults).toEqual({ workspace: null, profile: null });
  });

  it('parse a default per key type', () => {
    const config = ok(parseConfigText(yaml({ extra: 'rateLimit:\n  defaults:\n    workspace: { limit: 10, windowSeconds: 1 }' }), {}));
    expect(config.rateLimit.defaults).toEqual({ workspace: { limit: 10, windowSeconds: 1 }, profile: null });
    const both = ok(parseConfigText(yaml({ extra: 'rateLimit:\n  defaults:\n    workspace: { limit: 10, windowSeconds: 1 }\n    profile: { limit: 2, windowSeconds: 60 }' }), {}));
    expect(both.rateLimit.defaults.profile).toEqual({ limit: 2, windowSeconds: 60 });
  });

  it('take their numbers from the environment', () => {
    const text = yaml({ extra: 'rateLimit:\n  defaults:\n    profile: { limit: "${PROFILE_LIMIT}", windowSeconds: "${PROFILE_WINDOW:-60}" }' });
    expect(ok(parseConfigText(text, { PROFILE_LIMIT: '25' })).rateLimit.defaults.profile).toEqual({ limit: 25, windowSeconds: 60 });
  });

  it('name the bad field', () => {
    let errs = errors(parseConfigText(yaml({ extra: 'rateLimit:\n  defaults:\n    workspace: { limit: -1, windowSeconds: 1 }' }), {}));
    expect(errs.some((e) => e.startsWith('rateLimit.defaults.workspace.limit: '))).toBe(true);
    errs = errors(parseConfigText(yaml({ extra: 'rateLimit:\n  defaults:\n    workspace: { limit: many, windowSeconds: 1 }' }), {}));
    expect(errs.some((e) => e.startsWith('rateLimit.defaults.workspace.limit: '))).toBe(true);
    errs = errors(parseConfigText(yaml({ extra: 'rateLimit:\n  defaults:\n    profile: { limit: 5, windowSeconds: 0 }' }), {}));
    expect(errs.some((e) => e.startsWith('rateLimit.defaults.profile.windowSeconds: '))).toBe(true);
    errs = errors(parseConfigText(yaml({ extra: 'rateLimit:\n  defaults:\n    workspace: { limit: 5 }' }), {}));
    expect(errs.some((e) => e.startsWith('rateLimit.defaults.workspace.windowSeconds: '))).toBe(true);
    errs = errors(parseConfigText(yaml({ extra: 'rateLimit:\n  defaults:\n    service: { limit: 5, windowSeconds: 1 }' }), {}));
    expect(errs).toContain('rateLimit.defaults.service: unknown field');
  });

  it('accept onStoreError local, allow and deny, and nothing else', () => {
    for (const mode of ['local', 'allow', 'deny']) {
      expect(ok(parseConfigText(yaml({ extra: `rateLimit:\n  onStoreError: ${mode}` }), {})).rateLimit.onStoreError).toBe(mode);
    }
    const errs = errors(parseConfigText(yaml({ extra: 'rateLimit:\n  onStoreError: ignore' }), {}));
    expect(errs.some((e) => e.startsWith('rateLimit.onStoreError: '))).toBe(true);
  });
});

describe('secrets.signingKeyEncryptionKey', () => {
  it('is optional, interpolated from the environment, and refused under 32 characters naming the path', () => {
    expect(ok(parseConfigText(yaml(), {})).secrets.signingKeyEncryptionKey).toBeUndefined();
    const secrets = `  pepper: "${PEPPER}"\n  signingKeyEncryptionKey: "\${KEYGATE_SIGNING_KEY_ENCRYPTION_KEY}"`;
    const key = 'k'.repeat(32);
    expect(ok(parseConfigText(yaml({ secrets }), { KEYGATE_SIGNING_KEY_ENCRYPTION_KEY: key })).secrets.signingKeyEncryptionKey).toBe(key);
    expect(errors(parseConfigText(yaml({ secrets }), { KEYGATE_SIGNING_KEY_ENCRYPTION_KEY: 'k'.repeat(31) })).join('\n'))
      .toMatch(/secrets\.signingKeyEncryptionKey: must be at least 32 characters/);
  });
});

describe('key hygiene settings', () => {
  it('defaults: no inactivity expiry, a 90-day rotation reminder, 1 000 activity records a key, leaks disable', () => {
    const config = ok(parseConfigText(yaml(), {}));
    expect(config.keys).toMatchObject({ inactivityDays: null, rotationReminderDays: 90, activityPerKey: 1_000 });
    expect(config.leaks).toEqual({ action: 'disable', github: { publicKeys: [], keysCacheSeconds: 3_600 } });
  });

  it('takes GitHub\'s secret scanning keys as PEM, and a URL to fetch them from', () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const text = yaml({ extra: `keys: { inactivityDays: "30" }\nleaks:\n  action: notify\n  github:\n    keysUrl: https://api.github.com/meta/public_keys/secret_scanning\n    publicKeys:\n      - id: abc\n        key: |\n${pem.trim().split('\n').map((l) => `          ${l}`).join('\n')}` });
    const config = ok(parseConfigText(text, {}));
    expect(config.keys.inactivityDays).toBe(30);
    expect(config.leaks.action).toBe('notify');
    expect(config.leaks.github.publicKeys[0]!.id).toBe('abc');
    expect(config.leaks.github.keysUrl).toBe('https://api.github.com/meta/public_keys/secret_scanning');
  });

  it('names a key that is no PEM, an unknown action and a bad number by their paths', () => {
    const errs = errors(parseConfigText(yaml({ extra: 'keys: { activityPerKey: -1, inactivityDays: 0 }\nleaks: { action: revoke, github: { publicKeys: [{ id: a, key: "not a key" }], keysUrl: "ftp://x" } }' }), {}));
    expect(errs.some((e) => e.startsWith('keys.activityPerKey: '))).toBe(true);
    expect(errs.some((e) => e.startsWith('keys.inactivityDays: '))).toBe(true);
    expect(errs.some((e) => e.startsWith('leaks.action: '))).toBe(true);
    expect(errs.some((e) => e.startsWith('leaks.github.publicKeys[0].key: ') && e.includes('PEM'))).toBe(true);
    expect(errs.some((e) => e.startsWith('leaks.github.keysUrl: '))).toBe(true);
  });

  it('reserves /auth/secret-scanning for the gateway\'s own endpoint', () => {
    const errs = errors(parseConfigText(yaml({ routes: '  - { name: x, method: POST, path: /auth/secret-scanning, upstream: events, permission: events.create }' }), {}));
    expect(errs).toEqual(['routes[0].path: "/auth/secret-scanning" is reserved for keygate\'s own endpoint']);
  });
});
