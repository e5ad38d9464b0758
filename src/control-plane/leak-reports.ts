import type { Actor } from '../domain/entities.js';
import type { LeakReporter, LeakVerdict } from '../domain/leak.js';
import { checkSecretFormat } from '../domain/secret.js';
import { KeygateError } from '../errors/catalogue.js';
import type { KeyService } from './key-service.js';

const SCANNER: Actor = { type: 'system', name: 'github-secret-scanning' };

/**
 * What a secret scanner's report does: each token in keygate's format (prefix and checksum)
 * is looked up by its hash and its key gets `action`, audited with the scanner's source and
 * URL; the answer labels those tokens. Tokens of other formats are not answered for.
 */
export function leakReporter(keys: KeyService, action: 'disable' | 'notify'): LeakReporter {
  return async (reports) => {
    const out: LeakVerdict[] = [];
    // A token found in several places in one batch is acted on once, and answered for each.
    const labels = new Map<string, LeakVerdict['label']>();
    for (const r of reports) {
      if (checkSecretFormat(r.token) === null) continue;
      const known = labels.get(r.token);
      if (known !== undefined) {
        out.push({ token_raw: r.token, token_type: r.type, label: known });
        continue;
      }
      let label: LeakVerdict['label'] = 'true_positive';
      try {
        await keys.reportLeak(r.token, { source: r.source === '' ? 'github' : `github:${r.source}`, url: r.url === '' ? undefined : r.url }, action, SCANNER);
      } catch (err) {
        if (!(err instanceof KeygateError) || err.code !== 'KEY_NOT_FOUND') throw err;
        label = 'false_positive';
      }
      labels.set(r.token, label);
      out.push({ token_raw: r.token, token_type: r.type, label });
    }
    return out;
  };
}
