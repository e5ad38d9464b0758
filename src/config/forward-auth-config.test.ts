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

describe('decideWithoutBody', () => {
  it('is accepted on a route with a body policy, and refused, naming it, on one without', () => {
    const events = '  - { name: r, method: POST, path: /v1/events, upstream: events, permission: events.create, events: { field: action }, decideWithoutBody: true }';
    expect(ok(parseConfigText(yaml({ routes: events }), {})).routes[0]!.decideWithoutBody).toBe(true);
    const plain = '  - { name: r, method: GET, path: /v1/events, upstream: events, permission: events.read, decideWithoutBody: true }';
    expect(errors(parseConfigText(yaml({ routes: plain }), {}))).toEqual(['routes[0].decideWithoutBody: the route has no body policy (events or profileAttributes) to leave out of its decisions']);
  });
});
