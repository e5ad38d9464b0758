// The one response writer: a catalogued error or a JSON answer becomes bytes here, on both
// ports and on the gateway's parser-error path.
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { ERROR_CATALOGUE, type ErrorCode } from './catalogue.js';

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * A refusal of a request: a catalogued code, its message (null: the catalogue's) and the
 * headers it carries (null: none). Fixed refusals are built once and frozen.
 */
export interface Refusal {
  readonly code: ErrorCode;
  readonly message: string | null;
  readonly headers: Readonly<Record<string, string>> | null;
  /**
   * The status when it is not the catalogue's: one code, two statuses (`KEY_EXPIRED` is 401
   * when `expiresAt` passed, 403 when the key went unused for `keys.inactivityDays`).
   */
  readonly status?: number;
}

/** A refusal with a message of the moment (built only when refusing). */
export function refusal(code: ErrorCode, message: string | null, headers: Readonly<Record<string, string>> | null = null): Refusal {
  return { code, message, headers };
}

/** A refusal built once at startup (its object is shared by every request it refuses). */
export function fixedRefusal(code: ErrorCode, message: string | null = null, headers: Record<string, string> | null = null, status?: number): Refusal {
  return Object.freeze({ code, message, headers: headers === null ? null : Object.freeze(headers), ...(status === undefined ? {} : { status }) });
}

/** The error body every catalogued answer carries: `{"error":{"code","message","requestId"}}`. */
export function errorJson(code: ErrorCode, message: string | null, requestId: string): string {
  return JSON.stringify({ error: { code, message: message ?? ERROR_CATALOGUE[code].message, requestId } });
}

/** `WWW-Authenticate` of a 401 on a port whose realm is `realm`. */
export function bearerChallenge(realm: string): string {
  return `Bearer realm="${realm}"`;
}

/**
 * Writes one JSON answer: `headers`, then the body's type and length, then one last header
 * (the request id on the gateway, `Cache-Control` on the admin port), and ends the response.
 */
export function writeJson(res: ServerResponse, status: number, payload: string, headers: Readonly<Record<string, string>> | undefined,
  lastName: string, lastValue: string): void {
  res.writeHead(status, { ...headers, 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(payload), [lastName]: lastValue });
  res.end(payload);
}

/**
 * A whole HTTP/1.1 error answer as bytes, for a connection the HTTP parser has refused (there
 * is no response object to write through): the catalogued body, and the connection closes.
 */
export function rawErrorResponse(code: ErrorCode, message: string | null, requestId: string): string {
  const { status } = ERROR_CATALOGUE[code];
  const body = errorJson(code, message, requestId);
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    `content-type: ${JSON_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `x-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`;
}
