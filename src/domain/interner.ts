import { LRUCache } from 'lru-cache';

/**
 * Shares equal immutable values: the first caller with a given key makes the value, later
 * ones get the same object. Keys in a fleet mostly repeat a few permission sets, allowlists
 * and event lists, so sharing them is what keeps 100 000 cached keys small. Bounded: the
 * least recently used entries are forgotten (values in use stay alive where they are used).
 */
export class Interner<T extends object | string> {
  private readonly table: LRUCache<string, T>;

  constructor(max: number) {
    this.table = new LRUCache<string, T>({ max });
  }

  get(key: string, make: () => T): T {
    let value = this.table.get(key);
    if (value === undefined) this.table.set(key, (value = make()));
    return value;
  }
}
