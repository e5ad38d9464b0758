// The other records an admin manages beside keys.

export interface Workspace { id: string; name: string; createdAt: string }

export interface Group {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  updatedAt: string;
}

export type OwnerStatus = 'active' | 'disabled';

export interface Owner {
  id: string;
  name: string;
  status: OwnerStatus;
  permissions: string[];
  createdAt: string;
  updatedAt: string;
  version: number;
}

/** Who made a change: an admin token's name, or keygate itself (an inactivity expiry, a secret scanner's report). */
export interface Actor { type: 'admin' | 'system'; name: string }

export type AuditTargetType = 'workspace' | 'key' | 'group' | 'owner' | 'signing-key';

export interface AuditEntry {
  id: string;
  at: string;
  actor: Actor;
  action: string;
  target: { type: AuditTargetType; id: string };
  /** Public views only: never a secret, hash or salt. */
  before: unknown;
  after: unknown;
  /** What else the change carries (a leak report's source and URL). */
  detail?: Record<string, unknown>;
}
