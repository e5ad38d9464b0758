import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../config/schema.js';
import { compilePolicy } from '../../domain/compiled-policy.js';
import { keyRecord } from '../../../test/support/fixtures.js';
import { refusedCode, refusedMessage, type AdmittedContext } from '../pipeline/context.js';
import type { ErrorCode } from '../../errors/catalogue.js';
import { scanHeaders } from '../request/credentials.js';
import { bodyPolicyStage, type BodyPolicyOptions } from './body-policy.js';

type Route = Pick<RouteConfig, 'events' | 'profileAttributes'>;
const EVENTS: Route = { events: { field: 'action' }, profileAttributes: false };
const ATTRIBUTES: Route = { profileAttributes: true };
const LIMITS: BodyPolicyOptions = { maxBodyBytes: 1024, requestTimeoutMs: 5_000 };
const JSON_TYPE: [string, string] = ['Content-Type', 'application/json'];

type Headers = ReadonlyArray<readonly [string, string]>;

/** A request stream with the given raw headers; the test writes its body. */
function fakeRequest(headers: Headers): PassThrough & { headers: Record<string, string>; rawHeaders: string[] } {
  const req = new PassThrough() as PassThrough & { headers: Record<string, string>; rawHeaders: string[] };
  req.rawHeaders = headers.flatMap(([n, v]) => [n, v]);
  req.headers = {};
  for (const [n, v] of headers) req.headers[n.toLowerCase()] ??= v;
  return req;
}

function contextFor(req: ReturnType<typeof fakeRequest>, over: Parameters<typeof keyRecord>[0] = {}, now = Date.now()): AdmittedContext {
  return {
    req,
    scan: scanHeaders(req.rawHeaders),
    now,
    policy: compilePolicy(keyRecord(over), null),
    body: null,
  } as unknown as AdmittedContext;
}

interface Run { result: ErrorCode | null; message: string | null; ctx: AdmittedContext }

/**
 * Runs the stage on a complete body. `headers` defaults to JSON with the body's
 * Content-Length; `key` overrides fields of the key record.
 */
async function run(route: Route, body: string | Buffer | null,
  opts: { key?: Parameters<typeof keyRecord>[0]; headers?: Headers; limits?: BodyPolicyOptions } = {}): Promise<Run> {
  const bytes = body === null ? null : Buffer.from(body);
  const headers = opts.headers ?? [JSON_TYPE, ...(bytes === null ? [] : [['Content-Length', String(bytes.length)] as const])];
  const req = fakeRequest(headers);
  if (bytes !== null) req.write(bytes);
  req.end();
  const ctx = contextFor(req, opts.key);
  const r = await bodyPolicyStage(route, opts.limits ?? LIMITS)(ctx);
  return { result: refusedCode(r), message: refusedMessage(r), ctx };
}

const event = (action: unknown, extra: Record<string, unknown> = {}): string => JSON.stringify({ action, ...extra });

describe('body-policy stage: the request must carry uncompressed JSON', () => {
  it('refuses a body without Content-Type with UNSUPPORTED_MEDIA_TYPE', async () => {
    const body = event('page.view');
    const { result, message } = await run(EVENTS, body, { headers: [['Content-Length', String(body.length)]] });
    expect(result).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(message).toMatch(/JSON/);
  });

  it('refuses text/plain with UNSUPPORTED_MEDIA_TYPE', async () => {
    const body = event('page.view');
    expect((await run(EVENTS, body, { headers: [['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]] })).result).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('refuses types that only look like JSON', async () => {
    const body = event('page.view');
    for (const type of ['application/jsonp', 'application/json-seq', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'json']) {
      const { result } = await run(EVENTS, body, { headers: [['Content-Type', type], ['Content-Length', String(body.length)]] });
      expect(result, type).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('refuses two Content-Type headers with BAD_REQUEST, even when both say JSON', async () => {
    const body = event('page.view');
    for (const second of ['application/json', 'text/plain']) {
      const { result, message } = await run(EVENTS, body, { headers: [JSON_TYPE, ['content-type', second], ['Content-Length', String(body.length)]] });
      expect(result, second).toBe('BAD_REQUEST');
      expect(message).toMatch(/Content-Type/);
    }
  });

  it('accepts application/json with parameters, in any case, and application/<x>+json', async () => {
    const body = event('page.view');
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/vnd.x+json', 'application/merge-patch+json; charset=UTF-8']) {
      const { result } = await run(EVENTS, body, { headers: [['Content-Type', type], ['Content-Length', String(body.length)]] });
      expect(result, type).toBeNull();
    }
  });

  it('refuses JSON declared in a charset other than utf-8 (utf-7, utf-16, UTF-16LE, ibm037) with UNSUPPORTED_MEDIA_TYPE, saying so (regression)', async () => {
    const body = event('page.visit+ACI-,+ACI-action+ACI-:+ACI-transaction.charge');
    for (const charset of ['utf-7', '"UTF-7"', 'utf-16', 'UTF-16LE', 'ibm037']) {
      const type = `application/json; charset=${charset}`;
      const { result, message } = await run(EVENTS, body, { headers: [['Content-Type', type], ['Content-Length', String(body.length)]] });
      expect(result, type).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(message, type).toMatch(/charset/);
    }
  });

  it('refuses a compressed body (Content-Encoding: gzip, deflate, br) with UNSUPPORTED_MEDIA_TYPE', async () => {
    const body = event('page.view');
    for (const encoding of ['gzip', 'deflate', 'br', 'identity, gzip']) {
      const { result, message } = await run(EVENTS, body, { headers: [JSON_TYPE, ['Content-Encoding', encoding], ['Content-Length', String(body.length)]] });
      expect(result, encoding).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(message).toMatch(/Content-Encoding/);
    }
  });

  it('accepts Content-Encoding: identity', async () => {
    const body = event('page.view');
    for (const encoding of ['identity', 'Identity', ' identity ']) {
      const { result } = await run(EVENTS, body, { headers: [JSON_TYPE, ['Content-Encoding', encoding], ['Content-Length', String(body.length)]] });
      expect(result, encoding).toBeNull();
    }
  });

  it('refuses a request without a body with INVALID_BODY', async () => {
    expect((await run(EVENTS, null)).result).toBe('INVALID_BODY');
    expect((await run(EVENTS, '', { headers: [JSON_TYPE, ['Content-Length', '0']] })).result).toBe('INVALID_BODY');
    expect((await run(ATTRIBUTES, null)).result).toBe('INVALID_BODY');
  });

  it('reads a body sent without Content-Length (chunked)', async () => {
    const body = event('page.view');
    const { result, ctx } = await run(EVENTS, body, { headers: [JSON_TYPE, ['Transfer-Encoding', 'chunked']] });
    expect(result).toBeNull();
    expect(ctx.body?.toString()).toBe(body);
  });
});

describe('body-policy stage: size and time limits', () => {
  it('refuses a Content-Length over the cap with BODY_TOO_LARGE without reading the body', async () => {
    const req = fakeRequest([JSON_TYPE, ['Content-Length', String(LIMITS.maxBodyBytes + 1)]]);
    req.write(Buffer.alloc(100, 0x20)); // the start of the body has arrived; the rest never comes
    const ctx = contextFor(req);
    const r = await bodyPolicyStage(EVENTS, LIMITS)(ctx);
    expect(refusedCode(r)).toBe('BODY_TOO_LARGE');
    expect(refusedMessage(r)).toContain(String(LIMITS.maxBodyBytes));
    expect(req.readableLength, 'nothing was read').toBe(100);
    expect(req.listenerCount('data')).toBe(0);
    expect(ctx.body).toBeNull();
  });

  it('accepts a body exactly at the cap', async () => {
    const pad = LIMITS.maxBodyBytes - event('page.view', { pad: '' }).length;
    const body = event('page.view', { pad: 'x'.repeat(pad) });
    expect(Buffer.byteLength(body)).toBe(LIMITS.maxBodyBytes);
    const { result, ctx } = await run(EVENTS, body);
    expect(result).toBeNull();
    expect(ctx.body?.length).toBe(LIMITS.maxBodyBytes);
  });

  it('refuses a body one byte over the cap, declared by Content-Length', async () => {
    const pad = LIMITS.maxBodyBytes + 1 - event('page.view', { pad: '' }).length;
    expect((await run(EVENTS, event('page.view', { pad: 'x'.repeat(pad) }))).result).toBe('BODY_TOO_LARGE');
  });

  it('refuses a chunked body as soon as what has arrived passes the cap, without waiting for the rest', async () => {
    const req = fakeRequest([JSON_TYPE, ['Transfer-Encoding', 'chunked']]);
    const ctx = contextFor(req);
    const pending = bodyPolicyStage(EVENTS, LIMITS)(ctx);
    for (let k = 0; k < 5; k++) req.write(Buffer.alloc(200, 0x20)); // 1000 bytes: under the cap
    req.write(Buffer.alloc(25, 0x20)); // 1025: one over; the body never ends
    expect(refusedCode(await pending)).toBe('BODY_TOO_LARGE');
    expect(req.listenerCount('data'), 'reading stopped').toBe(0);
    expect(ctx.body).toBeNull();
  });

  it('refuses a chunked body one byte over the cap and accepts one exactly at it', async () => {
    const at = event('page.view', { pad: 'x'.repeat(LIMITS.maxBodyBytes - event('page.view', { pad: '' }).length) });
    expect(Buffer.byteLength(at)).toBe(LIMITS.maxBodyBytes);
    const chunked: Headers = [JSON_TYPE, ['Transfer-Encoding', 'chunked']];
    expect((await run(EVENTS, at, { headers: chunked })).result).toBeNull();
    expect((await run(EVENTS, `${at} `, { headers: chunked })).result).toBe('BODY_TOO_LARGE');
  });

  it('refuses a body that has not all arrived within the request timeout with REQUEST_TIMEOUT', async () => {
    const req = fakeRequest([JSON_TYPE, ['Content-Length', '20']]);
    const ctx = contextFor(req);
    const started = Date.now();
    const pending = bodyPolicyStage(EVENTS, { maxBodyBytes: 1024, requestTimeoutMs: 150 })(ctx);
    req.write('{"action":'); // half of it, then nothing
    expect(await pending).toBe('REQUEST_TIMEOUT');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1000);
    expect(req.listenerCount('data'), 'reading stopped').toBe(0);
  });

  it('counts the timeout from the start of the request, not from the start of the body', async () => {
    const req = fakeRequest([JSON_TYPE, ['Content-Length', '20']]);
    const ctx = contextFor(req, {}, Date.now() - 250); // the request began 250 ms ago
    const started = Date.now();
    const result = await bodyPolicyStage(EVENTS, { maxBodyBytes: 1024, requestTimeoutMs: 300 })(ctx);
    expect(result).toBe('REQUEST_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(200);
  });

  it('accepts a body that trickles in within the timeout', async () => {
    const body = event('page.view');
    const req = fakeRequest([JSON_TYPE, ['Content-Length', String(body.length)]]);
    const ctx = contextFor(req);
    const pending = bodyPolicyStage(EVENTS, { maxBodyBytes: 1024, requestTimeoutMs: 2_000 })(ctx);
    for (const ch of body) {
      req.write(ch);
      await new Promise((r) => setTimeout(r, 2));
    }
    req.end();
    expect(await pending).toBeNull();
    expect(ctx.body?.toString()).toBe(body);
  });
});

describe('body-policy stage: strict JSON in UTF-8', () => {
  it('refuses invalid UTF-8 with INVALID_BODY', async () => {
    const cases: Array<[string, Buffer]> = [
      ['a stray 0xff byte', Buffer.concat([Buffer.from('{"action":"a'), Buffer.from([0xff]), Buffer.from('"}')])],
      ['an overlong encoding of "/"', Buffer.concat([Buffer.from('{"action":"a'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])],
      ['an encoded surrogate', Buffer.concat([Buffer.from('{"action":"a'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])],
      ['a truncated sequence', Buffer.concat([Buffer.from('{"action":"a'), Buffer.from([0xe2, 0x9c]), Buffer.from('"}')])],
      ['a lone continuation byte', Buffer.concat([Buffer.from('{"action":"a'), Buffer.from([0x80]), Buffer.from('"}')])],
      ['a code point past U+10FFFF', Buffer.concat([Buffer.from('{"action":"a'), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from('"}')])],
      ['Latin-1 text', Buffer.from('{"action":"café"}', 'latin1')],
    ];
    for (const [what, bytes] of cases) {
      const { result, message } = await run(EVENTS, bytes);
      expect(result, what).toBe('INVALID_BODY');
      expect(message, what).toMatch(/UTF-8/);
    }
  });

  it('refuses a syntax error with INVALID_BODY and says why', async () => {
    const { result, message } = await run(EVENTS, '{"action":"page.view",}');
    expect(result).toBe('INVALID_BODY');
    expect(message).toMatch(/not valid JSON/);
  });

  it('refuses a duplicate key, also when it is spelled with escapes', async () => {
    for (const body of ['{"action":"denied","action":"ok"}', '{"action":"ok","\\u0061ction":"denied"}', '[{"action":"a","x":{"k":1,"k":2}}]']) {
      const { result, message } = await run(EVENTS, body);
      expect(result, body).toBe('INVALID_BODY');
      expect(message, body).toMatch(/duplicate key/);
    }
  });

  it('refuses nesting deeper than 64 levels and accepts 64', async () => {
    const deep = (n: number): string => `{"action":"a","x":${'['.repeat(n - 1)}${']'.repeat(n - 1)}}`;
    expect((await run(EVENTS, deep(64))).result).toBeNull();
    expect((await run(EVENTS, deep(65))).result).toBe('INVALID_BODY');
  });

  it('checks an event name written with escapes as decoded', async () => {
    const key = { eventDenylist: ['transaction.charge'] };
    const { result, message } = await run(EVENTS, '{"\\u0061ction":"transaction.\\u0063harge"}', { key });
    expect(result).toBe('EVENT_NOT_ALLOWED');
    expect(message).toContain('"transaction.charge"');
  });
});

describe('body-policy stage: events', () => {
  const allow = { eventAllowlist: ['page.view', 'checkout.*'] };

  it('admits an event on the allowlist by exact name', async () => {
    expect((await run(EVENTS, event('page.view'), { key: allow })).result).toBeNull();
  });

  it('admits an event on the allowlist by prefix', async () => {
    expect((await run(EVENTS, event('checkout.start'), { key: allow })).result).toBeNull();
    expect((await run(EVENTS, event('checkout.'), { key: allow })).result).toBeNull();
  });

  it('refuses an event not on a non-empty allowlist, naming it', async () => {
    for (const name of ['page.viewed', 'page', 'checkout', 'Page.view', 'xcheckout.start', '']) {
      const { result, message } = await run(EVENTS, event(name), { key: allow });
      expect(result, name).toBe('EVENT_NOT_ALLOWED');
      expect(message, name).toContain(JSON.stringify(name));
    }
  });

  it('admits any event when the key has no lists', async () => {
    expect((await run(EVENTS, event('anything.at.all'))).result).toBeNull();
  });

  it('refuses an event on the denylist, by exact name or prefix, when there is no allowlist', async () => {
    const key = { eventDenylist: ['admin.reset', 'internal.*'] };
    expect((await run(EVENTS, event('admin.reset'), { key })).result).toBe('EVENT_NOT_ALLOWED');
    expect((await run(EVENTS, event('internal.debug'), { key })).result).toBe('EVENT_NOT_ALLOWED');
    expect((await run(EVENTS, event('admin.login'), { key })).result).toBeNull();
  });

  it('lets the denylist win over the allowlist', async () => {
    const key = { eventAllowlist: ['transaction.*'], eventDenylist: ['transaction.charge'] };
    expect((await run(EVENTS, event('transaction.refund'), { key })).result).toBeNull();
    const { result, message } = await run(EVENTS, event('transaction.charge'), { key });
    expect(result).toBe('EVENT_NOT_ALLOWED');
    expect(message).toContain('"transaction.charge"');
  });

  it('lets the denylist win over an exact allowlist entry and over "*"', async () => {
    expect((await run(EVENTS, event('a.b'), { key: { eventAllowlist: ['a.b'], eventDenylist: ['a.*'] } })).result).toBe('EVENT_NOT_ALLOWED');
    expect((await run(EVENTS, event('a.b'), { key: { eventAllowlist: ['*'], eventDenylist: ['a.b'] } })).result).toBe('EVENT_NOT_ALLOWED');
    expect((await run(EVENTS, event('c.d'), { key: { eventAllowlist: ['*'], eventDenylist: ['a.b'] } })).result).toBeNull();
  });

  it('denies everything with a "*" denylist', async () => {
    expect((await run(EVENTS, event('page.view'), { key: { eventDenylist: ['*'] } })).result).toBe('EVENT_NOT_ALLOWED');
  });

  it('admits a batch whose every event is allowed', async () => {
    const body = JSON.stringify([{ action: 'page.view' }, { action: 'checkout.start', n: 1 }, { action: 'checkout.done' }]);
    const { result, ctx } = await run(EVENTS, body, { key: allow });
    expect(result).toBeNull();
    expect(ctx.body?.toString()).toBe(body);
  });

  it('refuses a batch with one denied event among allowed ones, naming it', async () => {
    const key = { eventDenylist: ['transaction.charge'] };
    const body = JSON.stringify([{ action: 'page.view' }, { action: 'transaction.charge' }, { action: 'page.click' }]);
    const { result, message } = await run(EVENTS, body, { key });
    expect(result).toBe('EVENT_NOT_ALLOWED');
    expect(message).toContain('"transaction.charge"');
  });

  it('names the first refused event of a batch', async () => {
    const key = { eventAllowlist: ['page.*'] };
    const body = JSON.stringify([{ action: 'page.view' }, { action: 'first.refused' }, { action: 'second.refused' }]);
    const { result, message } = await run(EVENTS, body, { key });
    expect(result).toBe('EVENT_NOT_ALLOWED');
    expect(message).toContain('"first.refused"');
    expect(message).not.toContain('second.refused');
  });

  it('quotes a refused name and cuts a long one short, so the name cannot shape the message', async () => {
    const hostile = `evil" and "more\n${'x'.repeat(5000)}`;
    const { result, message } = await run(EVENTS, event(hostile), { key: { eventDenylist: ['evil*'] }, limits: { ...LIMITS, maxBodyBytes: 10_000 } });
    expect(result).toBe('EVENT_NOT_ALLOWED');
    expect(message).toContain(JSON.stringify(hostile.slice(0, 200)).slice(0, -1));
    expect(message!.length).toBeLessThan(400);
    expect(message).not.toContain('\n');
  });

  describe('a body without a string at the event field is INVALID_BODY', () => {
    const cases: Array<[string, string]> = [
      ['the field missing', '{"event":"page.view"}'],
      ['the field null', '{"action":null}'],
      ['the field a number', '{"action":42}'],
      ['the field a boolean', '{"action":true}'],
      ['the field an array', '{"action":["page.view"]}'],
      ['the field an object', '{"action":{"name":"page.view"}}'],
      ['the field differently cased', '{"Action":"page.view"}'],
      ['an empty object', '{}'],
      ['a top-level string', '"page.view"'],
      ['a top-level number', '42'],
      ['top-level null', 'null'],
      ['top-level true', 'true'],
      ['a batch containing a nested array', '[[{"action":"page.view"}]]'],
      ['a batch with a nested array after a valid element', '[{"action":"page.view"},[{"action":"page.view"}]]'],
      ['a batch element that is a string', '[{"action":"page.view"},"page.view"]'],
      ['a batch element that is null', '[null]'],
      ['a batch element without the field', '[{"action":"page.view"},{"other":"x"}]'],
      ['a batch element with a number at the field', '[{"action":"page.view"},{"action":1}]'],
    ];
    for (const [what, body] of cases) {
      it(`refuses ${what}`, async () => {
        // Even a key with no lists at all: the body's shape is checked first.
        const { result, message } = await run(EVENTS, body);
        expect(result).toBe('INVALID_BODY');
        expect(message).toBeTruthy();
      });
    }

    it('names the field and the batch element at fault', async () => {
      const { message } = await run(EVENTS, '[{"action":"a"},{"action":null}]');
      expect(message).toContain('"action"');
      expect(message).toContain('1');
    });
  });

  it('does not mistake an inherited member name for the event field', async () => {
    const { result } = await run({ events: { field: 'toString' }, profileAttributes: false }, '{"action":"x"}');
    expect(result).toBe('INVALID_BODY');
    const ok = await run({ events: { field: '__proto__' }, profileAttributes: false }, '{"__proto__":"page.view"}', { key: { eventAllowlist: ['page.view'] } });
    expect(ok.result).toBeNull();
  });
});

describe('body-policy stage: profile attributes', () => {
  const key = { profileAttributeAllowlist: ['firstName', 'tags', 'address'] };

  it('admits a body whose every top-level key is on the allowlist', async () => {
    const body = '{"firstName":"Ada","tags":["a","b"]}';
    const { result, ctx } = await run(ATTRIBUTES, body, { key });
    expect(result).toBeNull();
    expect(ctx.body?.toString()).toBe(body);
  });

  it('refuses a body with one attribute not on the allowlist, naming it', async () => {
    const { result, message } = await run(ATTRIBUTES, '{"firstName":"Ada","email":"ada@example.com","tags":[]}', { key });
    expect(result).toBe('ATTRIBUTE_NOT_ALLOWED');
    expect(message).toContain('"email"');
  });

  it('names the first attribute not on the allowlist', async () => {
    const { message } = await run(ATTRIBUTES, '{"firstName":"Ada","email":"e","phone":"p"}', { key });
    expect(message).toContain('"email"');
    expect(message).not.toContain('phone');
  });

  it('admits a nested object under an allowed key whole, whatever its own keys', async () => {
    const body = '{"address":{"street":"x","email":"nested keys are not checked","deep":{"phone":1}}}';
    expect((await run(ATTRIBUTES, body, { key })).result).toBeNull();
  });

  it('admits any attribute when the allowlist is empty', async () => {
    expect((await run(ATTRIBUTES, '{"anything":1,"email":"e","__proto__":{}}')).result).toBeNull();
  });

  it('admits an empty object', async () => {
    expect((await run(ATTRIBUTES, '{}', { key })).result).toBeNull();
  });

  it('checks an attribute spelled with escapes as decoded', async () => {
    const { result, message } = await run(ATTRIBUTES, '{"\\u0065mail":"e"}', { key });
    expect(result).toBe('ATTRIBUTE_NOT_ALLOWED');
    expect(message).toContain('"email"');
  });

  it('refuses a body that is not an object with INVALID_BODY, with or without an allowlist', async () => {
    for (const body of ['[{"firstName":"Ada"}]', '[]', '"firstName"', '1', 'null', 'true']) {
      expect((await run(ATTRIBUTES, body, { key })).result, body).toBe('INVALID_BODY');
      expect((await run(ATTRIBUTES, body)).result, body).toBe('INVALID_BODY');
    }
  });

  it('refuses a duplicate attribute with INVALID_BODY', async () => {
    expect((await run(ATTRIBUTES, '{"firstName":"a","firstName":"b"}', { key })).result).toBe('INVALID_BODY');
  });
});

describe('body-policy stage: a route with both events and attributes', () => {
  const both: Route = { events: { field: 'action' }, profileAttributes: true };

  it('checks the event and the attributes of one object', async () => {
    const key = { eventDenylist: ['bad'], profileAttributeAllowlist: ['action', 'name'] };
    expect((await run(both, '{"action":"good","name":"n"}', { key })).result).toBeNull();
    expect((await run(both, '{"action":"bad","name":"n"}', { key })).result).toBe('EVENT_NOT_ALLOWED');
    expect((await run(both, '{"action":"good","email":"e"}', { key })).result).toBe('ATTRIBUTE_NOT_ALLOWED');
  });

  it('refuses a batch, which carries no attributes of one profile', async () => {
    expect((await run(both, '[{"action":"good"}]')).result).toBe('INVALID_BODY');
  });
});

describe('body-policy stage: the bytes received', () => {
  it('keeps the exact bytes on the context, whitespace, key order and escapes included', async () => {
    const body = Buffer.from(' {\r\n\t"z" :1 ,"action"\t:  "page.\\u0076iew",  "a":[ ],"ü":"✓" }\n\n', 'utf8');
    const { result, ctx } = await run(EVENTS, body);
    expect(result).toBeNull();
    expect(Buffer.isBuffer(ctx.body)).toBe(true);
    expect(ctx.body!.equals(body)).toBe(true);
  });

  it('keeps the bytes of a body that arrived in many chunks', async () => {
    const body = Buffer.from(JSON.stringify([{ action: 'a', text: 'ü✓😀'.repeat(20) }, { action: 'b' }]));
    const req = fakeRequest([JSON_TYPE, ['Transfer-Encoding', 'chunked']]);
    const ctx = contextFor(req);
    const pending = bodyPolicyStage(EVENTS, LIMITS)(ctx);
    // Split inside multi-byte characters on purpose.
    for (let k = 0; k < body.length; k += 7) req.write(body.subarray(k, k + 7));
    req.end();
    expect(await pending).toBeNull();
    expect(ctx.body!.equals(body)).toBe(true);
  });

  it('leaves the body unset when the request is refused before reading it', async () => {
    const { ctx } = await run(EVENTS, event('page.view'), { headers: [['Content-Type', 'text/plain'], ['Content-Length', '22']] });
    expect(ctx.body).toBeNull();
  });
});
