// `npm run demo` is the project's main job: this runs it (on the built package, as the npm script
// does after building) with the memory store and with Redis, and checks what its table reports —
// so the demo cannot silently stop showing what it claims.
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../integration/support/redis.js';
import { runNode } from '../support/run-node.js';

const root = resolve(import.meta.dirname, '../..');

async function runDemo(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const { code, output } = await runNode('demo/main.mjs', [], { cwd: root, env, killAfterMs: 55_000 });
  return { code, out: output };
}

/** The value column of the demo's final table, by mechanism. */
function table(out: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const m of out.matchAll(/^\| ([a-z ]+?) +\| (.+) \|$/gm)) rows.set(m[1]!, m[2]!);
  return rows;
}

function expectEveryMechanismAtWork(out: string, code: number | null): void {
  expect(code, out).toBe(0);
  const rows = table(out);
  expect(rows.get('dropped requests'), out).toBe('0');
  expect(rows.get('requests'), out).toMatch(/ 0 upstream errors \(502\), 0 other$/);
  // The burst tenant was limited, and every 429 said when to come back.
  const limited = /the greedy tenant got ([\d,]+) 429s of ([\d,]+); ([\d,]+) of ([\d,]+) 429s carried Retry-After/.exec(rows.get('rate limit') ?? '');
  expect(limited, out).not.toBeNull();
  expect(Number(limited![1]!.replaceAll(',', ''))).toBeGreaterThan(0);
  expect(limited![3]).toBe(limited![4]);
  // The outage opened the primary's breaker, and the recovery closed it again.
  expect(rows.get('circuit breaker'), out).toMatch(/^primary closed → open at .*primary half-open → closed at [\d.]+ s$/);
  expect(Number(/^(\d[\d,]*) attempts moved/.exec(rows.get('failover') ?? '')?.[1]?.replaceAll(',', '') ?? 0), out).toBeGreaterThan(0);
  expect(Number(/^(\d+) upstream attempts retried/.exec(rows.get('retry') ?? '')?.[1] ?? 0), out).toBeGreaterThan(0);
  // The chaos phase: fault injection answered about 30 % of the primary's requests 503; retries
  // and failovers took them to the standby (and the breaker, on runs of them), and no client saw
  // an error. (~80 primary answers in the phase, fewer when the breaker opens early on a run of
  // injected 503s and stays open through most of the phase: the share is bounded at ±4 σ for the
  // number of answers there were.)
  const chaos = /^([\d,]+) of ([\d,]+) primary answers were injected 503s \(([\d.]+) %\); meanwhile ([\d,]+) retries, ([\d,]+) failovers, ([\d,]+) primary breaker opens; 0 of ([\d,]+) client requests failed$/.exec(
    rows.get('chaos') ?? '',
  );
  expect(chaos, out).not.toBeNull();
  const [injected, answers, share, retries, failovers, opens, sent] = chaos!.slice(1).map((n) => Number(n.replaceAll(',', '')));
  expect(injected, out).toBeGreaterThan(0);
  const sigma = 100 * Math.sqrt((0.3 * 0.7) / answers!);
  expect(share, out).toBeGreaterThan(30 - 4 * sigma);
  expect(share, out).toBeLessThan(30 + 4 * sigma);
  // Few primary answers only because the breaker kept the primary out.
  if (answers! < 40) expect(opens, out).toBeGreaterThan(0);
  expect(retries, out).toBeGreaterThan(0);
  expect(failovers, out).toBeGreaterThan(0);
  expect(sent, out).toBeGreaterThan(100);
  // The overload phase: /report offered about 3× the reports backend's capacity, 30 % critical;
  // the adaptive limit serves the critical class and sheds the sheddable one (503 + Retry-After).
  const overload = /^([\d,]+) of ([\d,]+) critical \/report requests served \(([\d.]+) %, p99 (\d+) ms\), ([\d,]+) shed; ([\d,]+) of ([\d,]+) sheddable shed with 503 \+ Retry-After \(([\d.]+) %\); ([\d,]+) failed otherwise$/.exec(
    rows.get('overload') ?? '',
  );
  expect(overload, out).not.toBeNull();
  const [, criticalSent, criticalShare, , criticalShed, sheddableShed, sheddableSent] = overload!.slice(1).map((n) => Number(n.replaceAll(',', '')));
  expect(criticalSent, out).toBeGreaterThan(100);
  expect(criticalShare, out).toBeGreaterThanOrEqual(90);
  expect(sheddableShed, out).toBeGreaterThan(sheddableSent! / 2);
  expect(sheddableShed, out).toBeGreaterThanOrEqual(10 * criticalShed!);
  // The limit's value over time: sampled every 500 ms, every sample a whole number ≥ 1.
  const limits = [...(rows.get('adaptive limit') ?? '').matchAll(/[\d.]+ s: (\d+)/g)].map((m) => Number(m[1]));
  expect(limits.length, out).toBeGreaterThanOrEqual(5);
  for (const limit of limits) expect(limit, out).toBeGreaterThanOrEqual(1);
  expect(rows.get('graceful shutdown'), out).toMatch(/^exited with code 0 \d+ ms after SIGTERM$/);
  expect(out).toContain('readiness failed (503): the load balancer stops sending');
  // /metrics was served, with bulwark's series in it.
  const metrics = /^([\d,]+) bulwark series in (\d+) metrics at \/metrics before shutdown$/.exec(rows.get('metrics') ?? '');
  expect(metrics, out).not.toBeNull();
  expect(Number(metrics![2])).toBeGreaterThanOrEqual(5);
}

describe('npm run demo', () => {
  it('with memory stores: every mechanism acts, no request is dropped, the service exits cleanly', async () => {
    const { code, out } = await runDemo({ REDIS_URL: '' });
    expect(out).toContain('(rate limits in memory)');
    expectEveryMechanismAtWork(out, code);
  }, 90_000);

  describe('with REDIS_URL', () => {
    let redis: RedisServer | undefined;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('keeps the rate limits in Redis, with the same outcome', async () => {
      const { code, out } = await runDemo({ REDIS_URL: `redis://127.0.0.1:${redis!.port}` });
      expect(out).toContain('(rate limits in redis)');
      expectEveryMechanismAtWork(out, code);
    }, 90_000);
  });
});
