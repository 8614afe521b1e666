import { defineConfig } from 'tsup';

/**
 * One entry per public subpath. Later subpaths (redis, express, fastify, fetch, otel, prometheus,
 * opossum, bottleneck) are added here and in package.json "exports" together; each keeps its
 * peer dependency external.
 */
export const entries = {
  index: 'src/index.ts',
  redis: 'src/ratelimit/redis/index.ts',
  express: 'src/adapters/express.ts',
  fastify: 'src/adapters/fastify.ts',
  fetch: 'src/adapters/fetch.ts',
  otel: 'src/tracing/index.ts',
  prometheus: 'src/metrics/index.ts',
  opossum: 'src/interop/opossum.ts',
  bottleneck: 'src/interop/bottleneck.ts',
  dashboard: 'src/dashboard/index.ts',
} as const;

export default defineConfig({
  entry: entries,
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  treeshake: true,
  // The Lua scripts stay in their own files and are bundled as strings.
  loader: { '.lua': 'text' },
  external: ['ioredis', '@opentelemetry/api', 'prom-client', 'express', 'fastify', 'opossum', 'bottleneck'],
});
