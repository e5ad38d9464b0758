import type { IncomingMessage, ServerResponse } from 'node:http';
import { CHARSET_MESSAGE, isJsonContentType, isJsonWithForeignCharset, parseJsonBody } from '../domain/json-body.js';
import { KeygateError, ValidationError, renderError } from '../errors/catalogue.js';
import { bearerChallenge, writeJson } from '../errors/http.js';

export const ADMIN_MAX_BODY_BYTES = 1024 * 1024;


/**
 * Reads a JSON body of at most `limit` bytes. An empty body reads as `undefined`. Refuses
 * early on a declared length over the cap, and stops reading as soon as the cap is passed.
 */
export async function readJsonBody(req: IncomingMessage, limit = ADMIN_MAX_BODY_BYTES): Promise<unknown> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw new KeygateError('BODY_TOO_LARGE', `The body is over ${limit} bytes.`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new KeygateError('BODY_TOO_LARGE', `The body is over ${limit} bytes.`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const type = req.headers['content-type'];
  if (!isJsonContentType(type)) throw new KeygateError('UNSUPPORTED_MEDIA_TYPE', isJsonWithForeignCharset(type) ? CHARSET_MESSAGE : undefined);
  const parsed = parseJsonBody(Buffer.concat(chunks, size));
  if (!parsed.ok) throw new KeygateError('INVALID_BODY', parsed.message);
  return parsed.value;
}

const ADMIN_CHALLENGE = bearerChallenge('keygate-admin');

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  writeJson(res, status, body === undefined ? '' : JSON.stringify(body), headers, 'cache-control', 'no-store');
}

export function sendError(res: ServerResponse, err: unknown, requestId: string): number {
  const { status, body, headers } = renderError(err, requestId);
  if (status === 413 || status === 408) headers.connection = 'close';
  if (status === 401) headers['www-authenticate'] = ADMIN_CHALLENGE;
  sendJson(res, status, body, headers);
  return status;
}

/** Query string to a plain object; a parameter given twice is a 400, an empty one is absent. */
export function queryObject(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const [k, v] of params) {
    if (seen.has(k)) problems.push(`${k}: given more than once`);
    seen.add(k);
    if (v !== '') out[k] = v;
  }
  if (problems.length > 0) throw new ValidationError(problems);
  return out;
}
