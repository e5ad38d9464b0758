import type { KeyType } from '../../domain/api-key.js';
import type { KeyStage } from '../pipeline/context.js';

/** Present only on routes that restrict key types. */
export function keyTypeStage(allowed: readonly KeyType[]): KeyStage {
  const set = new Set(allowed);
  return (ctx) => (set.has(ctx.policy.type) ? null : 'KEY_TYPE_NOT_ALLOWED');
}
