// Regression (issue 12): Prometheus series per fetch origin grew without bound. 300 origins
// through one fetch with `maxOrigins: 20` left thousands of series, never dropped: fetch forgot
// the origins, the registry did not. Now fetch announces each origin it drops on
// `bulwark:fetch:origin-evicted` and the registration removes that origin's series and gives its
// place under the label cap back. Real node:http servers on 127.0.0.1, one per origin (port).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch } from '../../../src/adapters/fetch.js';
import { OVERFLOW_LABEL_VALUE, registerMetrics, type MetricsRegistration } from '../../../src/metrics/index.js';

const ORIGINS = 300;
const MAX_ORIGINS = 20;

const servers: Server[] = [];
/** Answers of `/held` requests, waiting for `release()`. */
const held: (() => void)[] = [];
const release = (): void => held.splice(0).forEach((answer) => answer());
let registration: MetricsRegistration | undefined;
afterEach(async () => {
  release();
  registration?.dispose();
  registration = undefined;
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

/**
 * `count` servers on 127.0.0.1, each its own origin; answers close their connections. A request
 * to `/held` is answered only when `release()` is called.
 */
async function origins(count: number): Promise<string[]> {
  const urls: string[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer((req, res) => {
      const answer = (): void => void res.writeHead(200, { connection: 'close' }).end('ok');
      if (req.url === '/held') held.push(answer);
      else answer();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  return urls;
}

/** The series lines of the registry's exposition (comments left out). */
async function seriesLines(registry: Registry): Promise<string[]> {
  // Series of a dropped origin are removed once the registry has read them: let that finish.
  await new Promise((resolve) => setImmediate(resolve));
  return (await registry.metrics()).split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

describe('series of fetch origins', () => {
  it(`stay bounded by maxOrigins: ${ORIGINS} origins through a fetch that keeps ${MAX_ORIGINS}`, async () => {
    const registry = new Registry();
    registration = registerMetrics(registry);
    const api = createFetch({ name: 'api', maxOrigins: MAX_ORIGINS, retry: false });
    const urls = await origins(ORIGINS);
    const ofOrigin = (lines: string[], url: string): string[] => lines.filter((l) => l.includes(`policy="api ${url}"`));

    await (await api(`${urls[0]}/`)).text();
    // What one origin costs: its breaker's executions and duration histogram.
    const perOrigin = ofOrigin(await seriesLines(registry), urls[0]!).length;
    expect(perOrigin).toBeGreaterThan(0);
    for (const url of urls.slice(1)) await (await api(`${url}/`)).text();

    const lines = await seriesLines(registry);
    const kept = urls.filter((url) => ofOrigin(lines, url).length > 0);
    // Before the fix: the first 100 origins (the default label cap) and "_other" kept: 1,818 series, not 378.
    expect(kept).toEqual(urls.slice(-MAX_ORIGINS));
    expect(lines.filter((l) => l.includes('policy="api http')).length).toBe(MAX_ORIGINS * perOrigin);
    // Their places under the label cap were given back: no origin had to be counted as "_other".
    expect(lines.filter((l) => l.includes(`policy="${OVERFLOW_LABEL_VALUE}"`))).toEqual([]);
    expect(lines.length).toBeLessThanOrEqual((MAX_ORIGINS + 2) * perOrigin);
  });

  it('count an origin that comes back after being dropped from zero, under its own name', async () => {
    const registry = new Registry();
    registration = registerMetrics(registry, { maxLabelValues: 2 });
    const api = createFetch({ name: 'api', maxOrigins: 1, retry: false });
    const [a, b] = await origins(2);
    const calls = async (url: string): Promise<string | undefined> => {
      const line = (await seriesLines(registry)).find((l) => l.startsWith(`bulwark_executions_total{kind="circuit-breaker",policy="api ${url}"`));
      return line?.split(' ').at(-1);
    };

    for (const url of [a, a, b]) await (await api(`${url}/`)).text();
    expect(await calls(a!)).toBeUndefined();
    expect(await calls(b!)).toBe('1');
    for (const url of [a, b, a]) await (await api(`${url}/`)).text();
    expect(await calls(a!)).toBe('1');
    expect(await calls(b!)).toBeUndefined();
  });

  it('of an origin dropped while a call to it runs go once that call has settled, not before', async () => {
    const registry = new Registry();
    registration = registerMetrics(registry);
    const api = createFetch({ name: 'api', maxOrigins: 1, retry: false });
    const [a, b] = await origins(2);
    const ofA = async (): Promise<string[]> => (await seriesLines(registry)).filter((l) => l.includes(`policy="api ${a}"`));

    await (await api(`${a}/`)).text();
    const running = api(`${a}/held`);
    for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(held).toHaveLength(1);
    // b takes the only place: a is dropped (the least recently used), its call still running.
    await (await api(`${b}/`)).text();
    release();
    await (await running).text();
    // Before: a's series were removed when it was dropped, and its running call put them back.
    expect(await ofA()).toEqual([]);
    expect((await seriesLines(registry)).some((l) => l.includes(`policy="api ${b}"`))).toBe(true);
  });
});
