import type { Stage } from '../context.js';

/** The route's permission against the key's effective permissions (key ∩ owner, precompiled). */
export function permissionStage(permission: string): Stage {
  return (ctx) => (ctx.policy!.allows(permission) ? null : 'PERMISSION_DENIED');
}
