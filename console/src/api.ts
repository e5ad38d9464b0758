// The admin API as the console calls it: same origin, the token from sessionStorage as a bearer
// header (never in a URL or a cookie), errors turned into messages by the field they name.

const TOKEN_KEY = 'keygate.adminToken';

export const session = {
  token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** Fired when the API refuses the token: the app goes back to the sign-in page. */
export const SIGNED_OUT = 'keygate:signed-out';

/** `ipAllowlist[0]: "010.0.0.1" is not…` → field root `ipAllowlist`, index 0. */
const FIELD_LINE = /^([A-Za-z_$][\w$]*|\(body\))((?:\[\d+\]|\.[A-Za-z_$][\w$]*)*): ([\s\S]+)$/;

export interface FieldProblem { field: string; path: string; message: string }

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string;
  /** Problems that name a field, by the field's top-level name. */
  readonly fields: ReadonlyMap<string, FieldProblem[]>;

  constructor(status: number, code: string, message: string, requestId: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    const fields = new Map<string, FieldProblem[]>();
    if (code === 'BAD_REQUEST') {
      for (const line of message.split('; ')) {
        const m = FIELD_LINE.exec(line);
        if (!m) continue;
        const list = fields.get(m[1]!) ?? [];
        list.push({ field: m[1]!, path: m[1]! + m[2]!, message: m[3]! });
        fields.set(m[1]!, list);
      }
    }
    this.fields = fields;
  }

  /** The messages for `field`, joined, or null. */
  about(field: string): string | null {
    const list = this.fields.get(field);
    return list ? list.map((p) => (p.path === field ? p.message : `${p.path.slice(field.length)}: ${p.message}`)).join('; ') : null;
  }
}

export interface Answer<T> { data: T; etag: string | null; status: number }

/** The admin API's root: /console/ is one level under it, so a path prefix of a proxy is kept. */
function apiUrl(path: string): string {
  return new URL(`..${path}`, new URL('.', document.baseURI)).toString();
}

export async function api<T>(method: string, path: string, body?: unknown, opts: { ifMatch?: string | null; token?: string } = {}): Promise<Answer<T>> {
  const token = opts.token ?? session.token();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (opts.ifMatch) headers['if-match'] = opts.ifMatch;
  let res: Response;
  try {
    res = await fetch(apiUrl(path), {
      method,
      headers,
      credentials: 'omit',
      cache: 'no-store',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The admin API did not answer: is keygate running, and the tunnel up?', '');
  }
  const text = await res.text();
  let parsed: unknown = null;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string; message?: string; requestId?: string } } | null)?.error;
    const error = new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? `The admin API answered ${res.status}.`,
      err?.requestId ?? res.headers.get('x-request-id') ?? '');
    if (res.status === 401 && opts.token === undefined) {
      session.signOut();
      window.dispatchEvent(new CustomEvent(SIGNED_OUT, { detail: error.message }));
    }
    throw error;
  }
  return { data: parsed as T, etag: res.headers.get('etag'), status: res.status };
}

/** Every item of a list, following `nextCursor` where the API pages (up to `max` items). */
export async function listAll<T>(path: string, max = 5000): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const url: string = cursor === null ? path : `${path}${sep}cursor=${encodeURIComponent(cursor)}`;
    const { data } = await api<{ items: T[]; nextCursor?: string | null }>('GET', url);
    items.push(...data.items);
    cursor = data.nextCursor ?? null;
    if (cursor === null || items.length >= max) return items;
  }
}

// The shapes the console reads (the admin API's names).
export type KeyStatus = 'active' | 'disabled' | 'expired' | 'suspended';
export interface ApiKey {
  id: string;
  workspaceId: string;
  name: string;
  description: string;
  groupId: string | null;
  ownerId: string | null;
  type: 'workspace' | 'profile';
  environment: 'live' | 'test';
  prefix: string;
  status: KeyStatus;
  permissions: string[];
  permissionsLocked: boolean;
  ipAllowlist: string[];
  eventAllowlist: string[];
  eventDenylist: string[];
  profileAttributeAllowlist: string[];
  basicAuth: boolean;
  simpleAuth: { enabled: boolean; salt?: string };
  rateLimit: { limit: number; windowSeconds: number } | null;
  quota: { limit: number; period: 'day' | 'month' } | null;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  version: number;
  /** The route permissions the key may call now: its own intersected with its owner's. */
  effectivePermissions?: string[];
  rotatedAt?: string | null;
  /** The secret is older than `keys.rotationReminderDays`. */
  rotationDue?: boolean;
  expiredReason?: 'expiresAt' | 'inactivity' | null;
}
export interface Workspace { id: string; name: string; createdAt: string }
export interface Group { id: string; name: string; description: string }
export interface Owner { id: string; name: string; status: 'active' | 'disabled'; permissions: string[]; createdAt: string; updatedAt: string; version: number }
export interface Catalogue { modules: Record<string, string[]>; presets: Record<string, string[]> }
export interface AuditEntry {
  id: string;
  at: string;
  actor: { type: string; name: string; tokenId?: string };
  action: string;
  target: { type: string; id: string };
  before: unknown;
  after: unknown;
}
export interface NodeReport { id: string; instance?: string; role: string; appliedVersion: number; reportedAt: string }
export interface Usage {
  requests: { total: number; byOutcome: Record<string, number> };
  lastUsedAt: string | null;
  rateLimit: { limit: number; windowSeconds: number; remaining: number; resetSeconds: number } | null;
  quota: { limit: number; period: string; used: number; remaining: number; resetsAt: string } | null;
}
/** One request of a key (`GET /v1/keys/{id}/activity`), newest first. */
export interface RequestRecord { keyId: string; at: string; requestId: string; method: string; route: string; status: number; outcome: string; clientIp: string | null }
