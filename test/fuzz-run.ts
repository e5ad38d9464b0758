// `npm run fuzz`: the property-based tests (every *.fuzz.test.ts) with many runs and a random
// seed, printed first so a failure can be replayed with FUZZ_SEED=<seed> npm run fuzz.
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';

const seed = process.env.FUZZ_SEED !== undefined && process.env.FUZZ_SEED !== '' ? process.env.FUZZ_SEED : String(randomInt(2 ** 31));
const runs = process.env.FUZZ_RUNS !== undefined && process.env.FUZZ_RUNS !== '' ? process.env.FUZZ_RUNS : '20000';
console.log(`fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs} (replay with FUZZ_SEED=${seed} FUZZ_RUNS=${runs} npm run fuzz)`);
// Many runs take far longer than a test's usual time limit.
const result = spawnSync('npx', ['vitest', 'run', '--testTimeout=1800000', '.fuzz.test.ts', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_SEED: seed, FUZZ_RUNS: runs },
});
console.log(`fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs} ${result.status === 0 ? 'passed' : 'FAILED'}`);
process.exit(result.status ?? 1);
