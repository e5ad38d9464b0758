import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The rooms of src/ and their floors (README, "Development"). A room may import rooms on lower
// floors only; on the floors marked `siblings`, rooms side by side may also import each other
// (no circle allowed all the same). The two planes share a floor and never import each other.
const FLOORS: ReadonlyArray<{ rooms: readonly string[]; siblings: boolean }> = [
  { rooms: ['domain'], siblings: false },
  { rooms: ['config', 'errors', 'observability', 'http'], siblings: true },
  { rooms: ['store'], siblings: false },
  { rooms: ['data-plane', 'control-plane'], siblings: false },
  { rooms: ['runtime'], siblings: false },
  { rooms: ['commands'], siblings: false },
];

/** The room of a path under src/ (posix, no leading `src/`), or null for test support and tests. */
export function roomOf(file: string): string | null {
  if (file.endsWith('.test.ts') || file.startsWith('testing/')) return null;
  if (file === 'main.ts' || file === 'cli.ts' || file.startsWith('cli/')) return 'commands';
  if (file === 'errors.ts') return 'errors';
  const top = file.split('/')[0]!;
  return FLOORS.some((f) => f.rooms.includes(top)) && file.includes('/') ? top : `unknown:${file}`;
}

const floorOf = (room: string): { floor: number; siblings: boolean } | null => {
  const floor = FLOORS.findIndex((f) => f.rooms.includes(room));
  return floor < 0 ? null : { floor, siblings: FLOORS[floor]!.siblings };
};

/** File → the src files it imports (relative specifiers only; `.js` read as the `.ts` beside it). */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

/** What breaks the order of the rooms: unknown rooms, arrows that point up or sideways, and circles. */
export function checkBoundaries(graph: ImportGraph, room: (file: string) => string | null = roomOf): string[] {
  const problems: string[] = [];
  const roomEdges = new Map<string, Set<string>>();
  for (const [from, targets] of graph) {
    const a = room(from);
    if (a === null) continue;
    if (a.startsWith('unknown:')) {
      problems.push(`${from}: in no room`);
      continue;
    }
    for (const to of targets) {
      const b = room(to);
      if (b === null) {
        problems.push(`${from} -> ${to}: imports test support`);
        continue;
      }
      if (b === a || b.startsWith('unknown:')) continue;
      const fa = floorOf(a)!;
      const fb = floorOf(b)!;
      if (fb.floor > fa.floor || (fb.floor === fa.floor && !fa.siblings)) problems.push(`${from} -> ${to}: ${a} may not import ${b}`);
      let edges = roomEdges.get(a);
      if (!edges) roomEdges.set(a, (edges = new Set()));
      edges.add(b);
    }
  }
  for (const group of circles(roomEdges)) problems.push(`rooms in a circle: ${group.join(', ')}`);
  const fileEdges = new Map<string, Set<string>>();
  for (const [from, targets] of graph) if (room(from) !== null) fileEdges.set(from, new Set(targets.filter((t) => room(t) !== null)));
  for (const group of circles(fileEdges)) problems.push(`files in a circle: ${group.join(', ')}`);
  return problems;
}

/** The nodes of each strongly connected group of more than one node (or of a node importing itself), sorted. */
function circles(edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  // Tarjan's strongly connected components.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      group.push(w);
    } while (w !== v);
    if (group.length > 1 || edges.get(v)?.has(v)) found.push(group.sort());
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

const SPECIFIER = /(?:^|[\s;}])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The import graph of every .ts file under `srcDir`, paths relative to it. */
export function readImportGraph(srcDir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        const file = relative(srcDir, path).split(sep).join('/');
        const targets: string[] = [];
        for (const m of readFileSync(path, 'utf8').matchAll(SPECIFIER)) {
          const spec = m[1] ?? m[2]!;
          if (!spec.startsWith('.')) continue;
          targets.push(posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
        }
        graph.set(file, targets);
      }
    }
  };
  walk(srcDir);
  return graph;
}

describe('import boundaries between the rooms of src/', () => {
  it('has no upward or sideways import, and no circle of rooms or of files', () => {
    const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
    const graph = readImportGraph(src);
    expect(graph.size).toBeGreaterThan(50);
    expect(checkBoundaries(graph)).toEqual([]);
  });

  it('reads every form of import: named, type-only, re-export, side effect and dynamic', () => {
    const g = (source: string): string[] => [...source.matchAll(SPECIFIER)].map((m) => m[1] ?? m[2]!);
    expect(g(`import { a } from './a.js';\nimport type { B } from "../b.js";\nexport { c } from './c.js';\n`
      + `export * from './d.js';\nimport './e.js';\nconst { f } = await import('./f.js');\nimport {\n  g,\n  h,\n} from './gh.js';`))
      .toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js', './f.js', './gh.js']);
  });

  it('flags an import from a lower room into a higher one', () => {
    const graph = new Map([
      ['store/redis/limiter.ts', ['data-plane/rate-limiter.ts']],
      ['data-plane/rate-limiter.ts', ['domain/api-key.ts']],
      ['domain/api-key.ts', []],
    ]);
    expect(checkBoundaries(graph)).toEqual(['store/redis/limiter.ts -> data-plane/rate-limiter.ts: store may not import data-plane']);
  });

  it('flags one plane importing the other', () => {
    const graph = new Map([['control-plane/routes/types.ts', ['data-plane/rate-limiter.ts']], ['data-plane/rate-limiter.ts', []]]);
    expect(checkBoundaries(graph)).toEqual(['control-plane/routes/types.ts -> data-plane/rate-limiter.ts: control-plane may not import data-plane']);
  });

  it('flags a circle between the command and the runtime, and between rooms of one floor', () => {
    const graph = new Map([
      ['main.ts', ['runtime/primary.ts']],
      ['runtime/primary.ts', ['main.ts']],
      ['config/load.ts', ['observability/logger.ts']],
      ['observability/logger.ts', ['config/schema.ts']],
      ['config/schema.ts', []],
    ]);
    expect(checkBoundaries(graph)).toEqual([
      'runtime/primary.ts -> main.ts: runtime may not import commands',
      'rooms in a circle: commands, runtime',
      'rooms in a circle: config, observability',
      'files in a circle: main.ts, runtime/primary.ts',
    ]);
  });

  it('allows downward imports and imports between rooms of the shared floor', () => {
    const graph = new Map([
      ['main.ts', ['runtime/app.ts']],
      ['cli.ts', ['main.ts', 'cli/keys-command.ts']],
      ['cli/keys-command.ts', ['config/load.ts']],
      ['runtime/app.ts', ['data-plane/pipeline.ts', 'control-plane/router.ts', 'store/types.ts', 'http/listen.ts']],
      ['data-plane/pipeline.ts', ['store/rate-limit/types.ts', 'http/drain.ts', 'errors.ts']],
      ['control-plane/router.ts', ['store/types.ts', 'errors.ts']],
      ['store/types.ts', ['domain/api-key.ts']],
      ['store/rate-limit/types.ts', ['domain/api-key.ts']],
      ['http/listen.ts', []],
      ['http/drain.ts', []],
      ['errors.ts', ['observability/logger.ts']],
      ['observability/logger.ts', []],
      ['config/load.ts', ['domain/api-key.ts']],
      ['domain/api-key.ts', []],
      ['data-plane/pipeline.test.ts', ['runtime/app.ts']],
    ]);
    expect(checkBoundaries(graph)).toEqual([]);
  });

  it('flags a file in no known room, and production code that imports test support', () => {
    const graph = new Map([['gadgets/x.ts', []], ['store/types.ts', ['testing/fixtures.ts']], ['testing/fixtures.ts', []]]);
    expect(checkBoundaries(graph)).toEqual(['gadgets/x.ts: in no room', 'store/types.ts -> testing/fixtures.ts: imports test support']);
  });
});
