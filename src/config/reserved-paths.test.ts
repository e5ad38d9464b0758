import { describe, expect, it } from 'vitest';
import { errors, ok, yaml } from '../../test/support/config-text.js';
import { parseConfigText } from './load.js';

const route = (path: string): string => `  - { name: r, method: GET, path: "${path}", upstream: events, permission: events.read }`;

describe('the forward-auth and verify endpoints are reserved paths', () => {
  it.each(['/auth/forward', '/auth/verify', '/auth/envoy', '/auth/envoy/v1/events', '/auth/envoy/*'])('refuses a route at %s, naming its path', (path) => {
    expect(errors(parseConfigText(yaml({ routes: route(path) }), {}))).toEqual([`routes[0].path: "${path}" is reserved for keygate's own endpoint`]);
  });

  it('accepts paths that only start like them', () => {
    expect(ok(parseConfigText(yaml({ routes: route('/auth/envoyx') }), {})).routes).toHaveLength(1);
    expect(ok(parseConfigText(yaml({ routes: route('/auth/forwarded') }), {})).routes).toHaveLength(1);
  });
});
