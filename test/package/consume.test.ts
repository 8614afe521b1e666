// The built package as a user gets it: `npm pack`, installed into a scratch app, imported from
// ESM, required from CommonJS, and type-checked from both module systems.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
let scratch = '';
let app = '';

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

// Exercises a breaker, a retry, a timeout and their pipeline, and prints what it saw.
const program = `
const r = bulwark.retry({ maxAttempts: 3, backoff: bulwark.constant(0) });
const p = bulwark.pipeline(r, bulwark.circuitBreaker(), bulwark.timeout(1000));
let attempts = 0;
const value = await p.execute(({ attempt }) => { attempts = attempt; if (attempt < 2) throw new Error('flaky'); return 'ok'; });
let code;
try { await bulwark.timeout(5).execute(() => new Promise(() => {})); } catch (e) { code = e.code; }
console.log(JSON.stringify({ value, attempts, code, isError: bulwark.isBulwarkError(new bulwark.TimeoutError(1)) }));
`;

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'index.js')) || !existsSync(join(root, 'dist', 'index.cjs'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does it).');
  }
  scratch = mkdtempSync(join(tmpdir(), 'bulwark-pack-'));
  const tarball = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', scratch], root).trim().split('\n').pop()!;
  app = join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', join(scratch, tarball)], app);
}, 120_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the published package', () => {
  it('declares no runtime dependencies and no side effects', () => {
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.type).toBe('module');
    const installed = JSON.parse(readFileSync(join(app, 'node_modules', 'bulwark', 'package.json'), 'utf8'));
    expect(Object.keys(installed.peerDependenciesMeta).every((k: string) => installed.peerDependenciesMeta[k].optional)).toBe(true);
  });

  it('exports exactly the subpaths that tsup builds, each with ESM, CJS and both type files', async () => {
    const { entries } = await import('../../tsup.config.js');
    const exportsMap = pkg.exports as Record<string, Record<string, { types: string; default: string }> | string>;
    const subpaths = Object.keys(entries).map((name) => (name === 'index' ? '.' : `./${name}`));
    expect(Object.keys(exportsMap).filter((k) => k !== './package.json').sort()).toEqual(subpaths.sort());
    for (const [name] of Object.entries(entries)) {
      const entry = exportsMap[name === 'index' ? '.' : `./${name}`] as Record<string, { types: string; default: string }>;
      expect(entry.import).toEqual({ types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` });
      expect(entry.require).toEqual({ types: `./dist/${name}.d.cts`, default: `./dist/${name}.cjs` });
      for (const file of [entry.import!.types, entry.import!.default, entry.require!.types, entry.require!.default]) {
        expect(existsSync(join(root, file)), file).toBe(true);
      }
    }
  });

  it('ships only dist and docs', () => {
    expect(existsSync(join(app, 'node_modules', 'bulwark', 'src'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'bulwark', 'dist', 'index.d.cts'))).toBe(true);
  });

  it('works when imported from an ES module', () => {
    writeFileSync(join(app, 'esm.mjs'), `import * as bulwark from 'bulwark';\n${program}`);
    expect(JSON.parse(run(process.execPath, ['esm.mjs'], app))).toEqual({
      value: 'ok',
      attempts: 2,
      code: 'ERR_BULWARK_TIMEOUT',
      isError: true,
    });
  });

  it('works when required from CommonJS', () => {
    writeFileSync(join(app, 'cjs.cjs'), `const bulwark = require('bulwark');\n(async () => {\n${program}\n})();`);
    expect(JSON.parse(run(process.execPath, ['cjs.cjs'], app))).toEqual({
      value: 'ok',
      attempts: 2,
      code: 'ERR_BULWARK_TIMEOUT',
      isError: true,
    });
  });

  it('loads bulwark/express, bulwark/fastify, bulwark/fetch and bulwark/dashboard from ESM and CommonJS without either framework installed', () => {
    writeFileSync(
      join(app, 'subpaths.mjs'),
      `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const seen = {};
for (const sub of ['express', 'fastify', 'fetch', 'dashboard']) {
  const esm = Object.keys(await import('bulwark/' + sub)).sort();
  const cjs = Object.keys(require('bulwark/' + sub)).filter((k) => k !== 'default' && k !== '__esModule').sort();
  seen[sub] = { esm, same: JSON.stringify(esm) === JSON.stringify(cjs) };
}
const frameworks = ['express', 'fastify'].map((n) => { try { require.resolve(n); return n + ' installed'; } catch { return n + ' absent'; } });
console.log(JSON.stringify({ seen, frameworks }));`,
    );
    const { seen, frameworks } = JSON.parse(run(process.execPath, ['subpaths.mjs'], app));
    expect(frameworks).toEqual(['express absent', 'fastify absent']);
    expect(seen.express.esm).toEqual(expect.arrayContaining(['rateLimitMiddleware', 'loadSheddingMiddleware', 'healthMiddleware']));
    expect(seen.fastify.esm).toEqual(expect.arrayContaining(['rateLimitPlugin', 'loadSheddingPlugin', 'healthPlugin']));
    expect(seen.fetch.esm).toEqual(expect.arrayContaining(['createFetch', 'HttpStatusError']));
    expect(seen.dashboard.esm).toEqual(['dashboard']);
    for (const sub of ['express', 'fastify', 'fetch', 'dashboard']) expect(seen[sub].same, `${sub}: ESM and CJS export the same names`).toBe(true);
  });

  it('loads bulwark/opossum and bulwark/bottleneck without either engine installed', () => {
    writeFileSync(
      join(app, 'engines.mjs'),
      `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const seen = {};
for (const sub of ['opossum', 'bottleneck']) {
  const esm = Object.keys(await import('bulwark/' + sub)).sort();
  const cjs = Object.keys(require('bulwark/' + sub)).filter((k) => k !== 'default' && k !== '__esModule').sort();
  seen[sub] = { esm, same: JSON.stringify(esm) === JSON.stringify(cjs) };
}
const engines = ['opossum', 'bottleneck'].map((n) => { try { require.resolve(n); return n + ' installed'; } catch { return n + ' absent'; } });
console.log(JSON.stringify({ seen, engines }));`,
    );
    const { seen, engines } = JSON.parse(run(process.execPath, ['engines.mjs'], app));
    expect(engines).toEqual(['opossum absent', 'bottleneck absent']);
    expect(seen.opossum.esm).toEqual(expect.arrayContaining(['fromOpossum', 'opossumAction', 'OpossumPolicy']));
    expect(seen.bottleneck.esm).toEqual(expect.arrayContaining(['fromBottleneck', 'BottleneckPolicy']));
    for (const sub of ['opossum', 'bottleneck']) expect(seen[sub].same, `${sub}: ESM and CJS export the same names`).toBe(true);
  });

  it('loads bulwark/otel and bulwark/prometheus from ESM and CommonJS once their peers are installed', () => {
    // The versions this repository was tested with, so npm can take them from its cache.
    const version = (name: string) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version as string;
    const peers = ['@opentelemetry/api', 'prom-client'].map((name) => `${name}@${version(name)}`);
    run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', ...peers], app);
    writeFileSync(
      join(app, 'telemetry.mjs'),
      `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const seen = {};
for (const sub of ['otel', 'prometheus']) {
  const esm = Object.keys(await import('bulwark/' + sub)).sort();
  const cjs = Object.keys(require('bulwark/' + sub)).filter((k) => k !== 'default' && k !== '__esModule').sort();
  seen[sub] = { esm, same: JSON.stringify(esm) === JSON.stringify(cjs) };
}
const { Registry } = await import('prom-client');
const { registerMetrics } = await import('bulwark/prometheus');
const registry = new Registry();
registerMetrics(registry).dispose();
console.log(JSON.stringify({ seen, left: (await registry.getMetricsAsJSON()).length }));`,
    );
    const { seen, left } = JSON.parse(run(process.execPath, ['telemetry.mjs'], app));
    expect(seen.otel.esm).toEqual(expect.arrayContaining(['BulwarkInstrumentation', 'enableTracing']));
    expect(seen.prometheus.esm).toEqual(expect.arrayContaining(['registerMetrics', 'metricsHandler', 'metricsRoute']));
    for (const sub of ['otel', 'prometheus']) expect(seen[sub].same, `${sub}: ESM and CJS export the same names`).toBe(true);
    expect(left).toBe(0);
  }, 120_000);

  it('recognises errors across the ESM and CJS copies', () => {
    writeFileSync(
      join(app, 'dual.mjs'),
      `import { createRequire } from 'node:module';
import * as esm from 'bulwark';
const cjs = createRequire(import.meta.url)('bulwark');
console.log(JSON.stringify([esm.isBulwarkError(new cjs.BrokenCircuitError(0)), cjs.isBulwarkError(new esm.TimeoutError(1), 'ERR_BULWARK_TIMEOUT')]));`,
    );
    expect(JSON.parse(run(process.execPath, ['dual.mjs'], app))).toEqual([true, true]);
  });

  it('shares the admission scope between the ESM and CJS builds', () => {
    writeFileSync(
      join(app, 'scope.mjs'),
      `import { createRequire } from 'node:module';
import * as esm from 'bulwark';
const cjs = createRequire(import.meta.url)('bulwark');
const seen = [esm.withAdmissionScope({ priority: 'critical' }, () => cjs.currentAdmissionScope()?.priority), cjs.withAdmissionScope({ deadline: 5 }, () => esm.currentAdmissionScope()?.deadline)];
console.log(JSON.stringify(seen));`,
    );
    expect(JSON.parse(run(process.execPath, ['scope.mjs'], app))).toEqual(['critical', 5]);
  });

  // Regression (issue 12): an error from the CommonJS build failed `instanceof` against the ES
  // module's class (and the other way round), while the README's examples use instanceof.
  it('keeps instanceof across the ESM and CJS builds, for errors thrown by policies and made by hand', () => {
    writeFileSync(
      join(app, 'instanceof.mjs'),
      `import { createRequire } from 'node:module';
import * as esm from 'bulwark';
import * as esmFetch from 'bulwark/fetch';
const require = createRequire(import.meta.url);
const cjs = require('bulwark');
const cjsFetch = require('bulwark/fetch');
const thrown = async (b) => b.timeout(5).execute(() => new Promise(() => {})).catch((e) => e);
const fromCjs = await thrown(cjs);
const fromEsm = await thrown(esm);
const cause = new Error('root');
const response = () => new Response(null, { status: 503 });
console.log(JSON.stringify({
  cjsInEsm: [fromCjs instanceof esm.TimeoutError, fromCjs instanceof esm.BulwarkError, fromCjs instanceof esm.BrokenCircuitError],
  esmInCjs: [fromEsm instanceof cjs.TimeoutError, fromEsm instanceof cjs.BulwarkError, fromEsm instanceof cjs.RateLimitedError],
  byHand: [
    new cjs.BulkheadRejectedError(1, 0) instanceof esm.BulkheadRejectedError,
    new esm.QuotaExceededError(1, 0, 1) instanceof cjs.QuotaExceededError,
    new cjs.IsolatedCircuitError() instanceof esm.BrokenCircuitError,
  ],
  http: [
    new cjsFetch.HttpStatusError(response(), 'http://127.0.0.1/', undefined) instanceof esmFetch.HttpStatusError,
    new esmFetch.HttpStatusError(response(), 'http://127.0.0.1/', undefined) instanceof cjs.BulwarkError,
  ],
  cause: new cjs.RateLimitedError({ allowed: false, limit: 1, remaining: 0, resetMs: 1, retryAfterMs: 1 }, { cause }).cause === cause,
}));`,
    );
    expect(JSON.parse(run(process.execPath, ['instanceof.mjs'], app))).toEqual({
      cjsInEsm: [true, true, false],
      esmInCjs: [true, true, false],
      byHand: [true, true, false],
      http: [true, true],
      cause: true,
    });
  });

  it('type-checks from both module systems', () => {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2023', 'dom'],
          // A Node project's usual setup: @types/node supplies Symbol.dispose and the timers.
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ['consumer.mts', 'consumer.cts'],
      }),
    );
    const body = `
const policy = pipeline(retry({ maxAttempts: 2 }), circuitBreaker({ breaker: consecutive(3) }), timeout(100));
const out: Promise<number> = policy.execute(({ signal, attempt }: ExecutionContext) => (signal.aborted ? 0 : attempt));
const safe: Promise<number | string> = pipeline(fallback('none'), timeout(5)).execute(() => 1);
const state: CircuitState = circuitBreaker().state;
export { out, safe, state };
`;
    writeFileSync(
      join(app, 'consumer.mts'),
      `import { pipeline, retry, circuitBreaker, consecutive, timeout, fallback, type ExecutionContext, type CircuitState } from 'bulwark';\n${body}`,
    );
    writeFileSync(
      join(app, 'consumer.cts'),
      `import bulwark = require('bulwark');\nconst { pipeline, retry, circuitBreaker, consecutive, timeout, fallback } = bulwark;\ntype ExecutionContext = bulwark.ExecutionContext;\ntype CircuitState = bulwark.CircuitState;\n${body}`,
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    let output = '';
    try {
      output = run(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err);
    }
    expect(output).toBe('');
  });
});
