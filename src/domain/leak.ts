// Leaked-secret reports in the format of GitHub's secret scanning partner program: what a
// scanner posts, and what keygate answers for each token that looks like one of its keys.

/** One token a scanner found: `url` is where (a commit, an issue), `source` what kind of place. */
export interface LeakReport { token: string; type: string; url: string; source: string }

/**
 * The answer for one token: `true_positive` when it is a live keygate key's secret (the leak
 * action was applied), `false_positive` when it has keygate's format and checksum but no key
 * has it. Tokens not in keygate's format get no answer.
 */
export interface LeakVerdict { token_raw: string; token_type: string; label: 'true_positive' | 'false_positive' }

/** Applies the configured leak action to each reported token's key. */
export type LeakReporter = (reports: readonly LeakReport[]) => Promise<LeakVerdict[]>;
