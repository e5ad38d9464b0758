import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../config/schema.js';
import { RouteTable } from './route-table.js';

interface TestRoute { name: string; config: RouteConfig }

function route(name: string, method: string, path: string): TestRoute {
  return { name, config: { name, method, path, upstream: 'u', permission: 'events.create' } as RouteConfig };
}

describe('RouteTable', () => {
  it('matches a literal route with no params', () => {
    const r = route('events', 'POST', '/v1/events');
    const table = new RouteTable([r]);
    expect(table.match('POST', '/v1/events')).toEqual({ route: r, params: {} });
  });

  it('does not match a literal route against a longer path', () => {
    const table = new RouteTable([route('events', 'POST', '/v1/events')]);
    expect(table.match('POST', '/v1/events/x')).toBeNull();
  });

  it('does not match a literal route against a path with a trailing slash', () => {
    const table = new RouteTable([route('events', 'POST', '/v1/events')]);
    expect(table.match('POST', '/v1/events/')).toBeNull();
  });

  it('answers null for an unknown path', () => {
    const table = new RouteTable([route('events', 'POST', '/v1/events')]);
    expect(table.match('POST', '/v2/other')).toBeNull();
  });

  it('answers null when the method differs from the route', () => {
    const table = new RouteTable([route('events', 'POST', '/v1/events')]);
    expect(table.match('GET', '/v1/events')).toBeNull();
  });

  it('matches a HEAD request to the GET route of the same path, literal, parameterised or wildcard (regression)', () => {
    const list = route('list', 'GET', '/v1/events');
    const one = route('one', 'GET', '/v1/profiles/{id}');
    const files = route('files', 'GET', '/v1/files/*');
    const table = new RouteTable([route('send', 'POST', '/v1/events'), list, one, files]);
    expect(table.match('HEAD', '/v1/events')).toEqual({ route: list, params: {} });
    expect(table.match('HEAD', '/v1/profiles/42')).toEqual({ route: one, params: { id: '42' } });
    expect(table.match('HEAD', '/v1/files/a/b')).toEqual({ route: files, params: {} });
  });

  it('matches a HEAD request to a declared HEAD route before the GET one, and to nothing where no GET route matches', () => {
    const get = route('get', 'GET', '/v1/events');
    const head = route('head', 'HEAD', '/v1/events');
    const headParam = route('head-one', 'HEAD', '/v1/profiles/{id}');
    const getParam = route('get-one', 'GET', '/v1/profiles/{id}');
    const table = new RouteTable([get, head, getParam, headParam, route('send', 'POST', '/v1/send')]);
    expect(table.match('HEAD', '/v1/events')?.route).toBe(head);
    expect(table.match('HEAD', '/v1/profiles/7')?.route).toBe(headParam);
    expect(table.match('HEAD', '/v1/send')).toBeNull();
    expect(table.match('HEAD', '/v1/other')).toBeNull();
  });

  it('answers null for a param route when the method differs', () => {
    const table = new RouteTable([route('profile', 'GET', '/v1/profiles/{id}')]);
    expect(table.match('DELETE', '/v1/profiles/42')).toBeNull();
  });

  it('captures a {param} segment raw, without decoding it', () => {
    const r = route('profile', 'GET', '/v1/profiles/{id}');
    const table = new RouteTable([r]);
    expect(table.match('GET', '/v1/profiles/user%2042')).toEqual({ route: r, params: { id: 'user%2042' } });
  });

  it('captures several params by name', () => {
    const r = route('attr', 'GET', '/v1/profiles/{id}/attributes/{attr}');
    const table = new RouteTable([r]);
    expect(table.match('GET', '/v1/profiles/p1/attributes/email')?.params).toEqual({ id: 'p1', attr: 'email' });
  });

  it('does not let an empty segment satisfy a param', () => {
    const table = new RouteTable([route('profile', 'GET', '/v1/profiles/{id}')]);
    expect(table.match('GET', '/v1/profiles/')).toBeNull();
  });

  it('does not match a param route against a path with more segments', () => {
    const table = new RouteTable([route('profile', 'GET', '/v1/profiles/{id}')]);
    expect(table.match('GET', '/v1/profiles/42/extra')).toBeNull();
  });

  it('requires the literal segments around a param to match', () => {
    const table = new RouteTable([route('attr', 'GET', '/v1/profiles/{id}/attributes')]);
    expect(table.match('GET', '/v1/profiles/42/other')).toBeNull();
  });

  it('matches a trailing wildcard route against deeper paths', () => {
    const r = route('proxy', 'GET', '/v1/files/*');
    const table = new RouteTable([r]);
    expect(table.match('GET', '/v1/files/a/b/c')?.route).toBe(r);
  });

  it('matches a trailing wildcard route against its bare prefix', () => {
    const r = route('proxy', 'GET', '/v1/files/*');
    const table = new RouteTable([r]);
    expect(table.match('GET', '/v1/files')?.route).toBe(r);
  });

  it('does not match a trailing wildcard route against a sibling prefix', () => {
    const table = new RouteTable([route('proxy', 'GET', '/v1/files/*')]);
    expect(table.match('GET', '/v1/filesystem')).toBeNull();
  });

  it('matches a bare /* route against any path', () => {
    const r = route('all', 'GET', '/*');
    const table = new RouteTable([r]);
    expect(table.match('GET', '/anything/at/all')?.route).toBe(r);
  });

  it('prefers a literal route over a param route listed before it', () => {
    const param = route('byId', 'GET', '/v1/profiles/{id}');
    const literal = route('me', 'GET', '/v1/profiles/me');
    const table = new RouteTable([param, literal]);
    expect(table.match('GET', '/v1/profiles/me')).toEqual({ route: literal, params: {} });
    expect(table.match('GET', '/v1/profiles/42')?.route).toBe(param);
  });

  it('tries param routes in config order', () => {
    const first = route('first', 'GET', '/v1/{a}/x');
    const second = route('second', 'GET', '/v1/{b}/{c}');
    const table = new RouteTable([first, second]);
    expect(table.match('GET', '/v1/p/x')).toEqual({ route: first, params: { a: 'p' } });
    expect(table.match('GET', '/v1/p/y')).toEqual({ route: second, params: { b: 'p', c: 'y' } });
  });

  it('tries param routes in config order when the order is reversed', () => {
    const first = route('first', 'GET', '/v1/{b}/{c}');
    const second = route('second', 'GET', '/v1/{a}/x');
    const table = new RouteTable([first, second]);
    expect(table.match('GET', '/v1/p/x')?.route).toBe(first);
  });

  it('keeps routes of different methods on the same path apart', () => {
    const get = route('get', 'GET', '/v1/events');
    const post = route('post', 'POST', '/v1/events');
    const table = new RouteTable([get, post]);
    expect(table.match('GET', '/v1/events')?.route).toBe(get);
    expect(table.match('POST', '/v1/events')?.route).toBe(post);
  });
});
