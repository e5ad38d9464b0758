// The CLI run in process (the code of dist/cli.js without a Node start per command).
import { failure, runCommand } from '../../src/cli/run.js';

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs `keygate <args>` in this process with `env` as its environment; never throws. */
export async function cliIn(env: Record<string, string | undefined>, args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  let code: number;
  try {
    code = await runCommand(args, { out: (s) => out.push(s), err: (s) => err.push(s), env });
  } catch (e) {
    const f = failure(e);
    err.push(`keygate: ${f.message}`);
    code = f.code;
  }
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}
