import { UsageError } from './exit-codes.js';

export type OutputFormat = 'json' | 'table';

export function outputFormat(value: string | undefined, env: NodeJS.ProcessEnv): OutputFormat {
  const v = value ?? env.KEYGATE_OUTPUT ?? 'json';
  if (v !== 'json' && v !== 'table') throw new UsageError(`--output: "${v}" is not json or table`);
  return v;
}

/** A table column: its header and how to read a cell from an item. */
export type Column = [header: string, read: (item: Record<string, unknown>) => unknown];

/** `field` of the item, for the common case. */
export const col = (header: string, field: string): Column => [header, (item) => item[field]];

function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v).replace(/[\r\n\t]+/g, ' ');
}

/** Left-aligned columns, two spaces apart, headers in capitals. */
export function renderRows(headers: readonly string[], rows: readonly string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Columns for items of no known shape: their scalar fields. */
function guessColumns(items: ReadonlyArray<Record<string, unknown>>): Column[] {
  const fields: string[] = [];
  for (const item of items.slice(0, 20)) {
    for (const [k, v] of Object.entries(item)) if (!fields.includes(k) && (v === null || typeof v !== 'object' || Array.isArray(v))) fields.push(k);
  }
  return fields.map((f) => col(f.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase(), f));
}

export function renderList(items: ReadonlyArray<Record<string, unknown>>, columns?: readonly Column[]): string {
  if (items.length === 0) return '(none)';
  const cols = columns ?? guessColumns(items);
  return renderRows(cols.map((c) => c[0]), items.map((item) => cols.map(([, read]) => cell(read(item)))));
}

/** One object as FIELD / VALUE rows, nested objects on one line. */
export function renderObject(obj: Record<string, unknown>): string {
  return renderRows(['FIELD', 'VALUE'], Object.entries(obj).map(([k, v]) => [k, cell(v)]));
}

/** Prints an answer: JSON as the API gave it, or a table (a list's next cursor after it). */
export function render(body: unknown, format: OutputFormat, columns?: readonly Column[]): string {
  if (format === 'json') return JSON.stringify(body, null, 2);
  if (body !== null && typeof body === 'object' && Array.isArray((body as { items?: unknown }).items)) {
    const { items, nextCursor } = body as { items: Array<Record<string, unknown>>; nextCursor?: unknown };
    const table = renderList(items, columns);
    return typeof nextCursor === 'string' ? `${table}\nmore: --cursor ${nextCursor}` : table;
  }
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) return renderObject(body as Record<string, unknown>);
  return String(body);
}
