import { request } from 'undici';
import { CliError, EXIT, UsageError } from './exit-codes.js';

export interface ApiResponse { status: number; body: unknown; headers: Record<string, string | string[] | undefined> }

export interface AdminClientOptions {
  baseUrl: string;
  token: string;
  /** Where the token came from, for the message when it is refused. */
  tokenSource: string;
  timeoutMs: number;
}

/** Error codes only keygate's gateway port answers with: a CLI pointed at it says so. */
const GATEWAY_CODES = new Set(['ROUTE_NOT_FOUND', 'AMBIGUOUS_CREDENTIALS', 'TOKEN_INVALID', 'KEY_EXPIRED', 'KEY_DISABLED', 'KEY_SUSPENDED', 'PERMISSION_DENIED', 'KEY_TYPE_NOT_ALLOWED', 'IP_NOT_ALLOWED']);

/** What a network fault's code means, for people. */
const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listens there: is keygate running, and is this its admin.listen address?)',
  ENOTFOUND: 'host not found (DNS)',
  EAI_AGAIN: 'host name lookup failed (DNS)',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'the server closed the connection',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS: the server\'s certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS: a self-signed certificate in the chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS: the server\'s certificate cannot be verified',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS: the certificate does not name this host',
  CERT_HAS_EXPIRED: 'TLS: the server\'s certificate has expired',
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS: the server does not speak TLS there (http://, not https://?)',
};

/** The code and text of a request's failure (Node may aggregate its IPv4 and IPv6 attempts). */
function causeOf(err: unknown): { code: string | undefined; text: string } {
  type Fault = { name?: string; code?: string; message?: string; cause?: Fault; errors?: Fault[] };
  let e = err as Fault;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return { code: 'TIMEOUT', text: '' };
  if (e.code === undefined && e.cause !== undefined) e = e.cause;
  if (e.code === undefined && Array.isArray(e.errors) && e.errors.length > 0) e = e.errors[0]!;
  const code = e.code;
  return { code, text: (code !== undefined ? CAUSES[code] : undefined) ?? e.message ?? String(err) };
}

const errorOf = (body: unknown): { code?: string; message?: string } | null => {
  const e = (body as { error?: unknown } | null)?.error;
  return e !== null && typeof e === 'object' ? (e as { code?: string; message?: string }) : null;
};

/** The admin API over fetch, turning every failure into a CliError that says what happened. */
export class AdminClient {
  readonly baseUrl: string;

  constructor(private readonly opts: AdminClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new UsageError(`--admin-url: "${opts.baseUrl}" is not a URL (e.g. http://127.0.0.1:8081)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--admin-url: "${opts.baseUrl}" is not an http:// or https:// URL`);
    this.baseUrl = url.origin + url.pathname.replace(/\/+$/, '');
  }

  private async fetch(method: string, path: string, body: unknown, headers: Record<string, string>, auth: boolean): Promise<ApiResponse> {
    const url = this.baseUrl + path;
    let status: number;
    let resHeaders: ApiResponse['headers'];
    let text: string;
    try {
      // undici's request, not fetch: fetch refuses ports on its "bad ports" list (6000, 6666, 10080…), a valid admin port all the same.
      const res = await request(url, {
        method: method as 'GET',
        headers: {
          ...(auth ? { authorization: `Bearer ${this.opts.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          accept: 'application/json',
          ...headers,
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      status = res.statusCode;
      resHeaders = res.headers;
      text = await res.body.text();
    } catch (err) {
      const { code, text: cause } = causeOf(err);
      if (code === 'TIMEOUT') throw new CliError(`cannot reach the admin API at ${this.baseUrl}: no answer within ${this.opts.timeoutMs / 1000} s (--timeout)`, EXIT.UNREACHABLE);
      throw new CliError(`cannot reach the admin API at ${this.baseUrl}: ${cause}${code !== undefined && !cause.includes(code) ? ` (${code})` : ''}`, EXIT.UNREACHABLE);
    }
    let parsed: unknown = null;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        const type = resHeaders['content-type'];
        throw new CliError(
          `the server at ${this.baseUrl} answered ${method} ${path} with ${status} ${typeof type === 'string' ? type : 'and no content type'}, not JSON: it is not a keygate admin port (admin.listen in the config; by default http://127.0.0.1:8081)`,
          EXIT.UNREACHABLE,
        );
      }
    }
    return { status, body: parsed, headers: resHeaders };
  }

  /** What answers at the base URL: keygate's admin port, its gateway port, or something else. */
  private async identify(): Promise<'admin' | 'gateway' | 'other'> {
    const health = await this.fetch('GET', '/healthz', undefined, {}, false).catch(() => null);
    if (health?.status === 200 && (health.body as { status?: unknown } | null)?.status === 'ok') return 'admin';
    const jwks = await this.fetch('GET', '/.well-known/jwks.json', undefined, {}, false).catch(() => null);
    if (jwks?.status === 200 && Array.isArray((jwks.body as { keys?: unknown } | null)?.keys)) return 'gateway';
    if (GATEWAY_CODES.has(errorOf(health?.body)?.code ?? '')) return 'gateway';
    return 'other';
  }

  private gatewayError(): CliError {
    return new CliError(
      `${this.baseUrl} is keygate's gateway port, not its admin port: give the admin port's URL (admin.listen in the config; by default http://127.0.0.1:8081) with --admin-url or KEYGATE_ADMIN_URL`,
      EXIT.UNREACHABLE,
    );
  }

  /** A call that must succeed: any error answer becomes a CliError naming the status, code and message. */
  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
    const res = await this.fetch(method, path, body, headers, true);
    if (res.status < 400) return res;
    const e = errorOf(res.body);
    if (e === null) {
      throw new CliError(`the server at ${this.baseUrl} answered ${method} ${path} with ${res.status} and no keygate error: it is not a keygate admin port`, EXIT.UNREACHABLE);
    }
    if (GATEWAY_CODES.has(e.code ?? '')) throw this.gatewayError();
    const detail = `${res.status} ${e.code ?? ''}: ${e.message ?? ''}`;
    if (res.status === 401) {
      const kind = await this.identify();
      if (kind === 'gateway') throw this.gatewayError();
      throw new CliError(`the admin API at ${this.baseUrl} refused the admin token given by ${this.opts.tokenSource}: it matches no admin token of that keygate, or was revoked (${detail})`, EXIT.AUTH);
    }
    if (res.status === 403) throw new CliError(`the admin token given by ${this.opts.tokenSource} may not ${method} ${path} (${detail})`, EXIT.AUTH);
    if (res.status === 404 && e.code === 'NOT_FOUND') {
      throw new CliError(`error ${detail} (this keygate's admin API has no such endpoint: is it an older version than this CLI?)`, EXIT.FAILED);
    }
    throw new CliError(`error ${detail}`, EXIT.FAILED);
  }
}
