import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, KeygateError, renderError } from './catalogue.js';

const readme = readFileSync(resolve(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
const table = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('## Metrics'));

describe('the error catalogue', () => {
  it.each(Object.keys(ERROR_CATALOGUE))('documents %s in the README error table with its status', (code) => {
    const { status } = ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE];
    const row = table.split('\n').find((line) => line.includes(`\`${code}\``));
    expect(row, `no README row for ${code}`).toBeDefined();
    expect(row!.startsWith(`| ${status} |`)).toBe(true);
  });

  it('renders a catalogued error with its status, code and request id', () => {
    const out = renderError(new KeygateError('KEY_NOT_FOUND'), 'req-1');
    expect(out.status).toBe(404);
    expect(out.body).toEqual({ error: { code: 'KEY_NOT_FOUND', message: ERROR_CATALOGUE.KEY_NOT_FOUND.message, requestId: 'req-1' } });
  });

  it('renders an unexpected fault as INTERNAL without leaking its text', () => {
    const out = renderError(new Error('secret kg_live_x in a stack'), 'req-2');
    expect(out.status).toBe(500);
    expect(JSON.stringify(out.body)).not.toContain('kg_live_x');
  });
});
