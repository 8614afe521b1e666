// bulwark/fetch's `propagate` (issue 15 §2): the caller's class and remaining deadline go out as
// headers from the admission scope; a call whose deadline has passed is never sent, and one whose
// deadline passes while it runs ends then, whatever its own timeouts say.
import { describe, expect, it } from 'vitest';
import { createFetch, DEADLINE_HEADER, DeadlineExceededError, PRIORITY_HEADER, RetryAfterError } from '../../../src/adapters/fetch.js';
import { consecutive, constant, ManualClock, withAdmissionScope } from '../../../src/index.js';
import { abortListeners, capture, flush, rejection, status } from '../../support/helpers.js';

const url = 'http://api.test/x';

/** A fetch that records each request's headers and answers with the next status (or hangs until aborted). */
function recording(answers: (number | 'hang' | (() => Response))[] = [200]) {
  const sent: Headers[] = [];
  const urls: string[] = [];
  const fetch = (input: Parameters<typeof globalThis.fetch>[0], init?: RequestInit): Promise<Response> => {
    urls.push(input instanceof Request ? input.url : String(input));
    sent.push(new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined)));
    const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
    if (typeof answer === 'function') return Promise.resolve(answer());
    if (answer !== 'hang') return Promise.resolve(new Response(null, { status: answer }));
    return new Promise((_resolve, reject) => {
      const signal = init?.signal;
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  };
  return { fetch: fetch as typeof globalThis.fetch, sent, urls };
}

/** The names of the headers sent, sorted. */
function names(headers: Headers): string[] {
  const all: string[] = [];
  headers.forEach((_value, name) => all.push(name));
  return all.sort();
}

describe('createFetch propagate: headers', () => {
  it('sends nothing by default, even inside a scope (propagation is opt-in)', async () => {
    const r = recording();
    const f = createFetch({ fetch: r.fetch });
    await withAdmissionScope({ priority: 'critical', deadline: Date.now() + 5_000 }, () => f(url));
    expect(r.sent[0]!.has(PRIORITY_HEADER)).toBe(false);
    expect(r.sent[0]!.has(DEADLINE_HEADER)).toBe(false);
  });

  it('without propagate, an expired scope deadline does not stop the call', async () => {
    const r = recording();
    const f = createFetch({ fetch: r.fetch });
    expect((await withAdmissionScope({ deadline: Date.now() - 1 }, () => f(url))).status).toBe(200);
  });

  it("sends the scope's class by name and the whole ms left", async () => {
    const r = recording();
    const f = createFetch({ fetch: r.fetch, propagate: true });
    const before = Date.now();
    await withAdmissionScope({ priority: 0, deadline: before + 2_000 }, () => f(url));
    expect(r.sent[0]!.get(PRIORITY_HEADER)).toBe('sheddable');
    const left = Number(r.sent[0]!.get(DEADLINE_HEADER));
    expect(left).toBeGreaterThan(1_900);
    expect(left).toBeLessThanOrEqual(2_000);
  });

  it('sends nothing outside a scope, and only what the scope has', async () => {
    const r = recording();
    const f = createFetch({ fetch: r.fetch, propagate: true });
    await f(url);
    await withAdmissionScope({ tenant: 'acme' }, () => f(url));
    await withAdmissionScope({ priority: 'degraded' }, () => f(url));
    expect(r.sent.map(names)).toEqual([[], [], [PRIORITY_HEADER]]);
  });

  it('sends only the fields named in { priority, deadline }', async () => {
    const r = recording();
    const scope = { priority: 'critical', deadline: Date.now() + 5_000 } as const;
    await withAdmissionScope(scope, () => createFetch({ fetch: r.fetch, propagate: { priority: true } })(url));
    await withAdmissionScope(scope, () => createFetch({ fetch: r.fetch, propagate: { deadline: true } })(url));
    expect(r.sent.map(names)).toEqual([[PRIORITY_HEADER], [DEADLINE_HEADER]]);
  });

  it("keeps the request's own headers, a Request's too, and a propagation header it sets itself", async () => {
    const r = recording();
    const f = createFetch({ fetch: r.fetch, propagate: true });
    await withAdmissionScope({ priority: 'critical', deadline: Date.now() + 5_000 }, async () => {
      await f(url, { headers: { 'x-trace': 'a', [PRIORITY_HEADER]: 'sheddable' } });
      await f(new Request(url, { headers: { 'x-trace': 'b' } }));
    });
    expect(r.sent[0]!.get('x-trace')).toBe('a');
    expect(r.sent[0]!.get(PRIORITY_HEADER)).toBe('sheddable');
    expect(r.sent[0]!.has(DEADLINE_HEADER)).toBe(true);
    expect(r.sent[1]!.get('x-trace')).toBe('b');
    expect(r.sent[1]!.get(PRIORITY_HEADER)).toBe('critical');
  });

  it('sends each retry the time left when it is sent', async () => {
    const r = recording([503, 200]);
    const f = createFetch({ fetch: r.fetch, propagate: true, retry: { backoff: constant(60) } });
    await withAdmissionScope({ deadline: Date.now() + 5_000 }, () => f(url));
    const [first, second] = r.sent.map((h) => Number(h.get(DEADLINE_HEADER)));
    expect(first! - second!).toBeGreaterThanOrEqual(50);
  });
});

describe('createFetch propagate: the deadline bounds the call', () => {
  it('rejects at once with DeadlineExceededError when the deadline has passed, sending nothing', async () => {
    const r = recording();
    const f = createFetch({ fetch: r.fetch, propagate: true });
    const deadline = Date.now() - 1;
    const error = await rejection(capture(withAdmissionScope({ deadline }, () => f(url))));
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ code: 'ERR_BULWARK_DEADLINE_EXCEEDED', deadline });
    // A fast-fail error: made at request rate in an incident, so it captures no stack frames.
    expect((error as Error).stack).toBe("DeadlineExceededError: The caller's deadline has passed");
    expect(r.sent).toHaveLength(0);
  });

  it('ends a running call when the deadline passes, before its longer attempt timeout, and no breaker counts it', async () => {
    const clock = new ManualClock();
    const r = recording(['hang']);
    const f = createFetch({ fetch: r.fetch, clock, propagate: { deadline: true }, attemptTimeoutMs: 10_000, circuitBreaker: { breaker: consecutive(1) } });
    for (let i = 0; i < 3; i++) {
      const call = capture(withAdmissionScope({ deadline: Date.now() + 500 }, () => f(url)));
      await flush();
      await clock.advance(400);
      expect(await status(call)).toBe('pending');
      await clock.advance(200);
      expect(await rejection(call)).toBeInstanceOf(DeadlineExceededError);
    }
    expect(f.circuitBreaker(url)!.state).toBe('closed');
  });

  it('ends a retry wait at the deadline rather than sleeping past it', async () => {
    const clock = new ManualClock();
    const r = recording([503]);
    const f = createFetch({ fetch: r.fetch, clock, propagate: true, retry: { maxAttempts: 3, backoff: constant(1_000) } });
    const call = capture(withAdmissionScope({ deadline: Date.now() + 300 }, () => f(url)));
    await flush();
    await clock.advance(350);
    expect(await rejection(call)).toBeInstanceOf(DeadlineExceededError);
    expect(r.sent).toHaveLength(1);
  });

  it("still ends with the caller's own reason when the caller aborts first, and leaves no listener on its signal", async () => {
    const r = recording(['hang']);
    const f = createFetch({ fetch: r.fetch, propagate: true, retry: false });
    const controller = new AbortController();
    const call = capture(withAdmissionScope({ deadline: Date.now() + 5_000 }, () => f(url, { signal: controller.signal })));
    await flush();
    controller.abort(new Error('user left'));
    expect(await rejection(call)).toMatchObject({ message: 'user left' });
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('a call that settles in time leaves no timer and no listener behind', async () => {
    const r = recording();
    const f = createFetch({ fetch: r.fetch, propagate: true });
    const controller = new AbortController();
    await withAdmissionScope({ deadline: Date.now() + 60_000 }, () => f(url, { signal: controller.signal }));
    expect(abortListeners(controller.signal)).toBe(0);
    // The test setup fails the test on a timer left running.
  });
});

describe('createFetch propagate: pauses a server asks for, by class', () => {
  const busy = (): Response => new Response(null, { status: 503, headers: { 'retry-after': '5' } });
  const as = (priority: 'critical' | 'degraded' | 'sheddable' | undefined, f: (u: string) => Promise<Response>) =>
    capture(priority === undefined ? f(url) : withAdmissionScope({ priority }, () => f(url)));

  // Regression: a downstream service shedding sheddable calls by priority answers them 503 with
  // Retry-After; the pause held for every call of the fetch, so its critical calls were refused
  // by the caller's own fetch for the whole pause.
  it("a pause asked of a sheddable call holds sheddable calls only: a critical one still goes", async () => {
    const r = recording([busy, 200]);
    const f = createFetch({ fetch: r.fetch, propagate: { priority: true }, retry: false });
    expect((await as('sheddable', f)).ok).toBe(true);
    expect(await rejection(as('sheddable', f))).toBeInstanceOf(RetryAfterError);
    const critical = await as('critical', f);
    expect(critical.ok && critical.value.status).toBe(200);
    expect(r.sent.map((h) => h.get(PRIORITY_HEADER))).toEqual(['sheddable', 'critical']);
  });

  it('a pause asked of a critical call holds every class; a call without a class is sent as degraded', async () => {
    const r = recording([busy]);
    const f = createFetch({ fetch: r.fetch, propagate: { priority: true }, retry: false });
    await as('critical', f);
    for (const p of ['critical', 'sheddable', undefined] as const) expect(await rejection(as(p, f)), String(p)).toBeInstanceOf(RetryAfterError);
    expect(r.sent).toHaveLength(1);
    const g = createFetch({ fetch: recording([busy, 200]).fetch, propagate: { priority: true }, retry: false });
    await as(undefined, g); // degraded
    expect(await rejection(as('sheddable', g))).toBeInstanceOf(RetryAfterError);
    expect((await as('critical', g)).ok).toBe(true);
  });

  it('without the class propagated, a pause holds for every call, as before', async () => {
    const r = recording([busy, 200]);
    const f = createFetch({ fetch: r.fetch, propagate: { deadline: true }, retry: false });
    await as('sheddable', f);
    expect(await rejection(as('critical', f))).toBeInstanceOf(RetryAfterError);
    expect(r.sent).toHaveLength(1);
  });

  it('with endpoints, a critical call stays on the primary that paused only sheddable calls', async () => {
    const r = recording([busy, 200]);
    const f = createFetch({ fetch: r.fetch, endpoints: ['http://a.test', 'http://b.test'], propagate: { priority: true }, retry: false });
    await capture(withAdmissionScope({ priority: 'sheddable' }, () => f('/x')));
    const critical = await capture(withAdmissionScope({ priority: 'critical' }, () => f('/x')));
    expect(critical.ok).toBe(true);
    expect(r.urls).toEqual(['http://a.test/x', 'http://a.test/x']);
  });
});

describe('createFetch propagate: options', () => {
  it.each([['yes'], [1], [null], [['priority']], [{ priority: 1 }], [{ deadline: 'true' }], [{ tenant: true }]])('refuses propagate %j', (value) => {
    expect(() => createFetch({ propagate: value as never })).toThrow(/createFetch: option "propagate/);
  });
});
