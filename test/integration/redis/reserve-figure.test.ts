// Issue 16 §3's figure, shortened: 4 processes × 64 callers on one fixedWindow limit of 100,000
// units, reserving 4,000 and settling 200–1,400, beside the same callers with a static reservation
// (no settle), in the same run: 0 over-admission in either, utilisation ≥ 90 % of the limit with
// settle while demand is ≥ 2× (about 20 % without). Windows of 6 s instead of a minute (the
// full-length run is in benchmarks/RESULTS.md). Runs benchmarks/reserve-settle.mjs, which imports
// the BUILT package: run `npm run build` first when running this file alone.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../support/redis.js';

const SCRIPT = path.join(import.meta.dirname, '..', '..', '..', 'benchmarks', 'reserve-settle.mjs');
let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.stop();
});

interface ModeReport {
  actualPerWindow: number[];
  overAdmittedWindows: number;
  utilisation: number;
  fallback: number;
  settleErrors: number;
  expiredLeases: number;
}

describe('reserve-then-settle: the 4-process figure', () => {
  it('admits no more than the limit in any window and uses ≥ 90 % of it, where a static reservation uses about 20 %', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [SCRIPT, '--port', String(server.port), '--window-ms', '6000', '--windows', '2', '--procs', '4', '--callers', '64'],
      { timeout: 60_000 },
    );
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line).toBeDefined();
    const report = JSON.parse(line!.slice('RESULT '.length)) as { demandPerLimit: number; modes: Record<'settle' | 'static', ModeReport> };
    const { settle, static: fixed } = report.modes;
    expect(report.demandPerLimit).toBeGreaterThanOrEqual(2);
    for (const mode of [settle, fixed]) {
      expect(mode.overAdmittedWindows).toBe(0);
      expect(mode.fallback).toBe(0);
      expect(mode.settleErrors).toBe(0);
    }
    expect(settle.expiredLeases).toBe(0);
    for (const units of settle.actualPerWindow) expect(units).toBeGreaterThanOrEqual(90_000);
    expect(settle.utilisation).toBeGreaterThanOrEqual(0.9);
    expect(fixed.utilisation).toBeLessThan(0.3);
  }, 90_000);
});
