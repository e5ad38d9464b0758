import { formatPath } from '../domain/issues.js';

// `${NAME}` and `${NAME:-default}` in string values; `$${` writes a literal `${`. Substitution
// happens on parsed values, never on the raw text, so a variable cannot inject YAML structure.
const PLACEHOLDER = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export interface Interpolated { value: unknown; errors: string[] }

export function interpolate(value: unknown, env: NodeJS.ProcessEnv): Interpolated {
  const errors: string[] = [];
  const walk = (v: unknown, path: PropertyKey[]): unknown => {
    if (typeof v === 'string') return interpolateString(v, env, path, errors);
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (v !== null && typeof v === 'object') {
      // Built from entries (defined, never assigned), so a "__proto__" key in the file stays an
      // own key the schema refuses, instead of becoming the prototype a field is read through.
      return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, [...path, k])]));
    }
    return v;
  };
  return { value: walk(value, []), errors };
}

// Results stay strings; numeric and boolean fields accept their text form in the schema.
function interpolateString(s: string, env: NodeJS.ProcessEnv, path: PropertyKey[], errors: string[]): string {
  if (!s.includes('${')) return s;
  // Each placeholder leaves a NUL, so a "$" before a "$${" and a "{" after it do not join into a "${".
  if (s.replace(PLACEHOLDER, '\0').includes('${')) {
    errors.push(`${formatPath(path)}: malformed \${...} placeholder`);
    return s;
  }
  return s.replace(PLACEHOLDER, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$${') return '${';
    const v = env[name!];
    return v !== undefined && v !== '' ? v : fallback ?? '';
  });
}
