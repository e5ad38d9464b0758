import { z } from 'zod';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors/catalogue.js';
import { apiRegistry, errorSchema } from './api-schemas.js';
import type { AdminRoute } from './routes/types.js';

type JsonSchema = Record<string, unknown>;

/**
 * A zod schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect), without `$schema`. Answers'
 * named schemas (`apiRegistry`) go to `components` and are referred to by `$ref`.
 */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output', components: Record<string, unknown>): JsonSchema {
  const generated = z.toJSONSchema(schema, {
    io, unrepresentable: 'any', target: 'draft-2020-12', ...(io === 'output' ? { metadata: apiRegistry } : {}),
  }) as JsonSchema;
  const { $schema: _dialect, $defs, ...rest } = JSON.parse(JSON.stringify(generated).replaceAll('"#/$defs/', '"#/components/schemas/')) as JsonSchema & { $defs?: Record<string, JsonSchema> };
  for (const [name, def] of Object.entries($defs ?? {})) {
    if (components[name] !== undefined && JSON.stringify(components[name]) !== JSON.stringify(def)) throw new Error(`two schemas named ${name}`);
    components[name] = def;
  }
  return rest;
}

const oasPath = (path: string): string => path.replace(/:([A-Za-z]+)/g, '{$1}');
const pathParams = (path: string): string[] => [...path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);

function operationId(route: AdminRoute): string {
  const words = route.path.split('/').slice(2).map((p) => (p.startsWith(':') ? 'by-' + p.slice(1) : p));
  return [route.method.toLowerCase(), ...words].join('-').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

const STATUS_TEXT: Record<number, string> = {
  400: 'A bad request: the message names every bad field',
  401: 'No valid admin token',
  403: 'The token lacks the scope (ADMIN_SCOPE_MISSING names it) or the call is not for a confined token',
  404: 'No such resource (or one of a workspace the token does not reach)',
  409: 'A conflict with the current state',
  412: 'If-Match names a state the resource no longer has',
  413: 'The body is over 1 MiB',
  415: 'The body is not JSON in UTF-8',
};

/**
 * The OpenAPI 3.1 document of the admin API, built from the routes the server serves and the
 * schemas it validates and answers with, so the two cannot drift apart.
 */
export function buildOpenApi(routes: readonly AdminRoute[], version: string): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  const components: Record<string, unknown> = {};
  jsonSchema(errorSchema, 'output', components);
  const errorRef = { $ref: '#/components/schemas/Error' };
  for (const route of routes) {
    const parameters: unknown[] = pathParams(route.path).map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
    if (route.query) {
      const q = jsonSchema(route.query, 'input', components) as { properties?: Record<string, JsonSchema>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) {
        const { description, ...rest } = schema as JsonSchema & { description?: string };
        parameters.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema: rest, ...(typeof description === 'string' ? { description } : {}) });
      }
    }
    const writes = route.method === 'PATCH' || route.method === 'DELETE';
    if (writes && route.path.includes(':')) {
      parameters.push({ name: 'If-Match', in: 'header', required: false, schema: { type: 'string' }, description: 'The ETag of the state this change is for; 412 when the resource has moved on' });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, schema] of Object.entries(route.responses)) {
      const headers: Record<string, unknown> = {};
      if (status === '201') headers.Location = { schema: { type: 'string' }, description: 'The URL of the new resource' };
      // A single resource's answer carries its ETag (for If-Match).
      if ((schema && /\/:[A-Za-z]+$/.test(route.path)) || status === '201') headers.ETag = { schema: { type: 'string' }, description: 'The state of the resource, for If-Match' };
      responses[status] = {
        description: status === '204' ? 'Done; no body' : status === '201' ? 'Created' : 'OK',
        ...(Object.keys(headers).length > 0 ? { headers } : {}),
        ...(schema ? { content: { 'application/json': { schema: jsonSchema(schema, 'output', components) } } } : {}),
      };
    }
    const errorCodes = new Set<ErrorCode>(['BAD_REQUEST', 'UNAUTHENTICATED', ...(route.errors ?? [])]);
    if (route.scope !== null) errorCodes.add('ADMIN_SCOPE_MISSING');
    if (route.body) ['BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'INVALID_BODY'].forEach((c) => errorCodes.add(c as ErrorCode));
    const byStatus = new Map<number, string[]>();
    for (const code of errorCodes) {
      const { status } = ERROR_CATALOGUE[code];
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
    for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
      responses[String(status)] = {
        description: `${STATUS_TEXT[status] ?? 'Refused'}: ${codes.join(', ')}`,
        content: { 'application/json': { schema: errorRef } },
      };
    }
    // Any call may also meet a store that cannot answer (503), a request too slow (408) and the like.
    responses.default = { description: 'Any other refusal, in the same shape (see the error codes in the README)', content: { 'application/json': { schema: errorRef } } };
    const operation: Record<string, unknown> = {
      operationId: operationId(route),
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.tag],
      'x-required-scope': route.scope ?? 'any valid admin token',
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: route.method === 'POST' && !route.path.endsWith('/rotate'), content: { 'application/json': { schema: jsonSchema(route.body, 'input', components) } } } } : {}),
      responses,
    };
    (paths[oasPath(route.path)] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'keygate admin API',
      version,
      description: 'The admin port of keygate. Every /v1 call takes `Authorization: Bearer <admin token>`; each operation names the scope it needs (`x-required-scope`). Lists answer `{items, nextCursor}`: pass `nextCursor` back as `cursor`.',
    },
    servers: [{ url: '/' }],
    security: [{ adminToken: [] }],
    tags: [...new Set(routes.map((r) => r.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'An admin token: one of the config file, or one made at /v1/admin-tokens' } },
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}
