import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errors, ok, PEPPER, TOKEN, yaml } from '../../test/support/config-text.js';
import { DEV_ADMIN_TOKEN, DEV_PEPPER, parseConfigText } from './load.js';
import { interpolate } from './interpolate.js';

const SHIPPED = readFileSync(new URL('../../config/gateway.yaml', import.meta.url), 'utf8');

describe('the shipped config/gateway.yaml', () => {
  it('loads with an empty environment', () => {
    const config = ok(parseConfigText(SHIPPED, {}));
    expect(config.store.driver).toBe('embedded');
    expect(config.store.path).toBe('./data');
    expect(config.gateway.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.admin.listen).toEqual({ host: '127.0.0.1', port: 8081 });
    expect(config.routes.map((r) => r.name)).toEqual(['send-events', 'list-events', 'get-profile', 'update-profile', 'export-catalog']);
  });

  it('falls back to the development pepper and admin token, and warns about both', () => {
    const result = parseConfigText(SHIPPED, {});
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.config.secrets.pepper).toBe(DEV_PEPPER);
    expect(result.config.admin.tokens[0]!.token).toBe(DEV_ADMIN_TOKEN);
    expect(result.warnings.some((w) => w.startsWith('secrets.pepper:'))).toBe(true);
    expect(result.warnings.some((w) => w.startsWith('admin.tokens[0].token:'))).toBe(true);
  });

  it('refuses the development pepper and admin token when NODE_ENV=production', () => {
    const errs = errors(parseConfigText(SHIPPED, { NODE_ENV: 'production' }));
    expect(errs.some((e) => e.startsWith('secrets.pepper:'))).toBe(true);
    expect(errs.some((e) => e.startsWith('admin.tokens[0].token:'))).toBe(true);
  });

  it('refuses the development pepper alone in production when a real admin token is set', () => {
    const errs = errors(parseConfigText(SHIPPED, { NODE_ENV: 'production', KEYGATE_ADMIN_TOKEN: TOKEN }));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^secrets\.pepper: /);
  });

  it('loads without development-value warnings in production when the pepper and token come from the environment', () => {
    const result = parseConfigText(SHIPPED, { NODE_ENV: 'production', KEYGATE_PEPPER: PEPPER, KEYGATE_ADMIN_TOKEN: TOKEN });
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.warnings).toEqual([]);
    expect(result.config.secrets.pepper).toBe(PEPPER);
    expect(result.config.admin.tokens[0]!.token).toBe(TOKEN);
  });

  it('takes the ports and data path from the environment', () => {
    const config = ok(parseConfigText(SHIPPED, { KEYGATE_PORT: '18080', KEYGATE_ADMIN_PORT: '18081', KEYGATE_DATA: '/var/lib/keygate' }));
    expect(config.gateway.listen.port).toBe(18080);
    expect(config.admin.listen.port).toBe(18081);
    expect(config.store.path).toBe('/var/lib/keygate');
  });
});

describe('interpolation', () => {
  it('replaces ${VAR} with the variable when it is set', () => {
    const config = ok(parseConfigText(yaml({ secrets: '  pepper: "${PEP}"' }), { PEP: PEPPER }));
    expect(config.secrets.pepper).toBe(PEPPER);
  });

  it('replaces ${VAR} with nothing when it is unset, which the pepper check then names', () => {
    const errs = errors(parseConfigText(yaml({ secrets: '  pepper: "${PEP}"' }), {}));
    expect(errs.some((e) => e.startsWith('secrets.pepper:'))).toBe(true);
  });

  it('uses the default of ${VAR:-default} when the variable is unset', () => {
    const config = ok(parseConfigText(yaml({ secrets: `  pepper: "\${PEP:-${PEPPER}}"` }), {}));
    expect(config.secrets.pepper).toBe(PEPPER);
  });

  it('uses the default of ${VAR:-default} when the variable is set but empty', () => {
    const config = ok(parseConfigText(yaml({ secrets: `  pepper: "\${PEP:-${PEPPER}}"` }), { PEP: '' }));
    expect(config.secrets.pepper).toBe(PEPPER);
  });

  it('prefers the variable over the default of ${VAR:-default} when it is set', () => {
    const config = ok(parseConfigText(yaml({ secrets: '  pepper: "${PEP:-a-default-pepper-value}"' }), { PEP: PEPPER }));
    expect(config.secrets.pepper).toBe(PEPPER);
  });

  it('interpolates inside a longer string and several placeholders in one value', () => {
    const config = ok(parseConfigText(yaml({ secrets: '  pepper: "pre-${A}-mid-${B:-bee}-post"' }), { A: 'aaaa' }));
    expect(config.secrets.pepper).toBe('pre-aaaa-mid-bee-post');
  });

  it('writes $${ as a literal ${', () => {
    const config = ok(parseConfigText(yaml({ secrets: '  pepper: "$${NOT_A_VAR}-literal-pepper"' }), { NOT_A_VAR: 'x' }));
    expect(config.secrets.pepper).toBe('${NOT_A_VAR}-literal-pepper');
  });

  it('reads "$$${{" as the literal "$${{" instead of calling it a malformed placeholder (regression)', () => {
    expect(interpolate({ v: '$$${{', w: 'a$$${}' }, {})).toEqual({ value: { v: '$${{', w: 'a$${}' }, errors: [] });
  });

  it('does not interpolate a ${ that arrives inside a variable value', () => {
    const config = ok(parseConfigText(yaml({ secrets: '  pepper: "${PEP}"' }), { PEP: '${OTHER}-long-enough-value', OTHER: 'boom' }));
    expect(config.secrets.pepper).toBe('${OTHER}-long-enough-value');
  });

  it('keeps a variable holding YAML syntax as a plain string', () => {
    const config = ok(parseConfigText(yaml({ secrets: '  pepper: "${PEP}"' }), { PEP: 'a: [b, c]\nd: {e: f}' }));
    expect(config.secrets.pepper).toBe('a: [b, c]\nd: {e: f}');
  });

  it('reads a numeric field from an interpolated default: port "${P:-8080}" is the number 8080', () => {
    const config = ok(parseConfigText(yaml({ gateway: '  listen: { port: "${P:-8080}" }' }), {}));
    expect(config.gateway.listen.port).toBe(8080);
    expect(typeof config.gateway.listen.port).toBe('number');
  });

  it('reads a numeric field from a set variable', () => {
    const config = ok(parseConfigText(yaml({ gateway: '  listen: { port: "${P:-8080}" }\n  maxBodyBytes: "${MAX}"' }), { P: '9090', MAX: '2048' }));
    expect(config.gateway.listen.port).toBe(9090);
    expect(config.gateway.maxBodyBytes).toBe(2048);
  });

  it('refuses a numeric field whose variable is not a number, naming the field', () => {
    const errs = errors(parseConfigText(yaml({ gateway: '  listen: { port: "${P}" }' }), { P: 'eighty' }));
    expect(errs.some((e) => e.startsWith('gateway.listen.port:'))).toBe(true);
  });

  it('says a non-numeric port is not a number rather than that it is missing', () => {
    const errs = errors(parseConfigText(yaml({ gateway: '  listen: { port: "${P}" }' }), { P: 'eighty' }));
    const portErrors = errs.filter((e) => e.startsWith('gateway.listen.port:'));
    expect(portErrors).toHaveLength(1);
    expect(portErrors[0]).not.toMatch(/is required/);
    expect(portErrors[0]).toMatch(/number/);
  });

  it('reads a boolean field from an interpolated value', () => {
    const routes = '  - { name: r, method: PATCH, path: "/v1/p/{id}", upstream: events, permission: profiles.update, profileAttributes: "${ATTRS:-true}" }';
    const config = ok(parseConfigText(yaml({ routes }), {}));
    expect(config.routes[0]!.profileAttributes).toBe(true);
  });

  it('refuses a malformed placeholder, naming the field', () => {
    const errs = errors(parseConfigText(yaml({ secrets: '  pepper: "${PEP-long-enough-pepper"' }), { PEP: 'x' }));
    expect(errs).toEqual(['secrets.pepper: malformed ${...} placeholder']);
  });

  it('names array positions in interpolation errors', () => {
    const result = interpolate({ a: [{ b: 'ok' }, { b: '${oops' }] }, {});
    expect(result.errors).toEqual(['a[1].b: malformed ${...} placeholder']);
  });

  it('leaves numbers, booleans and null untouched', () => {
    const result = interpolate({ n: 5, t: true, z: null }, {});
    expect(result).toEqual({ value: { n: 5, t: true, z: null }, errors: [] });
  });
});

describe('validation messages name the path in the file', () => {
  it('names an unknown key as "gateway.foo: unknown field"', () => {
    const errs = errors(parseConfigText(yaml({ gateway: '  foo: 1' }), {}));
    expect(errs).toContain('gateway.foo: unknown field');
  });

  it('names an unknown top-level key', () => {
    const errs = errors(parseConfigText(yaml({ extra: 'gatway: {}' }), {}));
    expect(errs).toContain('gatway: unknown field');
  });

  it('names a "__proto__" key as an unknown field instead of reading the route through it (regression)', () => {
    const routes = '  - { name: a, method: GET, path: /a, upstream: events, __proto__: { permission: a.read } }';
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs).toContain('routes[0].__proto__: unknown field');
  });

  it('names an unknown key inside a route by its index', () => {
    const routes = '  - { name: a, method: GET, path: /a, upstream: events, permission: a.read }\n  - { name: b, method: GET, path: /b, upstream: events, permission: b.read, timeout: 5 }';
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs).toContain('routes[1].timeout: unknown field');
  });

  it('names a route that points at an unknown upstream exactly, with its index', () => {
    const routes = [
      '  - { name: a, method: GET, path: /v1/a, upstream: events, permission: a.read }',
      '  - { name: b, method: POST, path: /v1/events, upstream: evnts, permission: events.create }',
    ].join('\n');
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs).toEqual(['routes[1].upstream: unknown upstream "evnts"']);
  });

  it('names an unknown upstreamTest', () => {
    const routes = '  - { name: a, method: GET, path: /v1/a, upstream: events, upstreamTest: evnts-test, permission: a.read }';
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs).toEqual(['routes[0].upstreamTest: unknown upstream "evnts-test"']);
  });

  it('refuses a duplicate route name, naming the second route', () => {
    const routes = [
      '  - { name: same, method: GET, path: /v1/a, upstream: events, permission: a.read }',
      '  - { name: same, method: GET, path: /v1/b, upstream: events, permission: b.read }',
    ].join('\n');
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^routes\[1\]\.name: /);
    expect(errs[0]).toContain('"same"');
  });

  it('refuses two routes with the same method and path', () => {
    const routes = [
      '  - { name: a, method: GET, path: /v1/a, upstream: events, permission: a.read }',
      '  - { name: b, method: GET, path: /v1/a, upstream: events, permission: b.read }',
    ].join('\n');
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^routes\[1\]/);
    expect(errs[0]).toContain('duplicate');
  });

  it('refuses /a/{x} and /a/{y} under one method as duplicates', () => {
    const routes = [
      '  - { name: a, method: GET, path: "/a/{x}", upstream: events, permission: a.read }',
      '  - { name: b, method: GET, path: "/a/{y}", upstream: events, permission: b.read }',
    ].join('\n');
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^routes\[1\]/);
  });

  it('accepts the same path under two different methods', () => {
    const routes = [
      '  - { name: a, method: GET, path: "/a/{x}", upstream: events, permission: a.read }',
      '  - { name: b, method: PATCH, path: "/a/{x}", upstream: events, permission: a.update }',
    ].join('\n');
    expect(ok(parseConfigText(yaml({ routes }), {})).routes).toHaveLength(2);
  });

  it('names a bad trustedProxies CIDR by its index', () => {
    const errs = errors(parseConfigText(yaml({ gateway: '  trustedProxies: ["010.0.0.1", "10.0.0.0/8"]' }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^gateway\.trustedProxies\[0\]: /);
  });

  it('names the second trustedProxies entry when that one is bad', () => {
    const errs = errors(parseConfigText(yaml({ gateway: '  trustedProxies: ["10.0.0.0/8", "10.0.0.0/33"]' }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^gateway\.trustedProxies\[1\]: /);
  });

  it('names admin.tokens when the admin section has no tokens', () => {
    const errs = errors(parseConfigText(yaml({ admin: '  listen: { port: 8081 }' }), {}));
    expect(errs.some((e) => e.startsWith('admin.tokens:'))).toBe(true);
  });

  it('names admin.tokens when the token list is empty', () => {
    const errs = errors(parseConfigText(yaml({ admin: '  tokens: []' }), {}));
    expect(errs.some((e) => e.startsWith('admin.tokens:'))).toBe(true);
  });

  it('takes scopes and workspaces on an admin token, and names an unknown scope by its path', () => {
    const config = ok(parseConfigText(yaml({ admin: `  tokens:\n    - { name: ops, token: "${TOKEN}", scopes: ["keys:read", "audit:read"], workspaces: ["3f0c0000-0000-4000-8000-000000000000"] }` }), {}));
    expect(config.admin.tokens[0]).toMatchObject({ scopes: ['keys:read', 'audit:read'], workspaces: ['3f0c0000-0000-4000-8000-000000000000'] });
    const errs = errors(parseConfigText(yaml({ admin: `  tokens:\n    - { name: ops, token: "${TOKEN}", scopes: ["keys:read", "keys:delete"] }` }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^admin\.tokens\[0\]\.scopes\[1\]: /);
  });

  it('names a short admin token by its index', () => {
    const errs = errors(parseConfigText(yaml({ admin: `  tokens:\n    - { name: ops, token: "${TOKEN}" }\n    - { name: ci, token: short }` }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^admin\.tokens\[1\]\.token: /);
  });

  it('names an admin token whose environment variable is unset', () => {
    const errs = errors(parseConfigText(yaml({ admin: '  tokens:\n    - { name: ops, token: "${KEYGATE_ADMIN_TOKEN}" }' }), {}));
    expect(errs.some((e) => e.startsWith('admin.tokens[0].token:'))).toBe(true);
  });

  it('refuses the same admin token listed twice', () => {
    const errs = errors(parseConfigText(yaml({ admin: `  tokens:\n    - { name: a, token: "${TOKEN}" }\n    - { name: b, token: "${TOKEN}" }` }), {}));
    expect(errs.some((e) => e.startsWith('admin.tokens[1].token:'))).toBe(true);
  });

  it('names secrets.pepper when the pepper is missing', () => {
    const errs = errors(parseConfigText(yaml({ secrets: '  {}' }), {}));
    expect(errs.some((e) => e.startsWith('secrets.pepper:'))).toBe(true);
  });

  it('names secrets.pepper when the pepper is too short', () => {
    const errs = errors(parseConfigText(yaml({ secrets: '  pepper: short' }), {}));
    expect(errs.some((e) => e.startsWith('secrets.pepper:'))).toBe(true);
  });

  it('refuses a profileScope that is not a parameter of the path', () => {
    const routes = '  - { name: p, method: GET, path: "/v1/profiles/{profileId}", upstream: events, permission: profiles.read, profileScope: userId }';
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^routes\[0\]\.profileScope: /);
    expect(errs[0]).toContain('userId');
  });

  it('accepts a profileScope that names a path parameter', () => {
    const routes = '  - { name: p, method: GET, path: "/v1/profiles/{profileId}", upstream: events, permission: profiles.read, profileScope: profileId }';
    expect(ok(parseConfigText(yaml({ routes }), {})).routes[0]!.profileScope).toBe('profileId');
  });

  it('requires store.url when the driver is redis', () => {
    const errs = errors(parseConfigText(yaml({ store: '  driver: redis' }), {}));
    expect(errs.some((e) => e.startsWith('store.url:'))).toBe(true);
  });

  it('accepts the redis driver with a url', () => {
    const config = ok(parseConfigText(yaml({ store: '  driver: redis\n  url: redis://127.0.0.1:6379' }), {}));
    expect(config.store.driver).toBe('redis');
    expect(config.store.keyPrefix).toBe('keygate:');
  });

  it('refuses an unknown store driver, naming store.driver', () => {
    const errs = errors(parseConfigText(yaml({ store: '  driver: postgres' }), {}));
    expect(errs.some((e) => e.startsWith('store.driver:'))).toBe(true);
  });

  it('refuses invalid YAML', () => {
    const errs = errors(parseConfigText('gateway: [unclosed\nadmin: {', {}));
    expect(errs.length).toBeGreaterThan(0);
    expect(errs[0]).toMatch(/^YAML: /);
  });

  it('refuses duplicate YAML keys', () => {
    const errs = errors(parseConfigText(yaml({ extra: `secrets:\n  pepper: "${PEPPER}"` }), {}));
    expect(errs.length).toBeGreaterThan(0);
    expect(errs[0]).toMatch(/^YAML: /);
  });

  it('refuses duplicate keys inside a mapping', () => {
    const errs = errors(parseConfigText(yaml({ secrets: `  pepper: "${PEPPER}"\n  pepper: "${PEPPER}x"` }), {}));
    expect(errs[0]).toMatch(/^YAML: /);
  });

  it('refuses an empty file, naming the missing sections', () => {
    const errs = errors(parseConfigText('', {}));
    expect(errs.some((e) => e.startsWith('admin'))).toBe(true);
    expect(errs.some((e) => e.startsWith('secrets'))).toBe(true);
  });

  it.each([
    ['v1/x', /must start with "\/"/],
    ['/a/../b', /dot segments/],
    ['/a/./b', /dot segments/],
    ['/a/*/b', /"\*"/],
    ['/a//b', /empty segments/],
    ['/a/{x}/{x}', /twice/],
    ['/a/{x', /"\{x"/],
    ['/a/b?c=d', /"b\?c=d"/],
  ])('refuses the route path %j, naming routes[0].path', (path, reason) => {
    const routes = `  - { name: r, method: GET, path: "${path}", upstream: events, permission: a.read }`;
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^routes\[0\]\.path: /);
    expect(errs[0]).toMatch(reason);
  });

  it.each([['/'], ['/*'], ['/v1/catalog/*'], ['/v1/profiles/{profileId}/tags'], ['/v1/a-b_c.d~e']])('accepts the route path %j', (path) => {
    const routes = `  - { name: r, method: GET, path: "${path}", upstream: events, permission: a.read }`;
    expect(ok(parseConfigText(yaml({ routes }), {})).routes[0]!.path).toBe(path);
  });

  it('refuses a route permission that is a pattern rather than a name', () => {
    const routes = '  - { name: r, method: GET, path: /a, upstream: events, permission: "events.*" }';
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs.some((e) => e.startsWith('routes[0].permission:'))).toBe(true);
  });

  it('refuses an unknown HTTP method, naming routes[0].method', () => {
    const routes = '  - { name: r, method: FETCH, path: /a, upstream: events, permission: a.read }';
    const errs = errors(parseConfigText(yaml({ routes }), {}));
    expect(errs.some((e) => e.startsWith('routes[0].method:'))).toBe(true);
  });

  it('refuses an upstream URL that is not http(s), naming it', () => {
    const errs = errors(parseConfigText(yaml({ upstreams: '  events: { url: "ftp://example.com" }' }), {}));
    expect(errs.some((e) => e.startsWith('upstreams.events.url:'))).toBe(true);
  });

  it('refuses a malformed permission in a preset, naming its position', () => {
    const errs = errors(parseConfigText(yaml({ extra: 'permissionPresets:\n  broken: ["*.*"]' }), {}));
    expect(errs.some((e) => e.startsWith('permissionPresets.broken[0]:'))).toBe(true);
  });

  it('refuses a preset naming a permission no route requires, naming its position (regression: it passed)', () => {
    const errs = errors(parseConfigText(yaml({ extra: 'permissionPresets:\n  read-only: ["events.create", "events.reed"]' }), {}));
    expect(errs).toEqual(['permissionPresets.read-only[1]: unknown permission "events.reed"']);
  });

  it('refuses a preset pattern that matches no route permission: an unknown module, or an action no route has (regression: they passed)', () => {
    const errs = errors(parseConfigText(yaml({ extra: 'permissionPresets:\n  writers: ["billing.*", "*.write", "*"]' }), {}));
    expect(errs).toEqual([
      'permissionPresets.writers[0]: unknown permission module in "billing.*"',
      'permissionPresets.writers[1]: no route permission matches "*.write"',
    ]);
  });

  it('accepts declared presets whose names and patterns match route permissions', () => {
    const config = ok(parseConfigText(yaml({ extra: 'permissionPresets:\n  senders: ["events.create", "events.*", "*.create", "*"]' }), {}));
    expect(config.permissionPresets).toEqual({ senders: ['events.create', 'events.*', '*.create', '*'] });
  });

  it('keeps the built-in presets when the file declares none, even with no ".read" route for read-only to match', () => {
    const config = ok(parseConfigText(yaml(), {}));
    expect(config.routes.map((r) => r.permission)).toEqual(['events.create']);
    expect(config.permissionPresets).toEqual({ 'read-only': ['*.read'], 'full-access': ['*'] });
  });
});
