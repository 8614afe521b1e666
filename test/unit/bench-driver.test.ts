// The benchmark driver behind `npm run bench` (benchmarks/run.mjs, issue 14 §6): its arguments,
// the prerequisite check against a PATH we build, the verdict line each part prints, and the
// closing summary with its exit code, fed made-up part outputs. No benchmark runs here: the one
// process started is the driver itself, on a PATH without wrk, which must stop before running
// anything.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  checkPrerequisites,
  EXIT,
  parseDriverArgs,
  parseTargets,
  PARTS,
  partArgv,
  planLines,
  printTargets,
  summarize,
  TARGETS_MARKER,
  UsageError,
  type Part,
  type Target,
} from '../../benchmarks/driver.mjs';

const RUN = path.join(import.meta.dirname, '..', '..', 'benchmarks', 'run.mjs');
const names = (parts: readonly Part[]) => parts.map((p) => p.name);
const part = (name: string) => {
  const found = PARTS.find((p) => p.name === name);
  if (found === undefined) throw new Error(`no part ${name}`);
  return found;
};

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

/** A directory holding an executable stub for each of `tools`, to use as PATH. */
function fakePath(tools: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-bench-path-'));
  dirs.push(dir);
  for (const tool of tools) {
    writeFileSync(path.join(dir, tool), '#!/bin/sh\nexit 0\n');
    chmodSync(path.join(dir, tool), 0o755);
  }
  return dir;
}

describe('parseDriverArgs', () => {
  it('runs every part, full length, when given nothing', () => {
    const options = parseDriverArgs([]);
    expect(options.quick).toBe(false);
    expect(options.help).toBe(false);
    expect(names(options.parts)).toEqual(['hot-path', 'ratelimit-memory', 'ratelimit-redis', 'redis-memory', 'http', 'overload']);
  });

  it('takes --quick and --only (repeated, comma-separated or with =), keeping the run order', () => {
    expect(parseDriverArgs(['--quick']).quick).toBe(true);
    expect(names(parseDriverArgs(['--only', 'http']).parts)).toEqual(['http']);
    expect(names(parseDriverArgs(['--only', 'http,hot-path']).parts)).toEqual(['hot-path', 'http']);
    expect(names(parseDriverArgs(['--only=ratelimit-redis', '--only', 'ratelimit-memory', '--quick']).parts)).toEqual([
      'ratelimit-memory',
      'ratelimit-redis',
    ]);
    expect(parseDriverArgs(['--help']).help).toBe(true);
  });

  it('refuses an unknown part, an unknown argument and --only without a name, naming what is wrong', () => {
    expect(() => parseDriverArgs(['--only', 'redis'])).toThrow(UsageError);
    expect(() => parseDriverArgs(['--only', 'redis'])).toThrow(/--only redis: no such part \(parts: hot-path, ratelimit-memory, ratelimit-redis, redis-memory, http, overload\)/);
    expect(() => parseDriverArgs(['--fast'])).toThrow(/unknown argument "--fast"/);
    expect(() => parseDriverArgs(['--only'])).toThrow(/--only needs a part name/);
    expect(() => parseDriverArgs(['--only', '--quick'])).toThrow(/--only needs a part name/);
  });
});

describe('checkPrerequisites', () => {
  it('names each missing tool, the parts that need it and the command that installs them', () => {
    const result = checkPrerequisites(PARTS, fakePath(['redis-server', 'redis-benchmark', 'taskset']));
    expect(result.ok).toBe(false);
    expect(result.missing).toEqual([{ tool: 'wrk', parts: ['http'] }]);
    expect(result.message).toContain('wrk (needed by http)');
    expect(result.message).toContain('apt-get install -y wrk');
    expect(result.message).not.toContain('redis-server (needed');
  });

  it('lists every part that needs a tool, and installs each package once', () => {
    const result = checkPrerequisites(PARTS, fakePath(['taskset']));
    expect(result.missing).toEqual([
      { tool: 'redis-server', parts: ['ratelimit-redis', 'redis-memory', 'http'] },
      { tool: 'wrk', parts: ['http'] },
    ]);
    expect(result.message).toContain('apt-get install -y redis-server wrk\n');
  });

  it('asks only for what the chosen parts need, and notes a missing optional tool without failing', () => {
    expect(checkPrerequisites([part('hot-path'), part('ratelimit-memory')], fakePath([])).ok).toBe(true);
    const redisOnly = checkPrerequisites([part('ratelimit-redis')], fakePath(['redis-server', 'taskset']));
    expect(redisOnly.ok).toBe(true);
    expect(redisOnly.notes).toEqual(['redis-benchmark not found: ratelimit-redis still runs, but the ceiling rows read n/a']);
    expect(checkPrerequisites(PARTS, fakePath(['wrk', 'redis-server', 'redis-benchmark', 'taskset']))).toEqual({ ok: true, missing: [], notes: [] });
  });

  it('makes the driver exit 2 with the install hint before running anything when wrk is missing', async () => {
    const child = spawn(process.execPath, [RUN], {
      env: { ...process.env, PATH: fakePath(['redis-server', 'redis-benchmark', 'taskset']) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(EXIT.FAILED);
    expect(stderr).toContain('wrk (needed by http)');
    expect(stderr).toContain('apt-get install -y wrk');
    expect(stdout).toBe(''); // no plan printed, no part started
  });
});

describe('the plan and the part commands', () => {
  it('says which parts run and how long each and all take, full and quick', () => {
    const full = planLines(PARTS, false);
    const quick = planLines([part('hot-path'), part('http')], true);
    for (const p of PARTS) expect(full.some((l) => l.includes(p.name))).toBe(true);
    const total = (ps: readonly Part[], mode: 'full' | 'quick') => ps.reduce((s, p) => s + p.seconds[mode], 0);
    expect(total([part('hot-path'), part('http')], 'quick')).toBeLessThan(total(PARTS, 'full'));
    expect(full.at(-1)).toMatch(/^Expected in all: about \d+ min/);
    expect(quick.join('\n')).toContain('--quick');
    expect(quick).toHaveLength(4);
  });

  it('keeps the Node flags each part needs, and passes --quick on', () => {
    expect(partArgv(part('hot-path'), false, 'b')).toEqual(['--expose-gc', '--max-semi-space-size=64', 'b/hot-path.mjs']);
    expect(partArgv(part('ratelimit-memory'), true, 'b')).toEqual(['--expose-gc', '--max-semi-space-size=64', 'b/ratelimit-memory.mjs', '--quick']);
    expect(partArgv(part('http'), true, 'b')).toEqual(['b/http.mjs', '--quick']);
  });
});

describe('parseTargets', () => {
  const line = (targets: Target[]) => `${TARGETS_MARKER} ${JSON.stringify({ targets })}`;

  it('reads what printTargets prints, among the rest of the output', () => {
    const printed: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: string) => void printed.push(s));
    const targets = [
      { name: 'a', met: true, value: '0.20×', target: '≤ 0.25×' },
      { name: 'b', met: null, value: 'not measured (filtered out)', target: '≤ 6×' },
    ];
    printTargets(targets);
    expect(parseTargets(`| table |\nTarget: a — met.\n${printed.join('\n')}\n`)).toEqual(targets);
  });

  it('takes the last verdict line, and none from an output without one or with a broken one', () => {
    expect(parseTargets(`${line([{ name: 'old', met: false }])}\n${line([{ name: 'new', met: true }])}`)).toEqual([{ name: 'new', met: true }]);
    expect(parseTargets('Target: x — met.\n')).toBeUndefined();
    expect(parseTargets(`${TARGETS_MARKER} {"targets":[{"name":"cut`)).toBeUndefined();
    expect(parseTargets(`${TARGETS_MARKER} {"targets":[{"name":"x","met":"yes"}]}`)).toBeUndefined();
    expect(parseTargets(`${TARGETS_MARKER} {}`)).toBeUndefined();
  });
});

describe('summarize', () => {
  const met = (name: string): Target => ({ name, met: true, value: '1.10×', target: '≥ 1×' });
  const missed = (name: string): Target => ({ name, met: false, value: '0.61×', target: '≥ 0.80×' });

  it('exits 0 when every part ran and every target held', () => {
    const s = summarize([
      { part: 'hot-path', exitCode: 0, targets: [met('a'), met('b')] },
      { part: 'http', exitCode: 0, targets: [met('c')] },
    ]);
    expect(s.exitCode).toBe(EXIT.OK);
    expect(s.lines).toContain('| hot-path | a | 1.10× (target ≥ 1×) | met |');
    expect(s.lines.at(-1)).toBe('3 of 3 targets met, 0 NOT met. Exit code 0: every part ran and every measured target held.');
  });

  it('exits 1 when a target was missed, and lists it as NOT met next to those that held', () => {
    const s = summarize([
      { part: 'hot-path', exitCode: 0, targets: [met('a')] },
      { part: 'http', exitCode: 0, targets: [missed('Fastify + bulwark redisStore ÷ bare Fastify')] },
    ]);
    expect(s.exitCode).toBe(EXIT.MISSED);
    expect(s.lines).toContain('| http | Fastify + bulwark redisStore ÷ bare Fastify | 0.61× (target ≥ 0.80×) | NOT met |');
    expect(s.lines.at(-1)).toMatch(/^1 of 2 targets met, 1 NOT met\. Exit code 1: every part ran; a target was missed/);
  });

  it('exits 2 when a part crashed or printed no verdict, even if another target was missed', () => {
    const s = summarize([
      { part: 'hot-path', exitCode: 0, targets: [missed('a')] },
      { part: 'ratelimit-redis', exitCode: 1, targets: undefined },
      { part: 'http', exitCode: 0, targets: undefined },
    ]);
    expect(s.exitCode).toBe(EXIT.FAILED);
    expect(s.failed).toBe(2);
    expect(s.lines).toContain('ratelimit-redis: FAILED to run (exit code 1); its output above says why');
    expect(s.lines).toContain('http: FAILED to run (no verdict line); its output above says why');
    expect(s.lines.at(-1)).toMatch(/Exit code 2: 2 parts did not run to the end/);
    expect(summarize([{ part: 'http', exitCode: 143, signal: 'SIGTERM', targets: undefined }]).lines).toContain(
      'http: FAILED to run (killed by SIGTERM); its output above says why',
    );
  });

  it('shows a target that was not measured as such, without failing the run for it', () => {
    const s = summarize([{ part: 'hot-path', exitCode: 0, targets: [met('a'), { name: 'b', met: null, value: 'not measured (filtered out)', target: '≤ 6×' }] }], true);
    expect(s.exitCode).toBe(EXIT.OK);
    expect(s.notMeasured).toBe(1);
    expect(s.lines[0]).toBe('Summary (--quick run: noisier than a full run):');
    expect(s.lines).toContain('| hot-path | b | not measured (filtered out) | not measured |');
    expect(s.lines.at(-1)).toMatch(/^1 of 2 targets met, 0 NOT met, 1 not measured\. Exit code 0/);
  });
});
