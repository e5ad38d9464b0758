// Admin token scopes: `<resource>:read` and `<resource>:write` (write implies read), or `*`.

export const ADMIN_RESOURCES = ['keys', 'workspaces', 'groups', 'owners', 'audit', 'signing-keys', 'admin-tokens'] as const;
export type AdminResource = (typeof ADMIN_RESOURCES)[number];
export type AdminScope = `${AdminResource}:${'read' | 'write'}` | '*';

export const ADMIN_SCOPES: readonly AdminScope[] = [
  '*',
  ...ADMIN_RESOURCES.flatMap((r) => [`${r}:read`, `${r}:write`] as const),
];

const SCOPE_SET = new Set<string>(ADMIN_SCOPES);
export const isAdminScope = (s: string): s is AdminScope => SCOPE_SET.has(s);

/** Whether `held` grants `needed`: `*` grants all, `<r>:write` grants `<r>:read`. */
export function scopeGranted(held: readonly string[], needed: AdminScope): boolean {
  if (held.includes('*') || held.includes(needed)) return true;
  return needed.endsWith(':read') && held.includes(`${needed.slice(0, -5)}:write`);
}

/**
 * What an admin request may reach: the scopes it holds and, when confined, the only
 * workspaces it sees (null: every workspace).
 */
export interface AdminGrant { scopes: readonly string[]; workspaces: ReadonlySet<string> | null }

export const FULL_GRANT: AdminGrant = Object.freeze({ scopes: Object.freeze(['*']), workspaces: null });

/** Whether a record of workspace `workspaceId` (null: not in any workspace) is visible. */
export function workspaceVisible(grant: AdminGrant, workspaceId: string | null | undefined): boolean {
  if (grant.workspaces === null) return true;
  return typeof workspaceId === 'string' && grant.workspaces.has(workspaceId);
}
