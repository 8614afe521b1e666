import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVED_PATHS, isServedPath, registerServedPath, servedPaths } from '../../../src/health/served-paths.js';

describe('served paths', () => {
  it('lists the standard probe names and /metrics from the start', () => {
    for (const p of DEFAULT_SERVED_PATHS) expect(isServedPath(p)).toBe(true);
    expect(servedPaths()).toEqual(expect.arrayContaining(['/livez', '/readyz', '/startupz', '/healthz', '/metrics']));
  });

  it('matches a query, a sub-path and a trailing slash, but not a longer name or another route', () => {
    expect(isServedPath('/readyz?verbose')).toBe(true);
    expect(isServedPath('/readyz/redis')).toBe(true);
    expect(isServedPath('/livez/')).toBe(true);
    expect(isServedPath('/readyzz')).toBe(false);
    expect(isServedPath('/metricsfoo')).toBe(false);
    expect(isServedPath('/api/orders')).toBe(false);
    expect(isServedPath('/')).toBe(false);
    expect(isServedPath('')).toBe(false);
    expect(isServedPath(undefined)).toBe(false);
  });

  it('adds a registered prefixed path, once', () => {
    expect(isServedPath('/ops-test/readyz')).toBe(false);
    registerServedPath('/ops-test/readyz');
    registerServedPath('/ops-test/readyz');
    expect(isServedPath('/ops-test/readyz?verbose=1')).toBe(true);
    expect(servedPaths().filter((p) => p === '/ops-test/readyz')).toHaveLength(1);
  });

  it('refuses a path that is not one, naming the value', () => {
    for (const bad of ['', '/', 'readyz', '/readyz/', '/a?b', '/a b', 7, null]) {
      expect(() => registerServedPath(bad as string)).toThrow(/registerServedPath: the path must look like/);
    }
  });

  it('shares one list between copies of the module (ESM and CJS builds) through a registered symbol', () => {
    const holder = globalThis as unknown as Record<symbol, { paths: string[] } | undefined>;
    expect(holder[Symbol.for('bulwark.servedPaths.v1')]?.paths).toContain('/livez');
  });
});
