// The packed tarball against every resolver a TypeScript user may have (issue 13 §4): a fresh
// checkout packs `dist/` (the `prepack` build), @arethetypeswrong/cli finds no problem for node10,
// node16 (from ESM and from CommonJS) and bundler on any subpath, publint is clean, and a consumer
// project compiles under `strict` with this repository's TypeScript 5 and with TypeScript 7 (what
// `npm install typescript` gives a new user).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const bin = (name: string): string => join(root, 'node_modules', '.bin', name);
let scratch = '';
let tarball = '';

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command that reports problems on stdout and exits non-zero; returns what it printed either way. */
function report(cmd: string, args: string[], cwd: string): { code: number; out: string } {
  try {
    return { code: 0, out: run(cmd, args, cwd) };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const subpaths = (): string[] => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  return Object.keys(pkg.exports)
    .filter((k) => k !== './package.json')
    .map((k) => (k === '.' ? 'bulwark' : `bulwark/${k.slice(2)}`));
};

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'bulwark-types-'));
  // The build in dist/ is the one under test (npm test builds it); --ignore-scripts keeps `prepack`
  // from rebuilding dist/ while other test projects read it. The prepack test below packs a copy.
  tarball = join(scratch, run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', scratch], root).trim().split('\n').pop()!);
}, 120_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('a fresh checkout packs dist/: `prepack` builds it', () => {
    // The repository's files as git sees them (committed or not, ignored ones left out), with no dist/.
    const copy = join(scratch, 'checkout');
    const files = run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], root).split('\0').filter(Boolean);
    for (const file of files) {
      if (file.startsWith('dist/') || file === 'node_modules') continue;
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      try {
        cpSync(join(root, file), join(copy, file));
      } catch {
        // a file git lists but the work tree has deleted
      }
    }
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir');
    // The build's own log comes first on stdout; npm's JSON report follows it.
    const printed = run('npm', ['pack', '--dry-run', '--json'], copy);
    expect(printed, 'prepack ran the build').toContain('Build success');
    const [packed] = JSON.parse(printed.slice(printed.indexOf('[\n'))) as [{ files: { path: string }[] }];
    const shipped = packed.files.map((f) => f.path);
    for (const name of ['index', 'redis', 'express', 'fastify', 'fetch', 'otel', 'prometheus', 'opossum', 'bottleneck', 'dashboard']) {
      expect(shipped).toEqual(expect.arrayContaining([`dist/${name}.js`, `dist/${name}.cjs`, `dist/${name}.d.ts`, `dist/${name}.d.cts`]));
    }
    expect(shipped).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']));
    expect(shipped.filter((p) => p.startsWith('src/') || p.startsWith('test/'))).toEqual([]);
  }, 120_000);

  it('@arethetypeswrong/cli: every subpath resolves for node10, node16 (ESM and CJS) and bundler', () => {
    const { out } = report(bin('attw'), [tarball, '--format', 'json'], scratch);
    const result = JSON.parse(out) as {
      analysis: { entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName?: string } }> }>; problems: unknown[] };
    };
    expect(result.analysis.problems, out.slice(0, 2_000)).toEqual([]);
    const entrypoints = Object.keys(result.analysis.entrypoints).filter((k) => k !== './package.json');
    expect(entrypoints.map((k) => (k === '.' ? 'bulwark' : `bulwark/${k.slice(2)}`)).sort()).toEqual(subpaths().sort());
    for (const [entry, { resolutions }] of Object.entries(result.analysis.entrypoints)) {
      expect(Object.keys(resolutions).sort(), entry).toEqual(['bundler', 'node10', 'node16-cjs', 'node16-esm']);
      for (const [mode, r] of Object.entries(resolutions)) expect(r.resolution?.fileName, `${entry} under ${mode}`).toBeTruthy();
    }
  });

  it('publint finds nothing, warnings included', () => {
    const { code, out } = report(bin('publint'), ['run', tarball, '--strict'], scratch);
    expect(out).toContain('All good');
    expect(code).toBe(0);
  });
});

// What a consumer writes: every subpath imported under strict, with the project's own options.
// Peers are not installed here, as in a project that uses only some subpaths: skipLibCheck is
// the usual setting then (declarations of a subpath whose peer is absent are not checked), and
// the core and fetch entry points, which need no peer, are also checked with it off.
const consumer = (all: boolean): string => `
import { pipeline, retry, circuitBreaker, consecutive, timeout, rateLimiter, fixedWindow, type ExecutionContext, type CircuitState } from 'bulwark';
import { createFetch } from 'bulwark/fetch';
${all ? "import { redisStore } from 'bulwark/redis';\nimport { rateLimitMiddleware } from 'bulwark/express';\nimport { rateLimitPlugin } from 'bulwark/fastify';\nimport { registerMetrics } from 'bulwark/prometheus';\nimport { enableTracing } from 'bulwark/otel';\nimport { fromOpossum } from 'bulwark/opossum';\nimport { fromBottleneck } from 'bulwark/bottleneck';\nimport { dashboard } from 'bulwark/dashboard';\nexport const used = [redisStore, rateLimitMiddleware, rateLimitPlugin, registerMetrics, enableTracing, fromOpossum, fromBottleneck, dashboard].length;" : ''}
const policy = pipeline(retry({ maxAttempts: 2 }), circuitBreaker({ breaker: consecutive(3) }), timeout(100));
export const out: Promise<number> = policy.execute(({ signal, attempt }: ExecutionContext) => (signal.aborted ? 0 : attempt));
export const state: CircuitState = circuitBreaker().state;
export const limiter = rateLimiter({ name: 'api', algorithm: fixedWindow({ limit: 10, windowMs: 1_000 }) });
export const get = createFetch({ name: 'catalog', attemptTimeoutMs: 1_000 });
`;

interface Setup {
  readonly module: string;
  readonly moduleResolution: string;
  readonly file: string;
}

/** TypeScript 7 drops `moduleResolution: node10`; TypeScript 5 checks it. */
const setups: Record<'5' | '7', Setup[]> = {
  '5': [
    { module: 'commonjs', moduleResolution: 'node10', file: 'consumer.ts' },
    { module: 'nodenext', moduleResolution: 'nodenext', file: 'consumer.mts' },
    { module: 'nodenext', moduleResolution: 'nodenext', file: 'consumer.cts' },
    { module: 'esnext', moduleResolution: 'bundler', file: 'consumer.ts' },
  ],
  '7': [
    { module: 'nodenext', moduleResolution: 'nodenext', file: 'consumer.mts' },
    { module: 'nodenext', moduleResolution: 'nodenext', file: 'consumer.cts' },
    { module: 'esnext', moduleResolution: 'bundler', file: 'consumer.ts' },
  ],
};

describe('a consumer project compiles against the tarball under strict', () => {
  let app = '';
  beforeAll(() => {
    app = join(scratch, 'consumer');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', tarball], app);
    // TypeScript 7 beside the project's 5 (its own tsc, in a directory of its own).
    mkdirSync(join(scratch, 'ts7'));
    writeFileSync(join(scratch, 'ts7', 'package.json'), JSON.stringify({ name: 'ts7', private: true }));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', 'typescript@7'], join(scratch, 'ts7'));
  }, 180_000);

  const tsc = (major: '5' | '7'): string[] =>
    major === '5' ? [join(root, 'node_modules', 'typescript', 'bin', 'tsc')] : [join(scratch, 'ts7', 'node_modules', 'typescript', 'bin', 'tsc')];

  for (const major of ['5', '7'] as const) {
    for (const setup of setups[major]) {
      for (const all of [false, true]) {
        it(`TypeScript ${major}, ${setup.moduleResolution}, ${setup.file}: ${all ? 'every subpath (skipLibCheck)' : 'core and fetch (declarations checked)'}`, () => {
          const dir = join(app, `ts${major}-${setup.moduleResolution}-${setup.file.replace('.', '-')}-${all ? 'all' : 'core'}`);
          mkdirSync(dir);
          // The consumer's node_modules is one level up: TypeScript walks up to find it.
          writeFileSync(join(dir, setup.file), consumer(all));
          writeFileSync(
            join(dir, 'tsconfig.json'),
            JSON.stringify({
              compilerOptions: {
                module: setup.module,
                moduleResolution: setup.moduleResolution,
                target: 'es2022',
                lib: ['es2023', 'dom', 'esnext.disposable'],
                types: ['node'],
                typeRoots: [join(root, 'node_modules', '@types')],
                strict: true,
                noEmit: true,
                skipLibCheck: all,
              },
              files: [setup.file],
            }),
          );
          const { code, out } = report(process.execPath, [...tsc(major), '-p', 'tsconfig.json'], dir);
          expect(out).toBe('');
          expect(code).toBe(0);
        }, 60_000);
      }
    }
  }
});
