import type { KeyStage } from '../pipeline/context.js';

/**
 * On routes with `profileScope: <param>`, a request speaking for a profile (a simple-auth
 * token) may only name its own profile in that path parameter. Other credentials are not
 * restricted by this stage.
 */
export function profileScopeStage(param: string): KeyStage {
  return (ctx) => {
    if (ctx.profile === null) return null;
    const raw = ctx.params[param];
    if (raw === undefined) return 'PROFILE_SCOPE';
    let value: string;
    try {
      value = decodeURIComponent(raw);
    } catch {
      return 'PROFILE_SCOPE';
    }
    return value === ctx.profile ? null : 'PROFILE_SCOPE';
  };
}
