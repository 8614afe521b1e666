// The layering rules, enforced (issue 13 §2; written out in docs/architecture.md). Reads every
// import and re-export under src/ (type-only ones included, since a type import is still an
// arrow a reader follows) and fails on one that points up, into a layer it may not use, or
// around a cycle; and on a package import outside the subpath whose optional peer it is.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const src = join(root, 'src');

/** Layers from the bottom up: an area may import its own layer's areas and those below. */
const layers: readonly (readonly string[])[] = [
  ['core'],
  ['backoff', 'circuit', 'retry', 'timeout', 'bulkhead', 'fallback', 'hedge', 'ratelimit', 'admission', 'chaos', 'throttle'],
  ['ratelimit/redis'],
  ['health', 'shedding'],
  ['tracing', 'metrics', 'introspection'],
  ['http'],
  ['adapters', 'interop', 'dashboard'],
];

/**
 * Narrower rules on top of the layers. Telemetry subscribes to the diagnostics channels and
 * reads nothing else: it may import only core. Core imports nothing of the project.
 */
const onlyFrom: Readonly<Record<string, readonly string[]>> = {
  core: [],
  tracing: ['core'],
  metrics: ['core'],
};

/** Package imports other than `node:*`: each peer only in the folder its subpath is built from. */
const peers: Readonly<Record<string, readonly string[]>> = {
  ioredis: ['ratelimit/redis'],
  '@opentelemetry/api': ['tracing'],
  'prom-client': ['metrics'],
  express: ['adapters'],
  fastify: ['adapters'],
  opossum: ['interop'],
  bottleneck: ['interop'],
};

/** The subpath entry files (tsup's entries): the public surface, which may gather from any layer. */
const entryFiles = new Set(
  ['index.ts', 'ratelimit/redis/index.ts', 'adapters/express.ts', 'adapters/fastify.ts', 'adapters/fetch.ts', 'tracing/index.ts', 'metrics/index.ts', 'interop/opossum.ts', 'interop/bottleneck.ts', 'dashboard/index.ts'],
);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

/** `src/ratelimit/redis/x.ts` → 'ratelimit/redis'; `src/retry/x.ts` → 'retry'; `src/index.ts` → '(entry)'. */
function areaOf(file: string): string {
  const parts = relative(src, file).split(sep);
  if (parts.length === 1) return '(entry)';
  if (parts[0] === 'ratelimit' && parts[1] === 'redis') return 'ratelimit/redis';
  return parts[0]!;
}

const layerOf = (area: string): number => layers.findIndex((l) => l.includes(area));

interface Arrow {
  readonly from: string;
  readonly to: string;
  readonly file: string;
  readonly spec: string;
}

function imports(): { arrows: Arrow[]; packages: { file: string; spec: string }[] } {
  const arrows: Arrow[] = [];
  const packages: { file: string; spec: string }[] = [];
  for (const file of sources(src)) {
    // preProcessFile lists imports, `import type`, `export … from` and `import()` alike.
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const rel = relative(src, file).split(sep).join('/');
    for (const { fileName: spec } of importedFiles) {
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) {
        packages.push({ file: rel, spec });
        continue;
      }
      const target = resolve(dirname(file), spec);
      arrows.push({ from: entryFiles.has(rel) ? '(entry)' : areaOf(file), to: areaOf(target), file: rel, spec });
    }
  }
  return { arrows, packages };
}

/** The rule an arrow breaks, or undefined. */
function broken(a: Arrow): string | undefined {
  if (a.from === a.to) return undefined;
  if (a.to === '(entry)') return 'imports an entry file (import the module it re-exports)';
  if (a.from === '(entry)') return a.to === 'adapters' && !a.file.startsWith('adapters/') ? 'an entry outside adapters imports an adapter' : undefined;
  const from = layerOf(a.from);
  const to = layerOf(a.to);
  if (from < 0 || to < 0) return `area not in the layer table (${from < 0 ? a.from : a.to}): add it to test/unit/architecture.test.ts and docs/architecture.md`;
  const only = onlyFrom[a.from];
  if (only !== undefined && !only.includes(a.to)) return `${a.from} may import only ${only.length ? only.join(', ') : 'nothing of the project'}`;
  if (to > from) return `points up: ${a.from} (layer ${from}) → ${a.to} (layer ${to})`;
  return undefined;
}

describe('architecture: the layers', () => {
  const { arrows, packages } = imports();

  it('reads the imports of every source file (the reader itself works)', () => {
    expect(arrows.length).toBeGreaterThan(200);
    expect(arrows.some((a) => a.from === 'circuit' && a.to === 'core')).toBe(true);
    // A type-only import counts: it is read like any other.
    expect(arrows.some((a) => a.file === 'metrics/register.ts' && a.to === 'core')).toBe(true);
  });

  it('every arrow points down or sideways within its layer, and telemetry reads only core', () => {
    const breaks = arrows.flatMap((a) => {
      const why = broken(a);
      return why === undefined ? [] : [`${a.file}: '${a.spec}' — ${why}`];
    });
    expect(breaks).toEqual([]);
  });

  it('the rules catch what they are meant to (a policy importing health, telemetry a policy, core anything)', () => {
    const probe = (from: string, to: string): string | undefined => broken({ from, to, file: `${from}/x.ts`, spec: `../${to}/y.js` });
    expect(probe('ratelimit/redis', 'health')).toMatch(/points up/);
    expect(probe('metrics', 'circuit')).toMatch(/only core/);
    expect(probe('core', 'retry')).toMatch(/nothing of the project/);
    expect(probe('retry', 'adapters')).toMatch(/points up/);
    expect(probe('adapters', 'http')).toBeUndefined();
    expect(probe('retry', 'backoff')).toBeUndefined();
  });

  it('no cycle between areas', () => {
    const next = new Map<string, Set<string>>();
    for (const a of arrows) if (a.from !== a.to && a.from !== '(entry)') (next.get(a.from) ?? next.set(a.from, new Set()).get(a.from)!).add(a.to);
    const cycles: string[] = [];
    const visit = (area: string, path: string[]): void => {
      for (const to of next.get(area) ?? []) {
        if (path.includes(to)) cycles.push([...path.slice(path.indexOf(to)), to].join(' → '));
        else visit(to, [...path, to]);
      }
    };
    for (const area of next.keys()) visit(area, [area]);
    expect(cycles).toEqual([]);
  });

  it('each optional peer is imported only by the folder of its own subpath; core and policies import only node:*', () => {
    const misplaced = packages.filter(({ file, spec }) => {
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      const allowed = peers[name];
      const area = areaOf(join(src, file));
      return allowed === undefined || !allowed.includes(area);
    });
    expect(misplaced).toEqual([]);
  });
});
