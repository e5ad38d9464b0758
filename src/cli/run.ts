import { runVerb, usageOf, CONNECTION_HELP, type Io } from './command.js';
import { CliError, EXIT, UsageError } from './exit-codes.js';
import { RESOURCES } from './resources.js';
import { EXPORT_USAGE, runExport, runImport } from './transfer-command.js';
import { keygateVersion } from './version.js';

export const USAGE = `usage: keygate <command> …
  keygate serve --config <file>        start the gateway and admin ports
  keygate check-config <file>          validate a config file (exit 0 when valid)
  keygate export --config <file>       write the whole store as a stream (backup, migration)
  keygate import --config <file>       load a stream into an empty store
${RESOURCES.map((r) => `  keygate ${r.name} ${Object.keys(r.verbs).join('|')}\n      ${r.summary}`).join('\n')}
  keygate --version                    print keygate's version
  keygate <command> help               the flags of a command
${CONNECTION_HELP}
exit codes: 0 done; 1 the admin API answered an error, or an export or import failed; 2 bad command
line; 3 the admin API cannot be reached, or the URL is not a keygate admin port; 4 no admin token,
or it was refused (401) or lacks the scope (403); 5 import refused before writing anything.`;

const isHelp = (a: string | undefined): boolean => a === 'help' || a === '--help' || a === '-h';

/**
 * Every command but `serve` and `check-config` (cli.ts runs those): returns the exit code,
 * or throws a CliError (or parseArgs' error) that cli.ts prints.
 */
export async function runCommand(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === 'version' || command === '-V' || command === '-v') {
    io.out(keygateVersion());
    return EXIT.OK;
  }
  if (command === undefined || isHelp(command)) {
    io.out(USAGE);
    return command === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (command === 'export' || command === 'import') {
    if (isHelp(rest[0])) {
      io.out(EXPORT_USAGE);
      return EXIT.OK;
    }
    return command === 'export' ? runExport(rest, io) : runImport(rest, io);
  }
  const resource = RESOURCES.find((r) => r.name === command);
  if (resource === undefined) throw new UsageError(`unknown command "${command}" (keygate help lists them)`);
  let [verbName, ...args] = rest;
  if (isHelp(verbName)) {
    io.out(usageOf(resource));
    return EXIT.OK;
  }
  // `keygate audit --limit 5`, `keygate usage <key id>`: the resource's default verb.
  if (resource.defaultVerb !== undefined && (verbName === undefined || !(verbName in resource.verbs))) {
    args = verbName === undefined ? [] : [verbName, ...args];
    verbName = resource.defaultVerb;
  }
  if (verbName === undefined) {
    io.err(usageOf(resource));
    return EXIT.USAGE;
  }
  const verb = resource.verbs[verbName];
  if (verb === undefined) throw new UsageError(`unknown ${resource.name} command "${verbName}"\n${usageOf(resource)}`);
  await runVerb(resource, verbName, verb, args, io);
  return EXIT.OK;
}

/** The message and exit code for anything runCommand throws. */
export function failure(err: unknown): { message: string; code: number } {
  if (err instanceof CliError) return { message: err.message, code: err.exitCode };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return { message: (err as Error).message, code: EXIT.USAGE };
  return { message: (err as Error).message, code: EXIT.FAILED };
}
