// The other records an admin manages beside keys.

export interface Workspace {
  id: string;
  name: string;
  createdAt: string;
  /** Absent on workspaces written before they could change. */
  updatedAt?: string;
}

export interface Group {
  id: string;
  name: string;
  description: string;
  /** The workspace the group belongs to; null (or absent, on older records): shared by all. */
  workspaceId?: string | null;
  createdAt: string;
  updatedAt: string;
}

export type OwnerStatus = 'active' | 'disabled';

export interface Owner {
  id: string;
  name: string;
  status: OwnerStatus;
  permissions: string[];
  /** The workspace the owner belongs to; null (or absent, on older records): shared by all. */
  workspaceId?: string | null;
  createdAt: string;
  updatedAt: string;
  version: number;
}

/**
 * Who made a change: an admin token's name and its id (`adm_…` for tokens made by the API,
 * `config:<name>` for tokens of the config file; absent on entries of older versions), or
 * keygate itself (`system`: an inactivity expiry, a secret scanner's report).
 */
export interface Actor { type: 'admin' | 'system'; name: string; tokenId?: string }

/** An admin token made through the API; its secret is stored only as a peppered hash. */
export interface AdminTokenRecord {
  id: string;
  name: string;
  scopes: string[];
  /** The workspaces it is confined to; null: every workspace. */
  workspaces: string[] | null;
  createdAt: string;
  updatedAt: string;
  createdBy: Actor;
  secretHash: string;
}

/** An admin token as the admin API shows it. */
export type AdminToken = Omit<AdminTokenRecord, 'secretHash'>;

export function toAdminToken(rec: AdminTokenRecord): AdminToken {
  const { secretHash: _hash, ...view } = rec;
  return { ...view, scopes: [...view.scopes], workspaces: view.workspaces ? [...view.workspaces] : null };
}

export type AuditTargetType = 'workspace' | 'key' | 'group' | 'owner' | 'signing-key' | 'admin-token';

export interface AuditEntry {
  id: string;
  at: string;
  actor: Actor;
  action: string;
  target: { type: AuditTargetType; id: string };
  /** The workspace the target belongs to (null: none); what confined tokens are filtered by. */
  workspaceId?: string | null;
  /** Public views only: never a secret, hash or salt. */
  before: unknown;
  after: unknown;
  /** What else the change carries (a leak report's source and URL). */
  detail?: Record<string, unknown>;
}
