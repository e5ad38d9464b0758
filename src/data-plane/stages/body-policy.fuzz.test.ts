import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../config/schema.js';
import { compilePolicy } from '../../domain/compiled-policy.js';
import { keyRecord } from '../../../test/support/fixtures.js';
import { anyCodeUnit, fuzz } from '../../../test/support/fuzz.js';
import { refusedCode, refusedMessage, type AdmittedContext } from '../pipeline/context.js';
import type { ErrorCode } from '../../errors/catalogue.js';
import { scanHeaders } from '../request/credentials.js';
import { bodyPolicyStage } from './body-policy.js';

type Route = Pick<RouteConfig, 'events' | 'profileAttributes'>;
const EVENTS: Route = { events: { field: 'action' }, profileAttributes: false };
const ATTRIBUTES: Route = { profileAttributes: true };
const LIMITS = { maxBodyBytes: 64 * 1024, requestTimeoutMs: 5_000 };
const OUTCOMES: Array<ErrorCode | null> = [null, 'INVALID_BODY', 'UNSUPPORTED_MEDIA_TYPE', 'BAD_REQUEST', 'BODY_TOO_LARGE', 'EVENT_NOT_ALLOWED', 'ATTRIBUTE_NOT_ALLOWED'];

interface Lists { eventAllowlist: string[]; eventDenylist: string[]; profileAttributeAllowlist: string[] }

async function run(route: Route, headers: Array<[string, string]>, body: Buffer | null, lists: Lists): Promise<{ result: ErrorCode | null; message: string | null }> {
  const req = new PassThrough() as PassThrough & { headers: Record<string, string>; rawHeaders: string[] };
  req.rawHeaders = headers.flat();
  req.headers = {};
  for (const [n, v] of headers) req.headers[n.toLowerCase()] ??= v;
  if (body !== null) req.write(body);
  req.end();
  const ctx = { req, scan: scanHeaders(req.rawHeaders), now: Date.now(), policy: compilePolicy(keyRecord(lists), null), body: null } as unknown as AdmittedContext;
  const r = await bodyPolicyStage(route, LIMITS)(ctx);
  return { result: refusedCode(r), message: refusedMessage(r) };
}

/** Names from a small alphabet, so list entries and body names often meet. */
const name = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: fc.constantFrom('a', 'b', '.', '*'), maxLength: 4 }) },
  { weight: 1, arbitrary: fc.string({ unit: anyCodeUnit, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'toString', 'constructor') },
);
const lists = fc.record({
  eventAllowlist: fc.array(name, { maxLength: 3 }),
  eventDenylist: fc.array(name, { maxLength: 3 }),
  profileAttributeAllowlist: fc.array(name, { maxLength: 3 }),
});

/** The README's rule: exact names, or a prefix ending in `*`. */
const listed = (list: string[], n: string): boolean => list.some((e) => (e.endsWith('*') ? n.startsWith(e.slice(0, -1)) : e === n));
const eventOk = (l: Lists, n: string): boolean => !listed(l.eventDenylist, n) && (l.eventAllowlist.length === 0 || listed(l.eventAllowlist, n));

const jsonHeaders = (body: Buffer): Array<[string, string]> => [['Content-Type', 'application/json'], ['Content-Length', String(body.length)]];
/** Builds a JSON object text from entries, keeping duplicates out (the reader refuses them). */
const objectText = (entries: Array<[string, unknown]>): string => {
  const seen = new Set<string>();
  return `{${entries.filter(([k]) => !seen.has(k) && seen.add(k)).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
};

describe('body policy (property-based)', () => {
  it('answers any headers and body with a continue or a catalogued refusal, never an exception', async () => {
    const contentType = fc.constantFrom('application/json', 'APPLICATION/JSON', 'application/vnd.x+json', 'application/json; charset=utf-8', 'text/plain', 'application/jsonx', 'application/json ;', '',
      'application/json; charset=utf-7', 'application/json; charset="UTF-16"', 'application/json;charset=ibm037', 'application/json; x="charset=utf-7"');
    const header = fc.oneof(
      contentType.map((v): [string, string] => ['Content-Type', v]),
      fc.constantFrom<[string, string]>(['Content-Encoding', 'gzip'], ['Content-Encoding', 'identity'], ['Content-Encoding', ' Identity '], ['Transfer-Encoding', 'chunked'], ['Content-Length', '0']),
    );
    const body = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.jsonValue({ maxDepth: 3 }).map((v) => new Uint8Array(Buffer.from(JSON.stringify(v) ?? 'null'))), fc.constant(null));
    await fc.assert(fc.asyncProperty(fc.constantFrom(EVENTS, ATTRIBUTES), fc.array(header, { maxLength: 3 }), body, lists, async (route, headers, b, l) => {
      const bytes = b === null ? null : Buffer.from(b);
      const withLength: Array<[string, string]> = bytes === null ? headers : [...headers, ['Content-Length', String(bytes.length)]];
      const { result } = await run(route, withLength, bytes, l);
      expect(OUTCOMES).toContain(result);
    }), fuzz(500));
  });

  it('admits an event body or batch exactly when every event passes the denylist and the allowlist, and names the first refused one', async () => {
    const item = fc.tuple(name, fc.array(fc.tuple(name.filter((k) => k !== 'action'), fc.jsonValue({ maxDepth: 1, depthSize: 'xsmall' })), { maxLength: 2 }))
      .map(([action, extra]) => ({ action, text: objectText([['action', action], ...extra]) }));
    const body = fc.oneof(item.map((i) => ({ actions: [i.action], text: i.text })), fc.array(item, { maxLength: 4 }).map((is) => ({ actions: is.map((i) => i.action), text: `[${is.map((i) => i.text).join(',')}]` })));
    await fc.assert(fc.asyncProperty(body, lists, async ({ actions, text }, l) => {
      const bytes = Buffer.from(text);
      const { result, message } = await run(EVENTS, jsonHeaders(bytes), bytes, l);
      const refused = actions.find((a) => !eventOk(l, a));
      if (refused === undefined) expect(result, text).toBeNull();
      else {
        expect(result, text).toBe('EVENT_NOT_ALLOWED');
        expect(message).toContain(JSON.stringify(refused.length > 200 ? `${refused.slice(0, 200)}…` : refused));
      }
    }), fuzz(500));
  });

  it('refuses an event body or batch element without a string at the event field', async () => {
    const value = fc.oneof(fc.integer(), fc.constant(null), fc.boolean(), fc.array(fc.string(), { maxLength: 1 }), fc.constant({ action: 'x' }));
    const bad = fc.oneof(
      value.map((v) => objectText([['action', v]])),
      fc.array(name.filter((k) => k !== 'action'), { maxLength: 2 }).map((ks) => objectText(ks.map((k) => [k, 'x']))),
      fc.tuple(fc.array(fc.constant('{"action":"ok"}'), { maxLength: 2 }), value).map(([ok, v]) => `[${[...ok, objectText([['action', v]])].join(',')}]`),
      fc.constantFrom('"x"', '1', 'null', '[[{"action":"x"}]]'),
    );
    await fc.assert(fc.asyncProperty(bad, lists, async (text, l) => {
      const bytes = Buffer.from(text);
      expect((await run(EVENTS, jsonHeaders(bytes), bytes, l)).result, text).toBe('INVALID_BODY');
    }), fuzz(300));
  });

  it('admits a profile body exactly when every top-level key is on the attribute allowlist (or it is empty)', async () => {
    const body = fc.array(fc.tuple(name, fc.jsonValue({ maxDepth: 1, depthSize: 'xsmall' })), { maxLength: 4 });
    await fc.assert(fc.asyncProperty(body, lists, async (entries, l) => {
      const text = objectText(entries);
      const bytes = Buffer.from(text);
      // JSON.parse defines "__proto__" as an own key, as the strict reader does.
      const keys = Object.keys(JSON.parse(text) as object);
      const ok = l.profileAttributeAllowlist.length === 0 || keys.every((k) => listed(l.profileAttributeAllowlist, k));
      expect((await run(ATTRIBUTES, jsonHeaders(bytes), bytes, l)).result, text).toBe(ok ? null : 'ATTRIBUTE_NOT_ALLOWED');
    }), fuzz(500));
  });

  it('refuses with 415 every Content-Type that is not JSON on an inspected route', async () => {
    const notJson = fc.oneof(fc.constantFrom('text/plain', 'application/xml', 'application/jsonp', 'application/json-seq', 'text/json', 'json', 'application/x-www-form-urlencoded', 'multipart/form-data'),
      fc.string({ unit: 'binary-ascii', maxLength: 20 }).filter((t) => !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(t)));
    await fc.assert(fc.asyncProperty(notJson, async (type) => {
      const bytes = Buffer.from('{"action":"a"}');
      const { result } = await run(EVENTS, [['Content-Type', type], ['Content-Length', String(bytes.length)]], bytes, { eventAllowlist: [], eventDenylist: [], profileAttributeAllowlist: [] });
      expect(result, type).toBe('UNSUPPORTED_MEDIA_TYPE');
    }), fuzz(300));
  });

  it('refuses with 415 a JSON Content-Type whose charset is not utf-8 (any case, quoted or not, among other parameters) and admits utf-8', async () => {
    const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,10}$/);
    const charset = fc.oneof(fc.mixedCase(fc.constantFrom('utf-8', 'utf-7', 'utf-16', 'utf-16le', 'ibm037', 'utf8', 'iso-8859-1', 'us-ascii')), token);
    const param = fc.tuple(token.filter((n) => n.toLowerCase() !== 'charset'), token).map(([n, v]) => `; ${n}=${v}`);
    const type = fc.record({
      media: fc.mixedCase(fc.constantFrom('application/json', 'application/vnd.api+json')),
      before: fc.array(param, { maxLength: 2 }), after: fc.array(param, { maxLength: 2 }),
      charset, quoted: fc.boolean(), spaced: fc.constantFrom(';', '; ', ' ;', ' ; '),
    });
    await fc.assert(fc.asyncProperty(type, fc.constantFrom(EVENTS, ATTRIBUTES), async (t, route) => {
      const text = `${t.media}${t.before.join('')}${t.spaced}charset=${t.quoted ? `"${t.charset}"` : t.charset}${t.after.join('')}`;
      const bytes = Buffer.from('{"action":"a"}');
      const { result } = await run(route, [['Content-Type', text], ['Content-Length', String(bytes.length)]], bytes, { eventAllowlist: [], eventDenylist: [], profileAttributeAllowlist: [] });
      expect(result, text).toBe(t.charset.toLowerCase() === 'utf-8' ? null : 'UNSUPPORTED_MEDIA_TYPE');
    }), fuzz(400));
  });
});
