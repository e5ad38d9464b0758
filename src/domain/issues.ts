import type { z } from 'zod';

/** `routes[2].upstream`, from a path of keys and indexes. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

// zod's own messages start like this; anything else is a message the schema wrote itself.
const GENERIC = /^(Invalid|Too (small|big)|Expected|Unrecognized)/;

function describe(issue: z.core.$ZodIssue): string {
  if (!GENERIC.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      // zod leaves `input` off issues unless asked, but names a missing value in its message.
      return /received undefined$/.test(issue.message) ? 'is required' : `expected ${issue.expected}`;
    case 'too_big':
      return issue.origin === 'string' ? `must be at most ${String(issue.maximum)} characters`
        : issue.origin === 'array' ? `must have at most ${String(issue.maximum)} entries`
        : `must be at most ${String(issue.maximum)}`;
    case 'too_small':
      return issue.origin === 'string' ? (issue.minimum === 1 ? 'must not be empty' : `must be at least ${String(issue.minimum)} characters`)
        : issue.origin === 'array' ? `must have at least ${String(issue.minimum)} entries`
        : `must be at least ${String(issue.minimum)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return issue.message.replace(/^Invalid input: /, '');
  }
}

/** Turns zod issues into `field: problem` lines; unknown fields are named one per line. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], base: ReadonlyArray<PropertyKey> = []): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(`${formatPath([...base, ...issue.path, key])}: unknown field`);
      continue;
    }
    const where = formatPath([...base, ...issue.path]) || '(body)';
    out.push(`${where}: ${describe(issue)}`);
  }
  return out;
}
