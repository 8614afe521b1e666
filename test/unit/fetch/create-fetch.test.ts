import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { createFetch, HttpStatusError, RetryAfterError, type FailoverEvent } from '../../../src/adapters/fetch.js';
import {
  BrokenCircuitError,
  channelNames,
  constant,
  consecutive,
  ManualClock,
  TimeoutError,
  type RetryEvent,
} from '../../../src/index.js';
import { abortListeners, capture, flush, rejection, status } from '../../support/helpers.js';

/** A scripted fetch: each call takes the next answer (a status, a Response, or an error). */
function scripted(answers: (number | Response | Error | ((url: string, init: RequestInit) => Promise<Response>))[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const responses: Response[] = [];
  const fetch = (input: Parameters<typeof globalThis.fetch>[0], init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    calls.push({ url, init: init ?? {} });
    const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
    if (typeof answer === 'function') return answer(url, init ?? {});
    if (answer instanceof Error) return Promise.reject(answer);
    const response = typeof answer === 'number' ? new Response(`status ${answer}`, { status: answer }) : answer;
    responses.push(response);
    return Promise.resolve(response);
  };
  return { fetch: fetch as typeof globalThis.fetch, calls, responses };
}

const networkError = (code: string): TypeError => new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
const url = 'http://api.test/x';

describe('createFetch: what counts as a failure', () => {
  it('retries a 503 and returns the success, cancelling the body of the response it gave up', async () => {
    const s = scripted([503, 200]);
    const f = createFetch({ fetch: s.fetch, retry: { backoff: constant(0) } });
    const res = await f(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('status 200');
    expect(s.calls).toHaveLength(2);
    expect(s.responses[0]!.bodyUsed).toBe(true); // cancelled, so its connection is freed
  });

  it('resolves with the last response when attempts run out on a failed status (like fetch)', async () => {
    const s = scripted([500, 502, 503]);
    const f = createFetch({ fetch: s.fetch, retry: { maxAttempts: 3, backoff: constant(0) } });
    const res = await f(url);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('status 503');
    expect(s.responses.slice(0, 2).every((r) => r.bodyUsed)).toBe(true);
  });

  it('passes through a status not in retryOn, untouched', async () => {
    const s = scripted([404]);
    const f = createFetch({ fetch: s.fetch });
    expect((await f(url)).status).toBe(404);
    expect(s.calls).toHaveLength(1);
    const custom = scripted([404, 200]);
    const g = createFetch({ fetch: custom.fetch, retryOn: [404], retry: { backoff: constant(0) } });
    expect((await g(url)).status).toBe(200);
  });

  it('retries a network error and rejects with it when attempts run out', async () => {
    const s = scripted([networkError('ECONNRESET')]);
    const f = createFetch({ fetch: s.fetch, retry: { maxAttempts: 2, backoff: constant(0) } });
    const error = await rejection(capture(f(url)));
    expect(error).toBeInstanceOf(TypeError);
    expect(s.calls).toHaveLength(2);
  });

  it('does not retry a TypeError without a cause (a bad argument, not the network)', async () => {
    const s = scripted([new TypeError('Invalid header value')]);
    const f = createFetch({ fetch: s.fetch, retry: { backoff: constant(0) } });
    await expect(f(url)).rejects.toThrow('Invalid header value');
    expect(s.calls).toHaveLength(1);
  });

  it('tells onRetry listeners about the failed status as an HttpStatusError', async () => {
    const s = scripted([new Response('', { status: 429, headers: { 'retry-after': '0' } }), 200]);
    const f = createFetch({ fetch: s.fetch, retry: { backoff: constant(0) } });
    const events: RetryEvent[] = [];
    const sub = f.onRetry((e) => events.push(e));
    await f(url);
    sub.dispose();
    expect(events).toHaveLength(1);
    const error = events[0]!.error as HttpStatusError;
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error.status).toBe(429);
    expect(error.retryAfterMs).toBe(0);
    expect(error.code).toBe('ERR_BULWARK_HTTP_STATUS');
  });
});

describe('createFetch: server-suggested delays (row F12)', () => {
  async function gap(header: Record<string, string>, maxDelayMs: number, advance: number[]): Promise<number[]> {
    const clock = new ManualClock();
    const s = scripted([new Response('', { status: 503, headers: header }), 200]);
    const f = createFetch({ fetch: s.fetch, clock, retry: { backoff: constant(7), maxDelayMs } });
    const done = capture(f(url));
    const seen: number[] = [];
    for (const ms of advance) {
      await clock.advance(ms);
      seen.push(s.calls.length);
    }
    expect((await done).ok).toBe(true);
    return seen;
  }

  it('waits Retry-After seconds', async () => {
    expect(await gap({ 'retry-after': '5' }, 60_000, [4_999, 1])).toEqual([1, 2]);
  });

  it('waits until a Retry-After date', async () => {
    const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 10_000);
    // Measured against the Date header, as the server's clock sees it.
    const headers = { 'retry-after': at.toUTCString(), date: new Date(at.getTime() - 3_000).toUTCString() };
    expect(await gap(headers, 60_000, [2_999, 1])).toEqual([1, 2]);
  });

  it('Regression (issue 12): a Retry-After beyond maxDelayMs ends the call with RetryAfterError, never an early retry', async () => {
    const clock = new ManualClock();
    const s = scripted([new Response('', { status: 503, headers: { 'retry-after': '99999999' } }), 200]);
    const f = createFetch({ fetch: s.fetch, clock, retry: { backoff: constant(7), maxDelayMs: 10_000 } });
    const error = await rejection(capture(f(url)));
    expect(error).toBeInstanceOf(RetryAfterError);
    expect(error).toMatchObject({ retryAfterMs: 2 ** 31 - 1, status: 503, origin: 'http://api.test' });
    expect(s.calls).toHaveLength(1);
    expect(s.responses[0]!.bodyUsed).toBe(true); // its connection is freed
  });

  it('ignores a garbage Retry-After and uses the backoff', async () => {
    expect(await gap({ 'retry-after': 'soon' }, 60_000, [6, 1])).toEqual([1, 2]);
  });

  it('takes the RateLimit header t as the delay', async () => {
    expect(await gap({ ratelimit: '"policy";r=0;t=3' }, 60_000, [2_999, 1])).toEqual([1, 2]);
  });
});

describe('createFetch: which requests are repeated (row F11)', () => {
  it('does not retry a POST, and resolves with its failed response', async () => {
    const s = scripted([503, 200]);
    const f = createFetch({ fetch: s.fetch, retry: { backoff: constant(0) } });
    const res = await f(url, { method: 'POST', body: '{}' });
    expect(res.status).toBe(503);
    expect(s.calls).toHaveLength(1);
    expect(res.bodyUsed).toBe(false);
  });

  it('does not retry a POST whose connection dropped, but retries it with an Idempotency-Key', async () => {
    const plain = scripted([networkError('ECONNRESET'), 200]);
    await expect(createFetch({ fetch: plain.fetch, retry: { backoff: constant(0) } })(url, { method: 'POST', body: 'x' })).rejects.toThrow('fetch failed');
    expect(plain.calls).toHaveLength(1);
    const keyed = scripted([networkError('ECONNRESET'), 200]);
    const res = await createFetch({ fetch: keyed.fetch, retry: { backoff: constant(0) } })(url, {
      method: 'POST',
      body: 'x',
      headers: { 'Idempotency-Key': 'order-17' },
    });
    expect(res.status).toBe(200);
    expect(keyed.calls).toHaveLength(2);
  });

  it('resends a POST whose connection was refused: it never left', async () => {
    const s = scripted([networkError('ECONNREFUSED'), 200]);
    const res = await createFetch({ fetch: s.fetch, retry: { backoff: constant(0) } })(url, { method: 'POST', body: 'x' });
    expect(res.status).toBe(200);
    expect(s.calls).toHaveLength(2);
  });

  it('never repeats a streamed body, even for PUT with an Idempotency-Key, even when refused', async () => {
    for (const error of [networkError('ECONNRESET'), networkError('ECONNREFUSED')]) {
      const s = scripted([error, 200]);
      const body = new ReadableStream({ pull: (c) => c.close() });
      const f = createFetch({ fetch: s.fetch, retry: { backoff: constant(0) } });
      await expect(f(url, { method: 'PUT', body, headers: { 'idempotency-key': 'k' } })).rejects.toThrow('fetch failed');
      expect(s.calls).toHaveLength(1);
    }
  });

  it('treats a Request with a body as streamed, and a GET Request as retryable', async () => {
    const s = scripted([503, 200]);
    const f = createFetch({ fetch: s.fetch, retry: { backoff: constant(0) } });
    expect((await f(new Request(url, { method: 'PUT', body: 'x' }))).status).toBe(503);
    expect(s.calls).toHaveLength(1);
    expect((await f(new Request(url))).status).toBe(200);
  });
});

describe('createFetch: a breaker per origin', () => {
  it('opens the breaker of the failing origin only, then rejects with BrokenCircuitError', async () => {
    const s = scripted([(u) => Promise.resolve(new Response('', { status: u.startsWith('http://bad') ? 500 : 200 }))]);
    const f = createFetch({ fetch: s.fetch, retry: false, circuitBreaker: { breaker: consecutive(2) } });
    await f('http://bad.test/');
    await f('http://bad.test/');
    expect(f.circuitBreaker('http://bad.test')?.state).toBe('open');
    const error = await rejection(capture(f('http://bad.test/')));
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(s.calls).toHaveLength(2);
    expect((await f('http://good.test/')).status).toBe(200);
    expect(f.circuitBreaker('http://good.test')?.state).toBe('closed');
  });

  it('does not count a 429 or a 408 against the breaker', async () => {
    const s = scripted([429]);
    const f = createFetch({ fetch: s.fetch, retry: false, circuitBreaker: { breaker: consecutive(1) } });
    await f(url);
    await f(url);
    expect(f.circuitBreaker(url)?.state).toBe('closed');
  });

  it("does not count the caller's cancellation, and rejects with the caller's reason, leaving no listener", async () => {
    const s = scripted([
      (_u, init) =>
        new Promise((_resolve, reject) => {
          init.signal!.addEventListener('abort', () => reject(init.signal!.reason), { once: true });
        }),
    ]);
    const f = createFetch({ fetch: s.fetch, circuitBreaker: { breaker: consecutive(1) }, attemptTimeoutMs: false });
    const controller = new AbortController();
    const call = capture(f(url, { signal: controller.signal }));
    await flush();
    const reason = new Error('user navigated away');
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    expect(f.circuitBreaker(url)?.state).toBe('closed');
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('keeps at most maxOrigins breakers, dropping the least recently used closed one', async () => {
    const s = scripted([200]);
    const f = createFetch({ fetch: s.fetch, maxOrigins: 2 });
    await f('http://a.test/');
    await f('http://b.test/');
    await f('http://a.test/'); // a is now the most recent
    await f('http://c.test/');
    expect(f.circuitBreaker('http://a.test')).toBeDefined();
    expect(f.circuitBreaker('http://b.test')).toBeUndefined();
    expect(f.circuitBreaker('http://c.test')).toBeDefined();
  });

  it('keeps an open breaker over a closed one when full', async () => {
    const s = scripted([(u) => Promise.resolve(new Response('', { status: u.includes('down') ? 503 : 200 }))]);
    const f = createFetch({ fetch: s.fetch, maxOrigins: 2, retry: false, circuitBreaker: { breaker: consecutive(1) } });
    await f('http://down.test/');
    await f('http://b.test/');
    await f('http://c.test/');
    expect(f.circuitBreaker('http://down.test')?.state).toBe('open');
    expect(f.circuitBreaker('http://b.test')).toBeUndefined();
  });

  // Issue 12: an origin dropped with a call running would have that call record its breaker's
  // metrics again after they were removed; one with nothing running goes first.
  it('drops an origin with nothing running before one whose call is still running', async () => {
    let answer: (() => void) | undefined;
    const s = scripted([
      (u) =>
        u.includes('busy')
          ? new Promise<Response>((resolve) => (answer = () => resolve(new Response('late'))))
          : Promise.resolve(new Response('ok')),
    ]);
    const f = createFetch({ fetch: s.fetch, maxOrigins: 2, retry: false });
    const running = f('http://busy.test/'); // the least recently used, still running
    await f('http://b.test/');
    await f('http://c.test/');
    expect(f.circuitBreaker('http://busy.test')).toBeDefined();
    expect(f.circuitBreaker('http://b.test')).toBeUndefined();
    answer!();
    await (await running).text();
  });
});

describe('createFetch: timeouts', () => {
  const hanging = (_u: string, init: RequestInit): Promise<Response> =>
    new Promise((_resolve, reject) => init.signal!.addEventListener('abort', () => reject(init.signal!.reason), { once: true }));

  it('rejects with TimeoutError at the attempt timeout, aborting the request', async () => {
    const clock = new ManualClock();
    const s = scripted([hanging]);
    const f = createFetch({ fetch: s.fetch, clock, attemptTimeoutMs: 100, retry: false });
    const call = capture(f(url));
    await clock.advance(99);
    expect(await status(call)).toBe('pending');
    await clock.advance(1);
    const error = await rejection(call);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(s.calls[0]!.init.signal!.aborted).toBe(true);
  });

  it('retries a timed-out attempt, and the overall timeout bounds attempts and waits', async () => {
    const clock = new ManualClock();
    const s = scripted([hanging]);
    const f = createFetch({ fetch: s.fetch, clock, attemptTimeoutMs: 100, timeoutMs: 250, retry: { maxAttempts: 5, backoff: constant(10) } });
    const call = capture(f(url));
    await clock.advance(249);
    expect(s.calls).toHaveLength(3); // 0–100, 110–210, 220–
    await clock.advance(1);
    const error = (await rejection(call)) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.timeoutMs).toBe(250);
    expect(s.calls.every((c) => c.init.signal!.aborted)).toBe(true);
  });
});

describe('createFetch: failover between endpoints', () => {
  it('fails over to the standby, ejects the primary while its breaker is open, and returns once a probe succeeds', async () => {
    const clock = new ManualClock();
    let primaryUp = false;
    const s = scripted([(u) => Promise.resolve(new Response(u, { status: u.startsWith('http://primary') && !primaryUp ? 503 : 200 }))]);
    const f = createFetch({
      fetch: s.fetch,
      clock,
      endpoints: ['http://primary.test/api', 'http://standby.test/api'],
      retry: { maxAttempts: 2, backoff: constant(0) },
      circuitBreaker: { breaker: consecutive(2), halfOpenAfterMs: 1_000 },
    });
    const events: FailoverEvent[] = [];
    const published: unknown[] = [];
    const onMessage = (m: unknown): void => void published.push(m);
    subscribe(channelNames.fetchFailover, onMessage);
    const sub = f.onFailover((e) => events.push(e));
    try {
      expect(await (await f('/users?id=1')).text()).toBe('http://standby.test/api/users?id=1');
      expect(s.calls.map((c) => c.url)).toEqual(['http://primary.test/api/users?id=1', 'http://standby.test/api/users?id=1']);
      expect(events).toEqual([{ policy: 'fetch', from: 'http://primary.test', to: 'http://standby.test', reason: 'failure' }]);

      await f('/users'); // the primary's second failure opens its breaker
      expect(f.circuitBreaker('http://primary.test')?.state).toBe('open');
      s.calls.length = 0;
      events.length = 0;
      expect((await f('/users')).status).toBe(200);
      expect(s.calls.map((c) => c.url)).toEqual(['http://standby.test/api/users']); // ejected: not even tried
      expect(events).toEqual([{ policy: 'fetch', from: 'http://primary.test', to: 'http://standby.test', reason: 'circuit-open' }]);

      primaryUp = true;
      await clock.advance(1_000);
      s.calls.length = 0;
      events.length = 0;
      await f('/users'); // the probe
      await f('/users');
      expect(s.calls.map((c) => c.url)).toEqual(['http://primary.test/api/users', 'http://primary.test/api/users']);
      expect(f.circuitBreaker('http://primary.test')?.state).toBe('closed');
      expect(events).toEqual([]);
      expect(published).toHaveLength(3); // the same three failovers, on the channel
    } finally {
      sub.dispose();
      unsubscribe(channelNames.fetchFailover, onMessage);
    }
  });

  it('rejects with BrokenCircuitError when every endpoint is open, naming the soonest probe', async () => {
    const clock = new ManualClock();
    const s = scripted([503]);
    const f = createFetch({
      fetch: s.fetch,
      clock,
      endpoints: ['http://a.test', 'http://b.test'],
      retry: false,
      circuitBreaker: { breaker: consecutive(1), halfOpenAfterMs: 1_000 },
    });
    await f('/'); // opens a
    await clock.advance(300);
    await f('/'); // opens b (a is skipped)
    const error = (await rejection(capture(f('/')))) as BrokenCircuitError;
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(error.retryAfterMs).toBe(700);
    expect(s.calls).toHaveLength(2);
  });

  it('sends a POST to the standby when the primary is open (nothing was sent), but does not retry it after a failure', async () => {
    const s = scripted([(u) => Promise.resolve(new Response('', { status: u.startsWith('http://a') ? 503 : 201 }))]);
    const f = createFetch({
      fetch: s.fetch,
      endpoints: ['http://a.test', 'http://b.test'],
      retry: { backoff: constant(0) },
      circuitBreaker: { breaker: consecutive(1) },
    });
    expect((await f('/orders', { method: 'POST', body: '{}' })).status).toBe(503); // a failed: not retried elsewhere
    expect((await f('/orders', { method: 'POST', body: '{}' })).status).toBe(201); // a open: straight to b
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/orders', 'http://b.test/orders']);
  });

  it('ignores a Retry-After of one endpoint when a standby can take the retry', async () => {
    const clock = new ManualClock();
    const s = scripted([(u) => Promise.resolve(new Response('', { status: u.startsWith('http://a') ? 503 : 200, headers: { 'retry-after': '60' } }))]);
    const f = createFetch({ fetch: s.fetch, clock, endpoints: ['http://a.test', 'http://b.test'], retry: { backoff: constant(5) } });
    const call = capture(f('/'));
    await clock.advance(5);
    expect(((await call) as { ok: true; value: Response }).value.status).toBe(200);
  });
});

describe('createFetch: more', () => {
  it('runs the outbound call inside the policies, so async context flows into it', async () => {
    const { AsyncLocalStorage } = await import('node:async_hooks');
    const store = new AsyncLocalStorage<string>();
    const seen: (string | undefined)[] = [];
    const s = scripted([
      () => {
        seen.push(store.getStore());
        return Promise.resolve(new Response('', { status: seen.length === 1 ? 503 : 200 }));
      },
    ]);
    const f = createFetch({ fetch: s.fetch, retry: { backoff: constant(0) }, timeoutMs: 1_000 });
    await store.run('request-42', () => f(url));
    expect(seen).toEqual(['request-42', 'request-42']);
  });

  it('traces a whole call as one execute span named after the fetch', async () => {
    const { tracingChannel } = await import('node:diagnostics_channel');
    const channel = tracingChannel(channelNames.execute);
    const starts: unknown[] = [];
    const handlers = { start: (m: unknown) => void starts.push(m) };
    channel.subscribe(handlers as never);
    try {
      await createFetch({ fetch: scripted([200]).fetch, name: 'prices' })(url);
    } finally {
      channel.unsubscribe(handlers as never);
    }
    expect(starts).toContainEqual(expect.objectContaining({ kind: 'pipeline', policy: 'prices' }));
    expect(starts).toContainEqual(expect.objectContaining({ kind: 'circuit-breaker', policy: `prices http://api.test` }));
  });

  it('keeps no breaker, and no per-origin state, with circuitBreaker: false', async () => {
    const s = scripted([500]);
    const f = createFetch({ fetch: s.fetch, circuitBreaker: false, retry: false });
    for (let i = 0; i < 10; i++) expect((await f(`http://h${i}.test/`)).status).toBe(500);
    expect(f.circuitBreaker('http://h0.test')).toBeUndefined();
  });

  it('frees an earlier failed response as soon as a later attempt fails too', async () => {
    const clock = new ManualClock();
    const s = scripted([500, 500, 200]);
    const f = createFetch({ fetch: s.fetch, clock, retry: { maxAttempts: 3, backoff: constant(10) } });
    const call = capture(f(url));
    await clock.advance(10);
    expect(s.responses[0]!.bodyUsed).toBe(true);
    await clock.advance(10);
    expect(((await call) as { ok: true; value: Response }).value.status).toBe(200);
    expect(s.responses[1]!.bodyUsed).toBe(true);
  });

  it('sends a hedge to the standby while the primary is slow, and says so', async () => {
    const clock = new ManualClock();
    const s = scripted([
      (u, init) =>
        u.startsWith('http://a')
          ? new Promise((_resolve, reject) => init.signal!.addEventListener('abort', () => reject(init.signal!.reason), { once: true }))
          : Promise.resolve(new Response('b')),
    ]);
    const f = createFetch({ fetch: s.fetch, clock, endpoints: ['http://a.test', 'http://b.test'], hedge: { delayMs: 50 } });
    const events: FailoverEvent[] = [];
    f.onFailover((e) => events.push(e));
    const call = capture(f('/'));
    await clock.advance(50);
    const outcome = (await call) as { ok: true; value: Response };
    expect(await outcome.value.text()).toBe('b');
    expect(events).toEqual([{ policy: 'fetch', from: 'http://a.test', to: 'http://b.test', reason: 'hedge' }]);
    expect(s.calls[0]!.init.signal!.aborted).toBe(true); // the slow attempt lost and was aborted
    expect(f.circuitBreaker('http://a.test')?.state).toBe('closed'); // a lost hedge is not a failure
  });
});

describe("createFetch: the caller's signal", () => {
  it('is left with no listener after retried, hedged and timed calls, whether they succeed or fail', async () => {
    const controller = new AbortController();
    const clock = new ManualClock();
    const s = scripted([503, 503, 200, 503]);
    const f = createFetch({ fetch: s.fetch, clock, timeoutMs: 1_000, attemptTimeoutMs: 100, hedge: { delayMs: 10 }, retry: { maxAttempts: 2, backoff: constant(0) } });
    const ok = capture(f(url, { signal: controller.signal }));
    await clock.advance(20);
    await ok;
    const failed = capture(createFetch({ fetch: scripted([networkError('ECONNRESET')]).fetch, retry: { backoff: constant(0) } })(url, { signal: controller.signal }));
    expect((await failed).ok).toBe(false);
    const posted = capture(f(url, { method: 'POST', body: 'x', signal: controller.signal }));
    await clock.advance(1);
    await posted;
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('rejects at once with the reason when the signal is already aborted, sending nothing', async () => {
    const s = scripted([200]);
    const reason = new Error('already gone');
    for (const options of [{ fetch: s.fetch }, { fetch: s.fetch, retry: false as const }]) {
      const f = createFetch(options);
      expect(await rejection(capture(f(url, { method: 'POST', body: new ReadableStream(), signal: AbortSignal.abort(reason) })))).toBe(reason);
      expect(await rejection(capture(f(url, { signal: AbortSignal.abort(reason) })))).toBe(reason);
    }
    expect(s.calls).toHaveLength(0);
  });
});

describe("createFetch: a fetch option that ignores its signal", () => {
  it("still rejects at once with the caller's reason, under no policy at all", async () => {
    let finish: (r: Response) => void = () => {};
    const s = scripted([() => new Promise<Response>((resolve) => (finish = resolve))]);
    const f = createFetch({ fetch: s.fetch, retry: false, circuitBreaker: false, attemptTimeoutMs: false });
    const controller = new AbortController();
    const call = capture(f(url, { method: 'POST', body: new ReadableStream(), signal: controller.signal }));
    await flush();
    controller.abort(new Error('stop'));
    expect(((await rejection(call)) as Error).message).toBe('stop');
    expect(abortListeners(controller.signal)).toBe(0);
    const late = new Response('late');
    finish(late);
    await flush();
    expect(late.bodyUsed).toBe(true); // answered after the call ended: cancelled
  });
});

describe('createFetch: rate limit', () => {
  function decider(kind: string, allowedCalls: number) {
    const keys: string[] = [];
    return {
      keys,
      limiter: {
        kind,
        name: 'fake',
        consume: (key: string) => {
          keys.push(key);
          const allowed = keys.length > allowedCalls;
          return Promise.resolve({ allowed, limit: 1, remaining: 0, resetMs: 500, retryAfterMs: allowed ? 0 : 500, store: 'memory' });
        },
      },
    };
  }

  it('keys by origin, and a denial is retried after its retryAfterMs without reaching the server', async () => {
    const clock = new ManualClock();
    const d = decider('rate-limiter', 1);
    const s = scripted([200]);
    const f = createFetch({ fetch: s.fetch, clock, rateLimit: { limiter: d.limiter }, retry: { backoff: constant(1) }, circuitBreaker: { breaker: consecutive(1) } });
    const call = capture(f('http://api.test:8080/a?b'));
    await clock.advance(499);
    expect(s.calls).toHaveLength(0);
    await clock.advance(1);
    expect((await call).ok).toBe(true);
    expect(d.keys).toEqual(['http://api.test:8080', 'http://api.test:8080']);
    expect(f.circuitBreaker('http://api.test:8080')?.state).toBe('closed'); // our own limit is not the server's failure
  });

  it('takes a key from the URL and a cost; an exhausted quota rejects with QuotaExceededError, unretried', async () => {
    const d = decider('quota', 5);
    const costs: unknown[] = [];
    const limiter = { ...d.limiter, consume: (key: string, o?: { cost?: number }) => (costs.push(o?.cost), d.limiter.consume(key)) };
    const f = createFetch({ fetch: scripted([200]).fetch, rateLimit: { limiter, key: (u) => u.pathname, cost: 3 } });
    const error = await rejection(capture(f('http://api.test/tenant/7')));
    expect(error).toMatchObject({ name: 'QuotaExceededError', code: 'ERR_BULWARK_QUOTA_EXCEEDED' });
    expect(d.keys).toEqual(['/tenant/7']);
    expect(costs).toEqual([3]);
  });
});

describe('createFetch: a pause one call was asked for holds for every call (issue 12)', () => {
  const busy = (seconds: string): Response => new Response('busy', { status: 503, headers: { 'retry-after': seconds } });

  it('Regression (issue 12): another call to the origin rejects at once with RetryAfterError until the pause ends', async () => {
    const clock = new ManualClock();
    const s = scripted([busy('2'), 200]);
    const f = createFetch({ fetch: s.fetch, clock, retry: false });
    expect((await f(url)).status).toBe(503); // not retried: resolves with the answer
    const error = await rejection(capture(f('http://api.test/other')));
    expect(error).toBeInstanceOf(RetryAfterError);
    expect(error).toMatchObject({ origin: 'http://api.test', retryAfterMs: 2_000, status: undefined });
    expect(s.calls).toHaveLength(1);
    await clock.advance(1_900);
    expect(await rejection(capture(f(url)))).toMatchObject({ retryAfterMs: 100 });
    await clock.advance(100);
    expect((await f(url)).status).toBe(200);
    expect((await f('http://other.test/')).status).toBe(200); // other origins were never paused
  });

  it('keeps pause state within maxOrigins, dropping idle origins before a paused one', async () => {
    const clock = new ManualClock();
    const s = scripted([busy('60'), 200]);
    const f = createFetch({ fetch: s.fetch, clock, retry: false, circuitBreaker: false, maxOrigins: 2 });
    await f('http://a.test/');
    for (const host of ['b', 'c', 'd', 'e']) await f(`http://${host}.test/`);
    // Four idle origins came and went; a's pause was kept throughout.
    expect(await rejection(capture(f('http://a.test/')))).toBeInstanceOf(RetryAfterError);
    expect(s.calls).toHaveLength(5);
  });

  it('with endpoints, a paused endpoint is skipped by other calls (reason server-backoff), and all paused fail fast', async () => {
    const clock = new ManualClock();
    const s = scripted([busy('10'), 200, busy('20'), 200]);
    const f = createFetch({ fetch: s.fetch, clock, endpoints: ['http://a.test', 'http://b.test'], retry: false, circuitBreaker: false });
    const events: FailoverEvent[] = [];
    f.onFailover((e) => events.push(e));
    expect((await f('/x')).status).toBe(503); // a asks for 10 s
    expect((await f('/x')).status).toBe(200); // goes straight to b
    expect(events).toEqual([{ policy: 'fetch', from: 'http://a.test', to: 'http://b.test', reason: 'server-backoff' }]);
    expect((await f('/x')).status).toBe(503); // b asks for 20 s
    const error = await rejection(capture(f('/x')));
    expect(error).toMatchObject({ name: 'RetryAfterError', origin: 'http://a.test', retryAfterMs: 10_000 });
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/x', 'http://b.test/x', 'http://b.test/x']);
    await clock.advance(10_000);
    expect((await f('/x')).status).toBe(200);
    expect(s.calls.at(-1)!.url).toBe('http://a.test/x');
  });

  it("with serverBackoff: 'wait', another call waits the pause out, and the caller can still abort the wait", async () => {
    const clock = new ManualClock();
    const s = scripted([busy('5'), 200]);
    const f = createFetch({ fetch: s.fetch, clock, retry: false, serverBackoff: 'wait' });
    await f(url);
    const waiting = capture(f(url));
    const controller = new AbortController();
    const leaving = capture(f(url, { signal: controller.signal }));
    await clock.advance(4_999);
    expect(s.calls).toHaveLength(1);
    const reason = new Error('left');
    controller.abort(reason);
    expect(await rejection(leaving)).toBe(reason);
    expect(abortListeners(controller.signal)).toBe(0);
    await clock.advance(1);
    expect(((await waiting) as { ok: true; value: Response }).value.status).toBe(200);
    expect(s.calls).toHaveLength(2);
  });
});

describe('createFetch: a keyed POST stays on the endpoint it may have reached (issue 12, F11/C6)', () => {
  const keyed = { method: 'POST', body: '{}', headers: { 'Idempotency-Key': 'k-1' } };
  const dropped = (): TypeError => networkError('ECONNRESET');

  it('Regression (issue 12): after a dropped connection its retries go to the same endpoint', async () => {
    const s = scripted([dropped(), dropped(), 201]);
    const f = createFetch({ fetch: s.fetch, endpoints: ['http://a.test', 'http://b.test'], retry: { maxAttempts: 3, backoff: constant(0) }, circuitBreaker: false });
    expect((await f('/orders', keyed)).status).toBe(201);
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/orders', 'http://a.test/orders', 'http://a.test/orders']);
  });

  it('after an attempt timeout too (the request may have arrived)', async () => {
    const clock = new ManualClock();
    const s = scripted([(_u, init) => new Promise<Response>((_resolve, reject) => init.signal!.addEventListener('abort', () => reject(init.signal!.reason), { once: true })), 201]);
    const f = createFetch({ fetch: s.fetch, clock, endpoints: ['http://a.test', 'http://b.test'], attemptTimeoutMs: 100, retry: { maxAttempts: 2, backoff: constant(0) }, circuitBreaker: false });
    const call = capture(f('/orders', keyed));
    await clock.advance(100);
    expect(((await call) as { ok: true; value: Response }).value.status).toBe(201);
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/orders', 'http://a.test/orders']);
  });

  it("rejects with the endpoint's BrokenCircuitError rather than moving when its breaker opens", async () => {
    const s = scripted([dropped(), 201]);
    const f = createFetch({ fetch: s.fetch, endpoints: ['http://a.test', 'http://b.test'], retry: { maxAttempts: 3, backoff: constant(0) }, circuitBreaker: { breaker: consecutive(1) } });
    expect(await rejection(capture(f('/orders', keyed)))).toBeInstanceOf(BrokenCircuitError);
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/orders']);
  });

  it('moves when the error proves the request never left (connection refused, DNS)', async () => {
    const s = scripted([networkError('ECONNREFUSED'), networkError('ENOTFOUND'), 201]);
    const f = createFetch({ fetch: s.fetch, endpoints: ['http://a.test', 'http://b.test', 'http://c.test'], retry: { maxAttempts: 3, backoff: constant(0) }, circuitBreaker: false });
    expect((await f('/orders', keyed)).status).toBe(201);
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/orders', 'http://b.test/orders', 'http://c.test/orders']);
  });
});

describe('createFetch: a delay that would outlast the overall timeout', () => {
  it('returns the response at once instead of waiting into a TimeoutError', async () => {
    const clock = new ManualClock();
    const s = scripted([new Response('busy', { status: 503, headers: { 'retry-after': '10' } }), 200]);
    const f = createFetch({ fetch: s.fetch, clock, timeoutMs: 5_000, retry: { backoff: constant(1) } });
    const res = await f(url);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('busy');
    expect(s.calls).toHaveLength(1);
  });

  it('still waits a delay that fits in the time left', async () => {
    const clock = new ManualClock();
    const s = scripted([new Response('busy', { status: 503, headers: { 'retry-after': '2' } }), 200]);
    const f = createFetch({ fetch: s.fetch, clock, timeoutMs: 5_000, retry: { backoff: constant(1) } });
    const call = capture(f(url));
    await clock.advance(2_000);
    expect(((await call) as { ok: true; value: Response }).value.status).toBe(200);
  });
});

describe('createFetch: review fixes', () => {
  it("treats init.body null as the Request's own streamed body: not retried, resolves with the 503", async () => {
    // A fetch that builds the request as undici does, so a used Request body throws on reuse.
    let calls = 0;
    const fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      calls++;
      try {
        void new Request(input, init);
      } catch (error) {
        return Promise.reject(error);
      }
      if (input instanceof Request && !input.bodyUsed) void input.arrayBuffer().catch(() => {});
      return Promise.resolve(new Response('busy', { status: 503 }));
    }) as typeof globalThis.fetch;
    const f = createFetch({ fetch, retry: { backoff: constant(0) } });
    const res = await f(new Request(url, { method: 'PUT', body: 'x' }), { body: null });
    expect(res.status).toBe(503);
    expect(calls).toBe(1);
  });

  it("does not count a caller's abort while the rate limiter decides against the breaker", async () => {
    const limiter = {
      kind: 'rate-limiter',
      name: 'slow',
      consume: (_key: string, o?: { signal?: AbortSignal }) =>
        new Promise<never>((_resolve, reject) => {
          o?.signal?.addEventListener('abort', () => reject(o.signal!.reason), { once: true });
        }),
    };
    const s = scripted([200]);
    const f = createFetch({ fetch: s.fetch, rateLimit: { limiter }, circuitBreaker: { breaker: consecutive(1) }, attemptTimeoutMs: false });
    const controller = new AbortController();
    const call = capture(f(url, { signal: controller.signal }));
    await flush();
    const reason = new Error('user left');
    controller.abort(reason);
    expect(await rejection(call)).toBe(reason);
    expect(f.circuitBreaker(url)?.state).toBe('closed');
    expect(s.calls).toHaveLength(0);
  });

  it("honours an endpoint's Retry-After when the retry comes back to it (every endpoint asked for a delay)", async () => {
    const clock = new ManualClock();
    const s = scripted([() => Promise.resolve(new Response('', { status: 503, headers: { 'retry-after': '60' } }))]);
    const f = createFetch({
      fetch: s.fetch,
      clock,
      endpoints: ['http://a.test', 'http://b.test'],
      retry: { maxAttempts: 3, backoff: constant(5), maxDelayMs: 120_000 },
      circuitBreaker: false,
    });
    const call = capture(f('/'));
    await clock.advance(5);
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/', 'http://b.test/']); // a asked for 60 s, b was free
    await clock.advance(1_000);
    expect(s.calls).toHaveLength(2); // a and b both asked for 60 s: neither is hit again before
    await clock.advance(59_000);
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/', 'http://b.test/', 'http://a.test/']);
    expect(((await call) as { ok: true; value: Response }).value.status).toBe(503);
  });

  it('does not hedge at once a request whose server just asked for a delay: the retry waits it', async () => {
    const clock = new ManualClock();
    const s = scripted([new Response('', { status: 429, headers: { 'retry-after': '5' } }), 200]);
    const f = createFetch({ fetch: s.fetch, clock, hedge: { delayMs: 1_000 }, retry: { backoff: constant(1) } });
    const call = capture(f(url));
    await flush();
    expect(s.calls).toHaveLength(1); // no failure-triggered hedge to a server that said "in 5 s"
    await clock.advance(4_999);
    expect(s.calls).toHaveLength(1);
    await clock.advance(1);
    expect(((await call) as { ok: true; value: Response }).value.status).toBe(200);
    expect(s.calls).toHaveLength(2);
  });

  it("does not count a bad argument (a TypeError without a cause) against the origin's breaker", async () => {
    const s = scripted([new TypeError('Request with GET/HEAD method cannot have body.'), 200]);
    const f = createFetch({ fetch: s.fetch, circuitBreaker: { breaker: consecutive(1) } });
    await expect(f(url, { body: 'x' })).rejects.toThrow('cannot have body');
    expect(f.circuitBreaker(url)?.state).toBe('closed');
    expect((await f(url)).status).toBe(200);
  });

  it('rejects with RetryAfterError when every endpoint asked for longer than maxDelayMs', async () => {
    const clock = new ManualClock();
    const s = scripted([() => Promise.resolve(new Response('', { status: 503, headers: { 'retry-after': '60' } }))]);
    const f = createFetch({ fetch: s.fetch, clock, endpoints: ['http://a.test', 'http://b.test'], retry: { maxAttempts: 3, backoff: constant(5) }, circuitBreaker: false });
    const call = capture(f('/'));
    await clock.advance(5);
    const error = await rejection(call);
    expect(error).toBeInstanceOf(RetryAfterError);
    expect((error as RetryAfterError).retryAfterMs).toBeGreaterThan(30_000);
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/', 'http://b.test/']);
  });

  it('sends the retry to the endpoint whose asked-for delay ends first', async () => {
    const clock = new ManualClock();
    const s = scripted([(u) => Promise.resolve(new Response('', { status: 503, headers: { 'retry-after': u.startsWith('http://a') ? '60' : '30' } }))]);
    const f = createFetch({ fetch: s.fetch, clock, endpoints: ['http://a.test', 'http://b.test'], retry: { maxAttempts: 3, backoff: constant(5) }, circuitBreaker: false });
    const call = capture(f('/'));
    await clock.advance(5);
    await clock.advance(29_999);
    expect(s.calls).toHaveLength(2);
    await clock.advance(1);
    expect(s.calls.map((c) => c.url)).toEqual(['http://a.test/', 'http://b.test/', 'http://b.test/']);
    expect((await call).ok).toBe(true);
  });
});
