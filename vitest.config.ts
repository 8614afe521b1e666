import { defineConfig, type Plugin } from 'vitest/config';

/** Imports `.lua` files as their text, as tsup's `text` loader does in the build (one per project: projects do not inherit root plugins). */
const luaText: Plugin = {
  name: 'lua-text',
  transform(code, id) {
    return id.endsWith('.lua') ? { code: `export default ${JSON.stringify(code)};`, map: null } : undefined;
  },
};

export default defineConfig({
  test: {
    // One test file at a time, everywhere: what vitest already does on CI's 2 cores (cores - 1
    // workers). The integration and service projects rely on it (the worker count cannot be set
    // per project): their files start redis-servers, child processes and load loops whose timing
    // figures a neighbour would blur.
    maxWorkers: 1,
    minWorkers: 1,
    projects: [
      {
        plugins: [luaText],
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/readme/**/*.test.ts'],
          setupFiles: ['test/support/setup.ts'],
          environment: 'node',
        },
      },
      {
        plugins: [luaText],
        test: {
          name: 'package',
          include: ['test/package/**/*.test.ts'],
          setupFiles: ['test/support/setup.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        plugins: [luaText],
        test: {
          // Real redis-server processes (see test/integration/support/redis.ts). Its files run
          // one at a time (see maxWorkers above), and only after the other projects are done, so
          // servers do not fight tests for the cores. Each file gets a fresh child process (not
          // singleFork): in one fork shared by every file, decisions ran 3-10x slower in the later
          // files (F16's closed load: 3.6k decisions in 3 s on Node 20, 33-35k in a file of its
          // own), and timing figures failed in CI; a fresh process per file costs nothing
          // measurable (295 s for the project either way).
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          setupFiles: ['test/support/setup.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          poolOptions: { forks: { singleFork: false, isolate: true } },
          sequence: { groupOrder: 1 },
        },
      },
      {
        plugins: [luaText],
        test: {
          // Real HTTP servers on port 0 (Express 4 and 5, Fastify 4 and 5), real fetch, and child
          // processes that get real signals. Runs after the Redis integration tests so the two do
          // not fight for the cores; files that need Redis start their own servers.
          name: 'adapters',
          include: ['test/adapters/**/*.test.ts'],
          setupFiles: ['test/support/setup.ts'],
          environment: 'node',
          testTimeout: 30_000,
          hookTimeout: 30_000,
          sequence: { groupOrder: 2 },
        },
      },
      {
        plugins: [luaText],
        test: {
          // Whole services assembled from the public entry points and attacked (RELIABILITY.md rows
          // C1–C5, G1, bad input): real Express and Fastify servers, real redis-server processes
          // that the tests freeze and kill, and child processes that get real signals. Last, after
          // the other projects, and one file at a time, because several scenarios assert recovery
          // times and a 2-core machine shared with other files would blur them; each file in a
          // fresh child process, as the integration project's.
          name: 'service',
          include: ['test/service/**/*.test.ts'],
          setupFiles: ['test/support/setup.ts'],
          environment: 'node',
          testTimeout: 30_000,
          hookTimeout: 60_000,
          poolOptions: { forks: { singleFork: false, isolate: true } },
          sequence: { groupOrder: 3 },
        },
      },
    ],
  },
});
