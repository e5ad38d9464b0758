#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadConfigFile } from './config/load.js';
import { UsageError } from './cli/exit-codes.js';
import { failure, runCommand } from './cli/run.js';
import { createLogger } from './observability/logger.js';

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const err = (s: string): void => void process.stderr.write(`${s}\n`);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true });
      if (!values.config) throw new UsageError('serve needs --config <file>');
      const result = loadConfigFile(values.config);
      if (!result.ok) {
        for (const e of result.errors) err(`${values.config}: ${e}`);
        return 1;
      }
      const logger = createLogger();
      for (const w of result.warnings) logger.warn(`WARNING ${w}`);
      const { serve } = await import('./main.js');
      try {
        await serve(result.config, logger);
      } catch (e) {
        logger.fatal({ err: e }, `could not start: ${(e as Error).message}`);
        await new Promise<void>((resolve) => logger.flush(() => resolve()));
        // Whatever did start (a listening port, a worker's IPC channel) must not keep a failed start alive.
        process.exit(1);
      }
      return -1; // keep running
    }
    case 'check-config': {
      const file = rest[0];
      if (file === undefined || rest.length > 1) throw new UsageError('check-config takes one file');
      const result = loadConfigFile(file);
      if (!result.ok) {
        for (const e of result.errors) err(`${file}: ${e}`);
        return 1;
      }
      for (const w of result.warnings) err(`warning: ${w}`);
      out('OK');
      return 0;
    }
    default:
      return runCommand(argv, { out, err, env: process.env });
  }
}

/**
 * Export and import end with their store closed, but a Redis client's timers may hold the
 * process a few seconds longer: exit once stdout and stderr have flushed.
 */
function exitWhenFlushed(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

const args = process.argv.slice(2);
main(args).then(
  (code) => {
    if (code < 0) return;
    process.exitCode = code;
    if (args[0] === 'export' || args[0] === 'import') exitWhenFlushed(code);
  },
  (e: unknown) => {
    const { message, code } = failure(e);
    err(`keygate: ${message}`);
    process.exitCode = code;
    if (args[0] === 'export' || args[0] === 'import') exitWhenFlushed(code);
  },
);
