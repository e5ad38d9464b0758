import fc from 'fast-check';

// Every property-based test reads its seed and run count here. `npm test` runs each property
// with a fixed seed and a modest count, so the suite is deterministic and quick; `npm run fuzz`
// sets FUZZ_RUNS (many runs) and FUZZ_SEED (random, printed at the start), and a failure is
// replayed with `FUZZ_SEED=<seed> npm run fuzz` (fast-check's report also gives the exact path).

/** The seed `npm test` uses. */
export const DEFAULT_FUZZ_SEED = 20261203;

function readInt(name: string): number | null {
  const text = process.env[name];
  if (text === undefined || text === '') return null;
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(text)}`);
  return n;
}

export const FUZZ_SEED = readInt('FUZZ_SEED') ?? DEFAULT_FUZZ_SEED;
const FUZZ_RUNS = readInt('FUZZ_RUNS');

/**
 * Parameters for `fc.assert`: `runs` is the count under `npm test`; FUZZ_RUNS replaces it,
 * scaled by `weight` for properties that cost far more per run (a real request over a socket).
 */
export function fuzz<T>(runs: number, weight = 1): fc.Parameters<T> {
  const numRuns = FUZZ_RUNS === null ? runs : Math.max(runs, Math.round(FUZZ_RUNS * weight));
  return { seed: FUZZ_SEED, numRuns };
}

/** Every UTF-16 code unit, lone surrogates included: what a JS string can hold. */
export const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Strings of arbitrary code units, biased towards the characters parsers care about. */
export function hostileString(special: string, maxLength = 40): fc.Arbitrary<string> {
  return fc.string({
    unit: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...special) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }) },
      { weight: 1, arbitrary: anyCodeUnit },
    ),
    maxLength,
  });
}

/** A test's time limit: `ms` under `npm test`, and room for the long run under `npm run fuzz`. */
export function fuzzTimeout(ms: number): number {
  return FUZZ_RUNS === null ? ms : 30 * 60_000;
}
