// The one catalogue of error codes keygate answers with, on both ports. Every code is
// documented in the README's error table; a test keeps the two in step.

export const ERROR_CATALOGUE = {
  // 400
  BAD_REQUEST: { status: 400, message: 'The request is malformed.' },
  AMBIGUOUS_CREDENTIALS: { status: 400, message: 'More than one credential was sent; send exactly one.' },
  INVALID_BODY: { status: 400, message: 'The request body is not valid.' },
  // 401
  UNAUTHENTICATED: { status: 401, message: 'A valid credential is required.' },
  KEY_EXPIRED: { status: 401, message: 'The API key has expired.' },
  TOKEN_INVALID: { status: 401, message: 'The token is not valid.' },
  // 403
  KEY_DISABLED: { status: 403, message: 'The API key is disabled.' },
  KEY_SUSPENDED: { status: 403, message: "The API key is suspended because its owner is disabled." },
  PERMISSION_DENIED: { status: 403, message: 'The API key lacks the permission this route requires.' },
  KEY_TYPE_NOT_ALLOWED: { status: 403, message: 'This route does not accept this type of key.' },
  IP_NOT_ALLOWED: { status: 403, message: "The client IP is not in the key's allowlist." },
  PROFILE_SCOPE: { status: 403, message: 'A profile token may only access its own profile.' },
  EVENT_NOT_ALLOWED: { status: 403, message: 'The API key may not send this event.' },
  ATTRIBUTE_NOT_ALLOWED: { status: 403, message: 'The API key may not modify this attribute.' },
  BODY_POLICY_NOT_DECIDABLE: { status: 403, message: "This route checks request bodies, which a forward-auth decision never sees: send its requests through keygate's proxy path." },
  ADMIN_SCOPE_MISSING: { status: 403, message: 'The admin token lacks the scope this call requires.' },
  WORKSPACE_CONFINED: { status: 403, message: 'A token confined to workspaces cannot make this call.' },
  // 404
  ROUTE_NOT_FOUND: { status: 404, message: 'No route matches this request.' },
  NOT_FOUND: { status: 404, message: 'Not found.' },
  KEY_NOT_FOUND: { status: 404, message: 'No key has this id.' },
  WORKSPACE_NOT_FOUND: { status: 404, message: 'No workspace has this id.' },
  GROUP_NOT_FOUND: { status: 404, message: 'No group has this id.' },
  OWNER_NOT_FOUND: { status: 404, message: 'No owner has this id.' },
  ADMIN_TOKEN_NOT_FOUND: { status: 404, message: 'No admin token has this id.' },
  // 405, 408, 409, 412
  METHOD_NOT_ALLOWED: { status: 405, message: 'This method is not allowed on this path.' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request body did not arrive in time.' },
  PERMISSIONS_LOCKED: { status: 409, message: "The key's permissions are locked." },
  GROUP_IN_USE: { status: 409, message: 'The group still has keys; move or delete them first.' },
  OWNER_IN_USE: { status: 409, message: 'Keys still refer to the owner; move or delete them first.' },
  WORKSPACE_IN_USE: { status: 409, message: 'The workspace still holds keys; delete them first.' },
  CONFLICT: { status: 409, message: 'The resource was changed concurrently; retry.' },
  PRECONDITION_FAILED: { status: 412, message: 'The resource has changed since it was read (If-Match); read it again.' },
  // 413, 415, 431
  BODY_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body must be JSON (Content-Type: application/json).' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large.' },
  // 429
  RATE_LIMITED: { status: 429, message: 'Rate limit exceeded.' },
  QUOTA_EXCEEDED: { status: 429, message: 'Quota exceeded.' },
  // 5xx
  INTERNAL: { status: 500, message: 'An internal error occurred.' },
  UPSTREAM_UNAVAILABLE: { status: 502, message: 'The upstream is unavailable.' },
  STORE_UNAVAILABLE: { status: 503, message: 'The key store is unavailable.' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'The upstream did not answer in time.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** A fault or refusal that maps onto a catalogued HTTP answer. */
export class KeygateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, message?: string, headers?: Record<string, string>) {
    super(message ?? ERROR_CATALOGUE[code].message);
    this.name = 'KeygateError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.headers = headers;
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string };
}

/** The one place an error becomes an HTTP status and body. Unknown errors never leak their text. */
export function renderError(err: unknown, requestId: string): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (err instanceof KeygateError) {
    return {
      status: err.status,
      body: { error: { code: err.code, message: err.message, requestId } },
      headers: { ...err.headers },
    };
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL', message: ERROR_CATALOGUE.INTERNAL.message, requestId } },
    headers: {},
  };
}

/** A 400 that names the offending fields, e.g. `permissions[0]: unknown permission "x"`. */
export class ValidationError extends KeygateError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('BAD_REQUEST', problems.join('; '));
    this.problems = problems;
  }
}
