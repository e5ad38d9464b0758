/**
 * The CLI's exit codes (README, "Commands"). Scripts branch on them, so each means one thing.
 */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** The admin API answered with an error (printed with its status, code and message), or an export or import failed while writing. */
  FAILED: 1,
  /** The command line is wrong: unknown command or flag, a bad flag value (a date, a number, a URL). Nothing was sent. */
  USAGE: 2,
  /** The admin API could not be reached (the URL and the cause are printed), or the URL is not a keygate admin port. */
  UNREACHABLE: 3,
  /** No admin token was given, the admin API refused it (401), or it may not do this (403). */
  AUTH: 4,
  /** Import refused before writing anything: the target store is not empty, or the stream is not a complete export for this deployment. */
  IMPORT_REFUSED: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI reports in one message, with the exit code that classifies it. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: ExitCode) {
    super(message);
  }
}

/** A usage error: exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}
