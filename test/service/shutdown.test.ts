// RELIABILITY.md row G1 for a whole service: the assembled Express and Fastify services (limits and
// quota on Redis, shedding, health routes, metrics), each in a child process, get a real SIGTERM
// while keep-alive clients load an /api route behind a client that polls /readyz, as a load
// balancer does, and honours `Connection: close`. Readiness fails first, in-flight requests
// finish, the service exits 0. Figure: dropped requests = 0 (a fresh connection the server never
// accepted — still in the kernel's accept queue when the listener closed — is not a drop; see
// test/adapters/health-shutdown.test.ts, whose approach this reuses).
//
// Unlike that test's clients, these stop sending PROPAGATION_MS after the poller first sees
// readiness fail, as clients behind a load balancer do once it has taken the instance out of
// rotation (the drain delay, 500 ms here, is what covers that propagation). Clients that keep
// sending until the listener refuses them reach a Fastify instance while `app.close()` runs, and
// Fastify answers requests on connections it has just accepted with its own 503
// (`return503OnClosing`): seen on Node 24 in 2 runs of 3.
import { Agent } from 'node:http';
import { describe, expect, it } from 'vitest';
import { attempt, startChild, useServiceProgram, type Attempt } from './support/child.js';
import { type ReadinessWatch, pollReadiness } from '../support/listening-child.js';
import { frameworks, sleep } from './support/harness.js';

const shared = useServiceProgram();

const client = { 'x-forwarded-for': '198.51.100.50', 'x-tenant': 'acme' };

/** How long after readiness first fails the clients still send (endpoint propagation). */
const PROPAGATION_MS = 200;

describe.each(frameworks)('G1 %s service: SIGTERM under keep-alive load', (framework) => {
  it('fails readiness before it stops accepting, finishes in-flight requests, drops none, exits 0', async () => {
    const child = await startChild(shared.program, {
      SERVICE_FRAMEWORK: framework,
      REDIS_PORT: String(shared.redis.port),
      UPSTREAM_URL: shared.upstream.url,
      DRAIN_DELAY_MS: '500',
      PER_CLIENT_LIMIT: '1000000',
    });
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      const slowAgent = new Agent({ keepAlive: true });
      const deadline = performance.now() + 10_000;
      let stop = false;
      const completed: Attempt[] = [];
      const failedFresh: Attempt[] = [];
      const dropped: Attempt[] = [];

      const readiness: ReadinessWatch = { first503: undefined, answered503: 0, firstRefused: undefined };
      const worker = async (): Promise<void> => {
        for (let i = 0; i < 3000 && !stop && performance.now() < deadline; i++) {
          if (readiness.first503 !== undefined && performance.now() - readiness.first503 > PROPAGATION_MS) return; // out of rotation
          const a = await attempt(child.port, '/api/work?ms=5', agent, client);
          if (a.ok) completed.push(a);
          else if (a.code === 'ECONNREFUSED') return; // the server has stopped accepting
          else if (a.status === undefined && !a.reused) failedFresh.push(a);
          else dropped.push(a);
        }
      };
      const prober = (): Promise<void> => pollReadiness(() => attempt(child.port, '/readyz', false), deadline, readiness);

      const load = Promise.all([worker(), worker(), worker(), worker(), prober()]);
      await sleep(300);
      // Long requests in flight when the signal lands: they outlast the drain delay.
      const slow = Promise.all([1, 2, 3].map(() => attempt(child.port, '/api/work?ms=1200', slowAgent, client)));
      await sleep(20);
      const signalledAt = performance.now();
      child.proc.kill('SIGTERM');
      const exit = await child.exited;
      const exitedAt = performance.now();
      stop = true;
      await load;
      const slowResults = await slow;
      agent.destroy();
      slowAgent.destroy();

      const acceptedLine = child.lines.find((l) => l.startsWith('accepted '));
      expect(acceptedLine, child.lines.join('\n')).toBeDefined();
      const accepted = new Set<number>(JSON.parse(acceptedLine!.slice('accepted '.length)) as number[]);
      const freshButAccepted = failedFresh.filter((a) => a.localPort === undefined || accepted.has(a.localPort));

      const since = (at: number | undefined): string => (at === undefined ? '—' : `${Math.round(at - signalledAt)} ms`);
      console.log(
        `G1 ${framework}: ${completed.length} requests completed, ${dropped.length + freshButAccepted.length} dropped, ` +
          `${failedFresh.length - freshButAccepted.length} fresh connections never accepted; after SIGTERM: readiness 503 at ${since(readiness.first503)}, ` +
          `listener closed at ${since(readiness.firstRefused)}, process exited at ${since(exitedAt)}`,
      );
      expect([...dropped, ...freshButAccepted], 'dropped requests').toEqual([]);
      expect(exit, child.lines.join('\n')).toMatchObject({ code: 0, signal: null });
      expect(completed.length).toBeGreaterThan(50);
      expect(completed.filter((a) => a.connection === 'close').length, 'answers that told keep-alive clients to leave').toBeGreaterThan(0);
      expect(slowResults.map((a) => [a.status, a.body])).toEqual([
        [200, 'ok 1200'],
        [200, 'ok 1200'],
        [200, 'ok 1200'],
      ]);
      expect(readiness.first503).toBeDefined();
      expect(readiness.firstRefused).toBeDefined();
      expect(readiness.first503!).toBeLessThan(readiness.firstRefused!);
      expect(readiness.answered503).toBeGreaterThanOrEqual(3);
      expect(readiness.firstRefused! - signalledAt).toBeGreaterThanOrEqual(450);
      expect(child.lines.filter((l) => l.startsWith('phase '))).toEqual([
        'phase draining SIGTERM',
        'phase closing SIGTERM',
        'phase hooks SIGTERM',
        'phase exiting SIGTERM',
      ]);
      expect(child.lines.filter((l) => l.startsWith('faults '))).toEqual(['faults uncaught=0 unhandled=0']);
    } finally {
      await child.kill();
    }
  });
});
