import { z } from 'zod';
import { isJsonContentType, parseJsonBody } from '../../domain/json-body.js';
import { formatIssues } from '../../domain/issues.js';
import type { LeakReporter } from '../../domain/leak.js';
import type { CompiledRoute, FinalHandler } from '../pipeline/context.js';
import { clientGone } from '../pipeline/run.js';
import { readBody } from '../request/read-body.js';
import { methodStage } from '../tokens/token-routes.js';
import { signatureValid, type GithubKeyring } from './github-keys.js';

export const SECRET_SCANNING_PATH = '/auth/secret-scanning';

/** GitHub sends batches; a payload is small, and the cap keeps an unsigned one from holding memory. */
const MAX_BODY_BYTES = 256 * 1024;
const MAX_TOKENS = 1_000;

const payloadSchema = z.array(z.object({
  token: z.string().max(1_000),
  type: z.string().max(200),
  url: z.string().max(4_000).default(''),
  source: z.string().max(200).default(''),
})).max(MAX_TOKENS);

const NOT_SIGNED = 'The payload is not signed by a known key (Github-Public-Key-Identifier, Github-Public-Key-Signature).';

export interface SecretScanningDeps {
  keyring: GithubKeyring;
  report: LeakReporter;
  maxBodyBytes: number;
  requestTimeoutMs: number;
}

/**
 * `POST /auth/secret-scanning`: GitHub's secret scanning partner endpoint. The raw body must
 * carry a valid ECDSA signature by one of GitHub's keys (else 401, and nothing changes); each
 * reported token in keygate's format is looked up and its key gets the leak action; the
 * answer is `[{token_raw, token_type, label}]` for those tokens.
 */
export function secretScanningHandler({ keyring, report, maxBodyBytes, requestTimeoutMs }: SecretScanningDeps): FinalHandler {
  const cap = Math.min(maxBodyBytes, MAX_BODY_BYTES);
  return (ctx, end) => {
    if (!isJsonContentType(ctx.req.headers['content-type'])) return end.refuse(ctx, 'UNSUPPORTED_MEDIA_TYPE', null, null);
    const keyId = ctx.req.headers['github-public-key-identifier'];
    const signature = ctx.req.headers['github-public-key-signature'];
    const work = async (): Promise<void> => {
      const body = await readBody(ctx.req, cap, requestTimeoutMs - (performance.now() - ctx.started));
      if (body === 'timeout') return end.refuse(ctx, 'REQUEST_TIMEOUT', null, null);
      if (body === 'too-large') return end.refuse(ctx, 'BODY_TOO_LARGE', `The body is over ${cap} bytes.`, null);
      if (typeof keyId !== 'string' || typeof signature !== 'string') return end.refuse(ctx, 'UNAUTHENTICATED', NOT_SIGNED, null);
      const key = await keyring.key(keyId);
      if (key === null || !signatureValid(key, body, signature)) return end.refuse(ctx, 'UNAUTHENTICATED', NOT_SIGNED, null);
      const json = parseJsonBody(body);
      if (!json.ok) return end.refuse(ctx, 'INVALID_BODY', json.message, null);
      const parsed = payloadSchema.safeParse(json.value);
      if (!parsed.success) return end.refuse(ctx, 'BAD_REQUEST', formatIssues(parsed.error.issues).join('; '), null);
      const verdicts = await report(parsed.data);
      end.json(ctx, 200, JSON.stringify(verdicts), { 'cache-control': 'no-store' });
    };
    work().catch((err: unknown) => {
      if (clientGone(ctx.req, err)) return end.closed(ctx, 0);
      end.logger.warn({ err: { message: (err as Error).message }, requestId: ctx.requestId }, 'secret scanning report failed');
      if (!ctx.res.headersSent) end.refuse(ctx, 'STORE_UNAVAILABLE', 'The report could not be applied; send it again.', null);
    });
  };
}

/** The route, or null when no GitHub key is configured (then the path is 404 like any unknown one). */
export function compileSecretScanningRoute(deps: SecretScanningDeps): CompiledRoute | null {
  if (!deps.keyring.configuredAtAll) return null;
  return { name: 'secret-scanning', stages: [methodStage(['POST'])], checks: [], final: secretScanningHandler(deps), upstreams: [] };
}
