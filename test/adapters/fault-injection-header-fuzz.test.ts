// Fuzz: no request header enables a fault that is not configured. Thousands of requests with
// random header names and values (the fault header's own name in any case among them, spoofed
// X-Forwarded-For, kinds listed every which way) against real Express 5 and Fastify 5 servers set
// up three ways: header trigger not configured; configured but the loopback peer not trusted;
// trusted but only latency configured. Every request must reach the handler and get its 200, and
// nothing but (in the third) latency may be injected. Seeded, so a failure can be replayed.
import { Agent, request as httpRequest, type Server } from 'node:http';
import express from 'express';
import fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { faultInjectionMiddleware, httpFaultInjector, type HttpFaultInjectedEvent, type HttpFaultInjectionOptions } from '../../src/adapters/express.js';
import { faultInjectionPlugin } from '../../src/adapters/fastify.js';
import { close } from './support/inbound-http.js';

const REQUESTS = 1_500; // per framework and setup: 9,000 in all
const TIME_LIMIT_MS = 15_000; // per framework and setup, a bound on the loop whatever the machine
const CONCURRENCY = 4;

/** mulberry32: a small seeded generator, so a failing run can be replayed from its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const NAMES = ['x-bulwark-fault', 'X-Bulwark-Fault', 'X-BULWARK-FAULT', 'x-bulwark-faults', 'x-fault', 'x-chaos', 'fault', 'x-bulwark-fault-status', 'x-forwarded-for', 'forwarded', 'x-real-ip'];
const WORDS = ['status', 'abort', 'latency', 'STATUS', ' Abort ', 'all', '*', '1', 'true', '503', 'on', 'error', 'reset', 'status=503', 'latency;ms=10', '10.0.0.1', '127.0.0.1', '::1'];
const SEPARATORS = [',', ', ', ' ', ';', ',,', ''];

function fuzzHeaders(random: () => number): Record<string, string> {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const headers: Record<string, string> = {};
  const count = 1 + Math.floor(random() * 4);
  for (let i = 0; i < count; i++) {
    let name = random() < 0.6 ? pick(NAMES) : '';
    if (name === '') {
      const length = 1 + Math.floor(random() * 20);
      for (let k = 0; k < length; k++) name += 'abcdefghijklmnopqrstuvwxyz0123456789-'[Math.floor(random() * 37)];
      name = `x${name}`;
    }
    let value = '';
    const parts = Math.floor(random() * 5);
    for (let k = 0; k < parts; k++) value += pick(SEPARATORS) + pick(WORDS);
    // Printable ASCII noise, sometimes long (past the 64 characters read).
    const noise = random() < 0.3 ? Math.floor(random() * 120) : 0;
    for (let k = 0; k < noise; k++) value += String.fromCharCode(0x21 + Math.floor(random() * 94));
    headers[name.toLowerCase()] = value.trim() === '' ? 'status' : value.trim();
  }
  return headers;
}

type Setup = HttpFaultInjectionOptions<never>;

// `random: () => 0.99` with rate 0.5: the draw never injects, so any injection would be the header's doing.
const never = (): number => 0.99;
// The last column: whether the fuzz must have reached the trigger (the header was believed at least once).
const setups: [string, Setup, (event: HttpFaultInjectedEvent) => boolean, boolean][] = [
  ['no header trigger configured', { rate: 0.5, status: 503, latencyMs: 1, random: never }, () => false, false],
  ['a header trigger, but the loopback peer not trusted', { rate: 0.5, status: 503, latencyMs: 1, random: never, header: { trustProxy: ['10.0.0.0/8', '2001:db8::/32'] } }, () => false, false],
  ['a trusted header trigger with only latency configured', { rate: 0.5, latencyMs: 0, random: never, header: { trustProxy: 'loopback' } }, (e) => e.kind === 'latency' && e.latencyMs === 0 && e.requested, true],
];

let server: Server | undefined;
let app: ReturnType<typeof fastify> | undefined;
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
afterEach(async () => {
  if (server) await close(server);
  await app?.close();
  server = app = undefined;
  agent.destroy();
});

function get(port: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/work', headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function serve(framework: string, options: Setup): Promise<{ port: number; handled: () => number; events: HttpFaultInjectedEvent[] }> {
  const faults = httpFaultInjector(options);
  const events: HttpFaultInjectedEvent[] = [];
  faults.onInjected((e) => events.push(e));
  let handled = 0;
  if (framework === 'Express 5') {
    const a = express();
    a.use(faultInjectionMiddleware(faults as never));
    a.get('/work', (_req, res) => {
      handled++;
      res.send('handled');
    });
    server = a.listen(0, '127.0.0.1');
    await new Promise((resolve) => server!.once('listening', resolve));
    return { port: (server.address() as { port: number }).port, handled: () => handled, events };
  }
  const a = fastify();
  app = a;
  await a.register(faultInjectionPlugin, { faults: faults as never });
  a.get('/work', async () => {
    handled++;
    return 'handled';
  });
  await a.listen({ port: 0, host: '127.0.0.1' });
  return { port: (a.server.address() as { port: number }).port, handled: () => handled, events };
}

describe.each(['Express 5', 'Fastify 5'])('S8 fault header fuzz on %s', (framework) => {
  it.each(setups)('with %s, no header enables an unconfigured fault', async (_label, options, allowed, reached) => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const random = seeded(seed);
    const s = await serve(framework, options);
    const deadline = performance.now() + TIME_LIMIT_MS;
    const failures: string[] = [];
    let sent = 0;
    const worker = async (): Promise<void> => {
      while (sent < REQUESTS && performance.now() < deadline && failures.length < 5) {
        sent++;
        const headers = fuzzHeaders(random);
        try {
          const answer = await get(s.port, headers);
          if (answer.status !== 200 || answer.body !== 'handled') failures.push(`${answer.status} for ${JSON.stringify(headers)}`);
        } catch (error) {
          failures.push(`${(error as Error).message} for ${JSON.stringify(headers)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(failures, `seed ${seed}`).toEqual([]);
    expect(sent, `seed ${seed}: requests sent within ${TIME_LIMIT_MS} ms`).toBeGreaterThanOrEqual(1_000);
    expect(s.handled()).toBe(sent);
    expect(s.events.filter((e) => !allowed(e)), `seed ${seed}`).toEqual([]);
    if (reached) expect(s.events.length, `seed ${seed}: the fuzz asked for latency by header and was heard`).toBeGreaterThan(0);
  });
});
