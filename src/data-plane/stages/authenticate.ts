import type { KeyResolver } from '../key-resolver.js';
import { readCredential } from '../request/credentials.js';
import type { RequestContext, Stage, StageResult } from '../pipeline/context.js';
import type { TokenVerifier } from '../tokens/token-verifier.js';
import type { Refusal } from '../../errors/http.js';

/**
 * Credential → compiled policy. Unknown secrets, bad checksums, Basic credentials naming
 * another workspace and Basic on a key that may not use it all give the same 401, so the
 * answer never tells which part was wrong. A token is verified by `tokens`; without a verifier
 * it is refused with `onToken` (or as TOKEN_INVALID).
 */
export function authenticateStage(resolver: KeyResolver, tokens: TokenVerifier | null, onToken: Refusal | null = null): Stage {
  const finish = (ctx: RequestContext, basicWorkspace: string | null, res: Awaited<ReturnType<KeyResolver['resolve']>>): StageResult => {
    if (!res.ok) return res.code;
    const policy = res.policy;
    if (basicWorkspace !== null && (policy.type !== 'workspace' || !policy.basicAuth || policy.workspaceId !== basicWorkspace)) {
      return 'UNAUTHENTICATED';
    }
    ctx.policy = policy;
    ctx.secretHash = res.hash;
    return null;
  };
  return (ctx) => {
    const cred = readCredential(ctx.scan);
    switch (cred.kind) {
      case 'none':
      case 'invalid':
        return 'UNAUTHENTICATED';
      case 'ambiguous':
        return 'AMBIGUOUS_CREDENTIALS';
      case 'token':
        if (tokens) return tokens.verify(ctx, cred.token);
        return onToken ?? 'TOKEN_INVALID';
      case 'secret':
      case 'basic': {
        // The resolver checks the secret's format and checksum before any HMAC or store lookup;
        // a secret repeated on one connection is recognised without either (CredentialMemo).
        const basicWorkspace = cred.kind === 'basic' ? cred.workspaceId : null;
        const res = resolver.resolve(cred.secret, ctx.credential);
        return res instanceof Promise ? res.then((r) => finish(ctx, basicWorkspace, r)) : finish(ctx, basicWorkspace, res);
      }
    }
  };
}
