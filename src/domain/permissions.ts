// Permissions are named after API methods: `<module>.<action>` (`events.create`). A key holds
// names or patterns: `*` (everything), `<module>.*` (a whole module), `*.<action>` (one action
// in every module, e.g. `*.read`).

const SEGMENT = '[a-z][a-z0-9_-]*';
const NAME = new RegExp(`^${SEGMENT}(\\.${SEGMENT})+$`);
const MODULE_PATTERN = new RegExp(`^(${SEGMENT})\\.\\*$`);
const ACTION_PATTERN = new RegExp(`^\\*\\.(${SEGMENT}(?:\\.${SEGMENT})*)$`);

export type PermissionPattern =
  | { kind: 'all' }
  | { kind: 'exact'; name: string }
  | { kind: 'module'; module: string }
  | { kind: 'action'; action: string };

export function isPermissionName(s: string): boolean {
  return NAME.test(s);
}

function splitName(name: string): { module: string; action: string } {
  const dot = name.indexOf('.');
  if (dot === -1) return { module: name, action: '' };
  return { module: name.slice(0, dot), action: name.slice(dot + 1) };
}

export function parsePermissionPattern(s: string): PermissionPattern | null {
  if (s === '*') return { kind: 'all' };
  if (NAME.test(s)) return { kind: 'exact', name: s };
  let m = MODULE_PATTERN.exec(s);
  if (m) return { kind: 'module', module: m[1]! };
  m = ACTION_PATTERN.exec(s);
  if (m) return { kind: 'action', action: m[1]! };
  return null;
}

/** The permissions the configured routes require, grouped by module. */
export class PermissionCatalogue {
  readonly names: ReadonlySet<string>;
  readonly modules: ReadonlyMap<string, readonly string[]>;
  private readonly actions: ReadonlySet<string>;

  constructor(names: Iterable<string>) {
    const set = new Set<string>();
    const modules = new Map<string, string[]>();
    const actions = new Set<string>();
    for (const name of names) {
      if (set.has(name)) continue;
      set.add(name);
      const { module, action } = splitName(name);
      actions.add(action);
      const list = modules.get(module) ?? [];
      list.push(name);
      modules.set(module, list);
    }
    for (const list of modules.values()) list.sort();
    this.names = set;
    this.actions = actions;
    this.modules = new Map([...modules.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  /**
   * Why a pattern is not acceptable on a key or owner, or null when it is. An exact name
   * must be a permission some route requires and a module pattern must name a known module;
   * `*` and `*.<action>` are accepted as they are, since they stay meaningful as routes change.
   */
  problemWith(pattern: string): string | null {
    const parsed = parsePermissionPattern(pattern);
    if (!parsed) return `"${pattern}" is not a permission name or pattern`;
    if (parsed.kind === 'exact' && !this.names.has(parsed.name)) return `unknown permission "${pattern}"`;
    if (parsed.kind === 'module' && !this.modules.has(parsed.module)) return `unknown permission module in "${pattern}"`;
    return null;
  }

  /**
   * Why a pattern is not acceptable in a preset the config declares, or null when it is: as
   * on a key, and a `*.<action>` pattern must also match some route's permission, since the
   * preset and the routes are read from the same file.
   */
  presetProblemWith(pattern: string): string | null {
    const problem = this.problemWith(pattern);
    if (problem) return problem;
    const parsed = parsePermissionPattern(pattern)!;
    if (parsed.kind === 'action' && !this.actions.has(parsed.action)) return `no route permission matches "${pattern}"`;
    return null;
  }
}

export type PermissionMatcher = (permission: string) => boolean;

/** Compiles a list of patterns once into an O(1) check per permission. */
export function compilePermissions(patterns: readonly string[]): PermissionMatcher {
  const exact = new Set<string>();
  const modules = new Set<string>();
  const actions = new Set<string>();
  let all = false;
  for (const p of patterns) {
    const parsed = parsePermissionPattern(p);
    if (!parsed) continue;
    switch (parsed.kind) {
      case 'all': all = true; break;
      case 'exact': exact.add(parsed.name); break;
      case 'module': modules.add(parsed.module); break;
      case 'action': actions.add(parsed.action); break;
    }
  }
  if (all) return () => true;
  if (modules.size === 0 && actions.size === 0) return (perm) => exact.has(perm);
  return (perm) => {
    if (exact.has(perm)) return true;
    const { module, action } = splitName(perm);
    return modules.has(module) || actions.has(action);
  };
}

/**
 * A key's effective permissions are its own intersected with its owner's: a permission
 * is granted only when both grant it. `owner` null means the key has no owner.
 */
export function effectivePermissions(key: readonly string[], owner: readonly string[] | null): PermissionMatcher {
  const keyMatcher = compilePermissions(key);
  if (owner === null) return keyMatcher;
  const ownerMatcher = compilePermissions(owner);
  return (perm) => keyMatcher(perm) && ownerMatcher(perm);
}
