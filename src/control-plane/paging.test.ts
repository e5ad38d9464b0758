import { describe, expect, it } from 'vitest';
import { etagOf, ifMatchAdmits, pageOf } from './paging.js';

const items = [
  { id: 'c', createdAt: '2025-01-01T00:00:02.000Z' },
  { id: 'a', createdAt: '2025-01-01T00:00:01.000Z' },
  { id: 'b', createdAt: '2025-01-01T00:00:01.000Z' },
  { id: 'd', createdAt: '2025-01-01T00:00:03.000Z' },
];

describe('pageOf', () => {
  it('pages in creation order (then id), each item once, ending with nextCursor null', () => {
    const first = pageOf(items, 3, undefined);
    expect(first.items.map((i) => i.id)).toEqual(['a', 'b', 'c']);
    const second = pageOf(items, 3, first.nextCursor!);
    expect(second).toEqual({ items: [items[3]], nextCursor: null });
  });

  it('gives no cursor when the page holds exactly the rest', () => {
    expect(pageOf(items, 4, undefined).nextCursor).toBeNull();
  });

  it('continues after the last item given even when it was deleted meanwhile, and new items do not shift it', () => {
    const first = pageOf(items, 2, undefined);
    const changed = [...items.filter((i) => i.id !== 'b'), { id: 'aa', createdAt: '2025-01-01T00:00:00.500Z' }];
    expect(pageOf(changed, 10, first.nextCursor!).items.map((i) => i.id)).toEqual(['c', 'd']);
  });

  it('refuses a cursor it did not issue, naming cursor', () => {
    expect(() => pageOf(items, 2, 'garbage')).toThrow(/cursor/);
  });
});

describe('If-Match', () => {
  const tag = etagOf('key_1', '3');

  it('gives a strong ETag per id and state', () => {
    expect(tag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(etagOf('key_1', '4')).not.toBe(tag);
    expect(etagOf('key_2', '3')).not.toBe(tag);
  });

  it('admits *, the current ETag alone or in a list; never a weak or another one', () => {
    expect(ifMatchAdmits('*', tag)).toBe(true);
    expect(ifMatchAdmits(tag, tag)).toBe(true);
    expect(ifMatchAdmits(`"x", ${tag}`, tag)).toBe(true);
    expect(ifMatchAdmits(`W/${tag}`, tag)).toBe(false);
    expect(ifMatchAdmits(etagOf('key_1', '2'), tag)).toBe(false);
  });
});
