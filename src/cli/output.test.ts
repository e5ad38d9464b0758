import { describe, expect, it } from 'vitest';
import { col, render } from './output.js';

describe('CLI output', () => {
  const items = [
    { id: 'a1', name: 'first', tags: ['x', 'y'], limit: null },
    { id: 'b22', name: 'second\nline', tags: [], limit: { n: 1 } },
  ];

  it('json prints the answer as the API gave it', () => {
    expect(JSON.parse(render({ items, nextCursor: null }, 'json'))).toEqual({ items, nextCursor: null });
  });

  it('a list as a table: aligned columns, lists joined, nothing shown as -, newlines flattened, the next cursor last', () => {
    const text = render({ items, nextCursor: 'c_9' }, 'table', [col('ID', 'id'), col('NAME', 'name'), col('TAGS', 'tags'), col('LIMIT', 'limit')]);
    expect(text.split('\n')).toEqual([
      'ID   NAME         TAGS  LIMIT',
      'a1   first        x,y   -',
      'b22  second line  -     {"n":1}',
      'more: --cursor c_9',
    ]);
  });

  it('items of no known shape get their scalar fields as columns', () => {
    expect(render({ items: [{ id: 't1', createdAt: 'now', nested: { a: 1 } }] }, 'table').split('\n')).toEqual([
      'ID  CREATED_AT',
      't1  now',
    ]);
  });

  it('one object as FIELD / VALUE rows; an empty list as (none)', () => {
    expect(render({ id: 'w1', name: 'acme' }, 'table')).toBe('FIELD  VALUE\nid     w1\nname   acme');
    expect(render({ items: [] }, 'table')).toBe('(none)');
  });
});
