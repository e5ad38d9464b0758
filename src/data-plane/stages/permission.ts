import type { KeyStage } from '../pipeline/context.js';

/** The route's permission against the key's effective permissions (key ∩ owner, precompiled). */
export function permissionStage(permission: string): KeyStage {
  return (ctx) => (ctx.policy.allows(permission) ? null : 'PERMISSION_DENIED');
}
