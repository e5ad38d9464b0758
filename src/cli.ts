#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfigFile } from './config/load.js';
import { KEYS_USAGE, UsageError, runKeysCommand } from './cli/keys-command.js';
import { createLogger } from './observability/logger.js';

const USAGE = `usage:
  keygate serve --config <file>      start the gateway and admin ports
  keygate check-config <file>        validate a config file (exit 0 when valid)
  keygate keys <command> …           manage keys over the admin API (keygate keys help)
  keygate --version                  print the version`;

/** The version of the installed package: package.json beside dist/ (or src/), wherever that is installed. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return String(pkg.version);
}

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
    case 'keys':
      return runKeysCommand(rest, process.env, out, err);
    case '--version':
    case '-v':
    case 'version':
      out(version());
      return 0;
    case undefined:
    case 'help':
    case '--help':
      out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`keygate: ${(e as Error).message}`);
      process.exitCode = 2;
    } else {
      err(`keygate: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  },
);

export { KEYS_USAGE };
