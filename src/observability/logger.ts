import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs on stdout. Secrets never reach a log: nothing logs request headers or bodies,
 * and these paths are redacted should any object carrying them be logged by mistake.
 */
export function createLogger(opts: { level?: string; sync?: boolean; fd?: 1 | 2 } = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.KEYGATE_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      // Level names and ISO 8601 times, as in the access log, so the two are read and grepped together.
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['secret', '*.secret', 'token', '*.token', 'salt', '*.salt', 'secretHash', '*.secretHash', 'authorization', '*.authorization', 'headers.authorization', 'headers["x-api-key"]'],
        censor: '[redacted]',
      },
    },
    // Asynchronous writes keep logging off the request path; `sync` is for the CLI's short runs,
    // `fd: 2` for commands whose stdout is their output (export).
    pino.destination({ fd: opts.fd ?? 1, sync: opts.sync ?? false }),
  );
}
