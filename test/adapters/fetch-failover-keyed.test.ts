// bulwark/fetch: failover and idempotency keys (issue 12 §2, RELIABILITY F11/C6), against two
// real node:http servers on 127.0.0.1 and Node's fetch. An idempotency key is a promise to one
// server: a keyed POST that may have reached the primary is retried there, never on the standby.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createFetch } from '../../src/adapters/fetch.js';
import { constant } from '../../src/index.js';
import { loopbackServers } from './support/fetch-servers.js';

const { serve, closeAll, closeLast } = loopbackServers();
afterEach(closeAll);

/** Reads the request body to its end (its content does not matter here). */
function drained(req: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => req.on('end', resolve).on('error', reject).resume());
}

/**
 * Two order services, each with its own idempotency store (as two regions would have): the
 * primary commits its first order, then drops the connection before answering.
 */
async function twoRegions(): Promise<{ primary: string; standby: string; requests: { primary: number; standby: number }; duplicates: () => number }> {
  const commits = new Map<string, number>(); // by key, across both servers
  const requests = { primary: 0, standby: 0 };
  const service = (name: 'primary' | 'standby') => {
    const seen = new Set<string>();
    return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      requests[name]++;
      await drained(req);
      const key = String(req.headers['idempotency-key']);
      if (seen.has(key)) {
        res.writeHead(200).end(`already committed on ${name}`);
        return;
      }
      seen.add(key);
      commits.set(key, (commits.get(key) ?? 0) + 1);
      if (name === 'primary' && requests.primary === 1) {
        req.socket.destroy(); // committed, then the connection is lost before the answer
        return;
      }
      res.writeHead(201).end(`created on ${name}`);
    };
  };
  const primary = await serve(service('primary'));
  const standby = await serve(service('standby'));
  return { primary, standby, requests, duplicates: () => [...commits.values()].reduce((a, n) => a + n - 1, 0) };
}

const order = { method: 'POST', body: '{"sku":42}', headers: { 'Idempotency-Key': 'order-7' } };

describe('failover of a POST with an Idempotency-Key', () => {
  it('Regression (issue 12): one that reached the primary is retried on the primary, not the standby: 0 duplicate commits', async () => {
    // Before the fix the retry went to the standby, and both servers committed order-7.
    const r = await twoRegions();
    const f = createFetch({ endpoints: [r.primary, r.standby], retry: { maxAttempts: 3, backoff: constant(5) } });
    const res = await f('/orders', order);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('already committed on primary');
    expect(r.requests).toEqual({ primary: 2, standby: 0 });
    expect(r.duplicates()).toBe(0);
  });

  it('one refused by a dead primary goes to the standby: it never left', async () => {
    const r = await twoRegions();
    const dead = await serve(() => {});
    await closeLast(); // its port now refuses connections
    const f = createFetch({ endpoints: [dead, r.standby], retry: { maxAttempts: 3, backoff: constant(5) } });
    const res = await f('/orders', order);
    expect(res.status).toBe(201);
    expect(await res.text()).toBe('created on standby');
    expect(r.duplicates()).toBe(0);
  });

  it('with failoverKeyedRequests: true (endpoints sharing one idempotency store), the retry moves to the standby', async () => {
    const r = await twoRegions();
    const f = createFetch({ endpoints: [r.primary, r.standby], failoverKeyedRequests: true, retry: { maxAttempts: 3, backoff: constant(5) } });
    const res = await f('/orders', order);
    expect(await res.text()).toBe('created on standby');
    expect(r.requests).toEqual({ primary: 1, standby: 1 });
  });

  it('a PUT (idempotent by its method) may still move to the standby', async () => {
    const r = await twoRegions();
    const f = createFetch({ endpoints: [r.primary, r.standby], retry: { maxAttempts: 3, backoff: constant(5) } });
    const res = await f('/orders', { ...order, method: 'PUT' });
    expect(await res.text()).toBe('created on standby');
    expect(r.requests).toEqual({ primary: 1, standby: 1 });
  });
});
