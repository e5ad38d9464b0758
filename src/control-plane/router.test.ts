import { describe, expect, it } from 'vitest';
import { Router } from './router.js';

function router(): Router<string> {
  return new Router<string>()
    .add('GET', '/v1/keys', 'list-keys')
    .add('POST', '/v1/keys', 'create-key')
    .add('GET', '/v1/keys/:id', 'get-key')
    .add('PATCH', '/v1/keys/:id', 'update-key')
    .add('DELETE', '/v1/keys/:id', 'delete-key')
    .add('POST', '/v1/keys/:id/rotate', 'rotate-key')
    .add('GET', '/healthz', 'health');
}

describe('Router', () => {
  it('finds the handler for a literal path and method', () => {
    expect(router().match('GET', '/v1/keys')).toEqual({ kind: 'found', handler: 'list-keys', params: {}, template: '/v1/keys' });
    expect(router().match('POST', '/v1/keys')).toMatchObject({ kind: 'found', handler: 'create-key' });
  });

  it('binds a :name segment as a parameter', () => {
    expect(router().match('GET', '/v1/keys/key_abc')).toEqual({
      kind: 'found',
      handler: 'get-key',
      params: { id: 'key_abc' },
      template: '/v1/keys/:id',
    });
    expect(router().match('POST', '/v1/keys/key_abc/rotate')).toMatchObject({ handler: 'rotate-key', params: { id: 'key_abc' } });
  });

  it('percent-decodes parameters', () => {
    expect(router().match('GET', '/v1/keys/a%20b%2Fc')).toMatchObject({ kind: 'found', params: { id: 'a b/c' } });
  });

  it('does not match a parameter that is not valid percent-encoding', () => {
    expect(router().match('GET', '/v1/keys/%E0%A4%A')).toEqual({ kind: 'not-found' });
  });

  it('does not match an empty parameter segment', () => {
    expect(router().match('GET', '/v1/keys/')).toEqual({ kind: 'not-found' });
    expect(router().match('POST', '/v1/keys//rotate')).toEqual({ kind: 'not-found' });
  });

  it('answers method-not-allowed with every method the path accepts', () => {
    const m = router().match('PUT', '/v1/keys/key_abc');
    expect(m.kind).toBe('method-not-allowed');
    if (m.kind !== 'method-not-allowed') return;
    expect([...m.allowed].sort()).toEqual(['DELETE', 'GET', 'PATCH']);
    expect(m.template).toBe('/v1/keys/:id');
  });

  it('answers not-found for a path no route has', () => {
    expect(router().match('GET', '/v1/nothing')).toEqual({ kind: 'not-found' });
    expect(router().match('GET', '/')).toEqual({ kind: 'not-found' });
  });

  it('matches literal segments exactly: case, trailing slash and extra segments matter', () => {
    expect(router().match('GET', '/V1/keys')).toEqual({ kind: 'not-found' });
    expect(router().match('GET', '/v1/keys/')).toEqual({ kind: 'not-found' });
    expect(router().match('GET', '/v1/keys/key_abc/extra')).toEqual({ kind: 'not-found' });
    expect(router().match('GET', '/v1')).toEqual({ kind: 'not-found' });
  });

  it('prefers the first route added when two could match', () => {
    const r = new Router<string>().add('GET', '/v1/keys/:id', 'param').add('GET', '/v1/keys/special', 'literal');
    expect(r.match('GET', '/v1/keys/special')).toMatchObject({ handler: 'param', params: { id: 'special' } });
  });
});
