// What bulwark/fetch hands the underlying fetch, now that a call parses and allocates only what it
// needs (issue 14 §4): the same URL as before, no signal when nothing can abort the attempt, and
// the same checks of headers before any attempt.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createFetch } from '../../../src/adapters/fetch.js';
import { canonicalOrigin } from '../../../src/adapters/fetch/request-url.js';
import { constant } from '../../../src/index.js';
import { countAbortControllers } from '../../support/helpers.js';

/** A fetch that records what it was given and answers `statuses` in turn (the last one repeats). */
function recording(...statuses: number[]) {
  const calls: { input: unknown; init: RequestInit | undefined; args: number }[] = [];
  const fetch = (...args: unknown[]): Promise<Response> => {
    calls.push({ input: args[0], init: args[1] as RequestInit | undefined, args: args.length });
    const status = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
    return Promise.resolve(new Response('x', { status }));
  };
  return { fetch: fetch as typeof globalThis.fetch, calls };
}

/** URLs whose origin is read off the string must be exactly those `new URL` leaves as they are. */
const urls = [
  'http://api.test/x',
  'http://api.test:8080/v1/items?id=7&sort=-name',
  'https://a.b-c.example/p/a:b@c;d=e,f+g*h(i)!$~_.%20?q=%zz',
  'http://127.0.0.1:3000/',
  'http://10.0.0.255/a/b/',
  'http://api.test',
  'http://api.test?x',
  'HTTP://api.test/',
  'http://API.test/',
  'http://api.test:80/',
  'https://api.test:443/',
  'https://api.test:80/',
  'http://api.test:080/',
  'http://api.test:0/',
  'http://api.test:65535/',
  'http://api.test:65536/',
  'http://api.test:99999/',
  'http://127.1/',
  'http://0x7f.0.0.1/',
  'http://1.2.3.256/',
  'http://01.2.3.4/',
  'http://a.1/',
  'http://a.0x1/',
  'http://xn--nxasmq6b.test/',
  'http://sub.xn--a.test/',
  'http://api.test./',
  'http://a..b/',
  'http://user:pw@api.test/',
  'http://api.test:80@evil.test/',
  'http://api.test/a/../b',
  'http://api.test/a/./b',
  'http://api.test/a/%2e%2E/b',
  'http://api.test/a/..',
  'http://api.test/a/.?x',
  'http://api.test/a?x=/../y',
  'http://api.test/a b',
  "http://api.test/?q='",
  'http://api.test/a#frag',
  'http://api.test/a\\b',
  'http://api.test/a\tb',
  'http://api.test/{x}',
  'http://api.test/^|`',
  ' http://api.test/',
  'http://api.test/ ',
  'ftp://api.test/',
  'ws://api.test/',
  `http://${'a'.repeat(63)}.test/`,
  `http://${'a'.repeat(64)}.test/`,
  '/relative',
  'http://[::1]:8080/',
];

describe('createFetch plumbing', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('reads the origin off a URL only when new URL() would leave the string as it is', () => {
    for (const input of urls) {
      const origin = canonicalOrigin(input);
      if (origin === undefined) continue;
      const parsed = new URL(input);
      expect({ input, href: parsed.href, origin: parsed.origin }).toEqual({ input, href: input, origin });
    }
    // The plain forms do take the short way.
    expect(canonicalOrigin('http://api.test:8080/v1/items?id=7&sort=-name')).toBe('http://api.test:8080');
    expect(canonicalOrigin('http://127.0.0.1:3000/')).toBe('http://127.0.0.1:3000');
  });

  it('reads the origin off generated URLs exactly as new URL() does, or not at all', () => {
    const hosts = ['a', 'A', '1', '255', '256', '0x', '.', '-', 'é', 'xn--', 'b2', '01'];
    const ports = ['', '', ':80', ':443', ':8080', ':0', ':080', ':65536', ':'];
    const paths = ['a', '..', '.', '%2e', '?', '#', ' ', '/', '\\', 'é', '%zz', "'", '~', '{', '@', ':'];
    let seed = 7;
    const next = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648);
    const pick = (from: string[], most: number): string => {
      let out = '';
      for (let n = 1 + (next() % most); n > 0; n--) out += from[next() % from.length];
      return out;
    };
    let short = 0;
    for (let i = 0; i < 20_000; i++) {
      const input = `${i % 2 === 0 ? 'http' : 'https'}://${pick(hosts, 4)}${ports[next() % ports.length]}/${pick(paths, 5)}`;
      const origin = canonicalOrigin(input);
      if (origin === undefined) continue;
      short++;
      const parsed = new URL(input);
      expect({ input, href: parsed.href, origin: parsed.origin }).toEqual({ input, href: input, origin });
    }
    expect(short).toBeGreaterThan(100);
  });

  it('hands fetch no signal (and no init) when nothing can abort the attempt', async () => {
    const r = recording(200);
    const f = createFetch({ fetch: r.fetch, retry: false, circuitBreaker: false, attemptTimeoutMs: false });
    const counter = countAbortControllers();
    await f('http://api.test/x');
    expect(r.calls).toEqual([{ input: 'http://api.test/x', init: undefined, args: 2 }]);
    expect(counter.count).toBe(0);
  });

  it('hands fetch the init as given, without a signal, when only a retry and a breaker run', async () => {
    const r = recording(503, 200);
    const f = createFetch({ fetch: r.fetch, retry: { backoff: constant(0) }, attemptTimeoutMs: false });
    const init = { method: 'PUT', body: 'b' };
    const res = await f('http://api.test/x', init);
    expect(res.status).toBe(200);
    expect(r.calls.map((c) => c.init)).toEqual([init, init]);
  });

  it('hands fetch one signal per attempt with an overall and an attempt timeout', async () => {
    const r = recording(200);
    const f = createFetch({ fetch: r.fetch, timeoutMs: 30_000 });
    const counter = countAbortControllers();
    await f('http://api.test/x');
    expect(r.calls[0]!.init!.signal).toBeInstanceOf(AbortSignal);
    expect(counter.count).toBe(1);
  });

  it('still sends the URL new URL() makes of a string that is not in its canonical form', async () => {
    const r = recording(200);
    const f = createFetch({ fetch: r.fetch });
    await f('HTTP://API.test:80/a/../b c');
    await f(new URL('http://api.test/u'));
    expect(r.calls.map((c) => c.input)).toEqual(['http://api.test/b%20c', 'http://api.test/u']);
    expect(f.circuitBreaker('http://api.test')).toBeDefined();
  });

  it('still rejects a malformed URL and an invalid header before any attempt', async () => {
    const r = recording(200);
    const f = createFetch({ fetch: r.fetch });
    await expect(f('/relative')).rejects.toThrow(TypeError);
    await expect(f('http://api.test/x', { headers: { 'bad header': 'v' } })).rejects.toThrow(TypeError);
    expect(r.calls).toHaveLength(0);
  });

  it('finds an idempotency key in a Headers object, a plain object and a Request', async () => {
    for (const make of [
      (): [string | Request, RequestInit?] => ['http://api.test/x', { method: 'POST', body: '{}', headers: new Headers({ 'Idempotency-Key': 'k' }) }],
      (): [string | Request, RequestInit?] => ['http://api.test/x', { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k' } }],
      (): [string | Request, RequestInit?] => [new Request('http://api.test/x', { method: 'POST', headers: { 'idempotency-key': 'k' } })],
    ]) {
      const r = recording(503, 200);
      const f = createFetch({ fetch: r.fetch, retry: { backoff: constant(0) } });
      const res = await f(...make());
      expect(res.status).toBe(200);
      expect(r.calls).toHaveLength(2);
    }
    const r = recording(503, 200);
    const f = createFetch({ fetch: r.fetch, retry: { backoff: constant(0) } });
    expect((await f('http://api.test/x', { method: 'POST', body: '{}' })).status).toBe(503);
    expect(r.calls).toHaveLength(1);
  });
});
