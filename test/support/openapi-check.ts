// Checks admin answers against the OpenAPI document: the operation the request reached, the
// status it answered, and the schema of that status's body. The shared admin client
// (keygate.ts) runs every answer through it, so the whole admin test suite checks the
// document against the server.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { adminOpenApi } from '../../src/control-plane/admin-server.js';

type Json = Record<string, any>;
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

interface Operation { template: RegExp; path: string; methods: Map<string, Json> }

let compiled: { ops: Operation[]; validators: Map<string, ValidateFunction> } | null = null;

/**
 * Builds the document and compiles the validator of every answer once (the first admin call
 * would otherwise pay for it, and tests that time their calls would see it).
 */
export function prepareAdminChecks(): NonNullable<typeof compiled> {
  if (compiled) return compiled;
  const doc = adminOpenApi() as Json;
  const ops: Operation[] = Object.entries(doc.paths as Json).map(([path, methods]) => ({
    path,
    template: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
    methods: new Map(Object.entries(methods as Json)),
  }));
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');
  const compile = (schema: unknown): ValidateFunction =>
    ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/')) as Json);
  const validators = new Map<string, ValidateFunction>([['error', compile({ $ref: '#/components/schemas/Error' })]]);
  for (const op of ops) {
    for (const [method, operation] of op.methods) {
      for (const [status, response] of Object.entries(operation.responses as Json)) {
        const schema = (response as Json).content?.['application/json']?.schema;
        if (schema !== undefined) validators.set(`${method.toUpperCase()} ${op.path} ${status}`, compile(schema));
      }
    }
  }
  compiled = { ops, validators };
  return compiled;
}

/** The mismatches between an admin answer and the document (empty when it conforms). */
export function adminResponseMismatches(method: string, url: string, status: number, body: unknown, headers: Headers): string[] {
  const path = new URL(url, 'http://admin').pathname;
  if (!path.startsWith('/v1/')) return [];
  const { ops, validators } = prepareAdminChecks();
  // A literal path wins over a template (`/v1/signing-keys/rotate` over `/v1/signing-keys/{id}`), as in the router.
  const matching = ops.filter((o) => o.template.test(path)).sort((x, y) => x.path.split('{').length - y.path.split('{').length);
  const op = matching.find((o) => o.methods.has(method.toLowerCase())) ?? matching[0];
  const where = `${method} ${path} → ${status}`;
  const isError = status >= 400;
  let response: Json | undefined;
  let key: string;
  if (!op || !op.methods.has(method.toLowerCase())) {
    // A path or method the document does not have: only a catalogued refusal may answer it.
    if (!isError) return [`${where}: no such operation in the OpenAPI document`];
    response = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    key = 'error';
  } else {
    const operation = op.methods.get(method.toLowerCase())!;
    const responses = operation.responses as Json;
    response = responses[String(status)] ?? (isError ? responses.default : undefined);
    if (!response) return [`${where}: status ${status} is not documented for ${method} ${op.path}`];
    key = `${method.toUpperCase()} ${op.path} ${responses[String(status)] ? status : 'default'}`;
  }
  const problems: string[] = [];
  const schema = response.content?.['application/json']?.schema as Json | undefined;
  if (schema === undefined) {
    if (body !== null && body !== '' && body !== undefined) problems.push(`${where}: documented without a body, answered ${JSON.stringify(body).slice(0, 200)}`);
  } else {
    const validate = validators.get(key)!;
    if (!validate(body)) problems.push(`${where}: body does not match its schema: ${JSON.stringify(validate.errors?.slice(0, 5))}`);
  }
  for (const name of Object.keys((response.headers as Json | undefined) ?? {})) {
    if (headers.get(name) === null) problems.push(`${where}: header ${name} is documented but missing`);
  }
  return problems;
}

/** Throws when an admin answer does not conform to the document. */
export function checkAdminResponse(method: string, url: string, status: number, body: unknown, headers: Headers): void {
  const problems = adminResponseMismatches(method, url, status, body, headers);
  if (problems.length > 0) throw new Error(`The admin answer does not match the OpenAPI document:\n${problems.join('\n')}`);
}
