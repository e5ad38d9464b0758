import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { adminOpenApi } from './admin-server.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** `METHOD /v1/path/{param}` of every call the README's admin API table names. */
function readmeOperations(): Set<string> {
  const start = README.indexOf('## Admin API');
  const section = README.slice(start, README.indexOf('\n## ', start + 1));
  const ops = new Set<string>();
  for (const line of section.split('\n').filter((l) => l.startsWith('| `'))) {
    const cell = line.split(' | ')[0]!;
    for (const m of cell.matchAll(/`(GET|POST|PATCH|DELETE) (\/v1\/[^`?\s]*)/g)) ops.add(`${m[1]!} ${m[2]!}`);
  }
  return ops;
}

describe('the OpenAPI document and the README', () => {
  it("names the same admin calls: every operation is in the README's table, and every call there is in the document", () => {
    const doc = adminOpenApi() as { paths: Record<string, Record<string, unknown>> };
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) for (const method of Object.keys(item)) documented.add(`${method.toUpperCase()} ${path}`);
    const readme = readmeOperations();
    expect([...documented].filter((op) => !readme.has(op)), 'in the document, not in the README').toEqual([]);
    expect([...readme].filter((op) => !documented.has(op)), 'in the README, not in the document').toEqual([]);
  });

  it('gives every operation a unique operationId, a scope, a summary and its answers', () => {
    const doc = adminOpenApi() as { paths: Record<string, Record<string, any>> };
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const op of Object.values(item)) {
        expect(ids.has(op.operationId), `${path} ${op.operationId}`).toBe(false);
        ids.add(op.operationId);
        expect(op.summary, path).toBeTruthy();
        expect(op['x-required-scope'], path).toBeTruthy();
        expect(Object.keys(op.responses).some((s) => s.startsWith('2')), path).toBe(true);
      }
    }
  });
});
