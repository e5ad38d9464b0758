import type { KeyStage } from '../pipeline/context.js';

/** Keys without an allowlist skip the check; a client whose address is unknown is refused. */
export function ipAllowlistStage(): KeyStage {
  return (ctx) => {
    const { policy } = ctx;
    if (!policy.ipRestricted) return null;
    return ctx.clientIp !== null && policy.ipAllowed(ctx.clientIp) ? null : 'IP_NOT_ALLOWED';
  };
}
