// Every ```ts block of README.md, CONTRIBUTING.md and docs/**/*.md is a real program: this test
// writes each one out with `from 'bulwark'` pointed at the source, type-checks them all with the
// project's compiler settings, and runs each one, so the docs cannot drift from the code.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRedis, type RedisServer } from '../integration/support/redis.js';

const root = resolve(import.meta.dirname, '../..');
const outDir = join(root, 'test', 'readme', `.generated-${process.pid}`);
/** The pages whose examples run: the front page, the contributing guide and every guide in docs/. */
const pages = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(root, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f.split('\\').join('/')}`)
    .sort(),
];
const blocks = pages.flatMap((page) =>
  [...readFileSync(join(root, page), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m, i) => ({ page, n: i + 1, code: m[1]! })),
);

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const files = blocks.map(({ page, n, code }) => {
  const file = join(outDir, `${page.replace(/\.md$/, '').replaceAll('/', '-')}-${String(n).padStart(2, '0')}.ts`);
  const source = code
    .replaceAll("from 'bulwark/redis'", "from '../../../src/ratelimit/redis/index.js'")
    .replaceAll("from 'bulwark/express'", "from '../../../src/adapters/express.js'")
    .replaceAll("from 'bulwark/fastify'", "from '../../../src/adapters/fastify.js'")
    .replaceAll("from 'bulwark/fetch'", "from '../../../src/adapters/fetch.js'")
    .replaceAll("from 'bulwark/otel'", "from '../../../src/tracing/index.js'")
    .replaceAll("from 'bulwark/prometheus'", "from '../../../src/metrics/index.js'")
    .replaceAll("from 'bulwark/opossum'", "from '../../../src/interop/opossum.js'")
    .replaceAll("from 'bulwark/bottleneck'", "from '../../../src/interop/bottleneck.js'")
    .replaceAll("from 'bulwark'", "from '../../../src/index.js'");
  writeFileSync(file, `${source}\nexport {};\n`);
  return { label: `${page} example ${n}`, file };
});
writeFileSync(
  join(outDir, 'tsconfig.json'),
  JSON.stringify({ extends: '../../../tsconfig.json', include: ['./*.ts', '../../../src/ratelimit/redis/lua.d.ts'], compilerOptions: { noUnusedLocals: false } }),
);

// The Redis examples talk to a server of their own, found through REDIS_URL.
let redis: RedisServer | undefined;
beforeAll(async () => {
  redis = await startRedis();
  process.env.REDIS_URL = `redis://127.0.0.1:${redis.port}`;
});
afterAll(async () => {
  rmSync(outDir, { recursive: true, force: true });
  delete process.env.REDIS_URL;
  await redis?.stop();
});

describe('examples in README.md and docs/', () => {
  it('has examples to check on the front page and in the guides', () => {
    expect(blocks.filter((b) => b.page === 'README.md').length).toBeGreaterThanOrEqual(5);
    expect(blocks.filter((b) => b.page.startsWith('docs/')).length).toBeGreaterThanOrEqual(35);
  });

  it('type-check', () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    let output = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', join(outDir, 'tsconfig.json')], { encoding: 'utf8' });
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err);
    }
    expect(output).toBe('');
  }, 60_000);

  it.each(files.map((f) => [f.label, f.file] as const))('%s runs and prints', async (_label, file) => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(' '));
    });
    try {
      await import(pathToFileURL(file).href);
    } finally {
      spy.mockRestore();
    }
    expect(lines.length).toBeGreaterThan(0);
  }, 20_000);
});
