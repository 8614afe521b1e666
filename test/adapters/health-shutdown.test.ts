// Rows G1 and G2: graceful shutdown under real signals, in child processes. The fixtures
// (test/adapters/fixtures/shutdown-*.mjs) load a private ESM build of src made here with tsup, so a
// stale or concurrently rebuilt dist/ cannot change the outcome.
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ListeningChild, pollReadiness, type ReadinessWatch, startListeningChild } from '../support/listening-child.js';

const root = resolve(import.meta.dirname, '../..');
const fixtures = join(root, 'test', 'adapters', 'fixtures');
let outDir = '';
let entry = '';

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'bulwark-shutdown-'));
  await build({
    config: false,
    entry: { index: join(root, 'src', 'index.ts') },
    format: ['esm'],
    outDir,
    platform: 'node',
    target: 'node20',
    dts: false,
    sourcemap: false,
    splitting: false,
    silent: true,
    loader: { '.lua': 'text' },
  });
  entry = pathToFileURL(join(outDir, 'index.js')).href;
}, 60_000);

afterAll(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

/** Starts a fixture and waits for its `listening <port>` line; kills it if it outlives `maxMs`. */
function startFixture(name: string, env: Record<string, string>, maxMs = 20_000): Promise<ListeningChild> {
  return startListeningChild(join(fixtures, name), { ...env, BULWARK_ENTRY: entry }, maxMs);
}

interface Attempt {
  readonly ok: boolean;
  readonly status?: number;
  readonly connection?: string;
  readonly body?: string;
  readonly code?: string;
  readonly reused: boolean;
  readonly localPort?: number;
}

/** One request; never rejects. Records whether it went over a reused keep-alive connection. */
function attempt(port: number, path: string, agent: Agent | false): Promise<Attempt> {
  return new Promise((done) => {
    let localPort: number | undefined;
    let reused = false;
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        done({ ok: res.statusCode === 200, status: res.statusCode, connection: res.headers.connection, body, reused, localPort }),
      );
      res.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, code: e.code ?? e.message, reused, localPort }));
    });
    req.on('socket', (socket) => {
      reused = req.reusedSocket;
      if (socket.localPort !== undefined) localPort = socket.localPort;
      else socket.once('connect', () => (localPort = socket.localPort));
    });
    req.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, code: e.code ?? e.message, reused, localPort }));
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('G1: SIGTERM under keep-alive load', () => {
  it('fails readiness before the server stops accepting, finishes in-flight requests, drops none', async () => {
    const child = await startFixture('shutdown-server.mjs', { DRAIN_DELAY_MS: '500' });
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const slowAgent = new Agent({ keepAlive: true });
    const t0 = performance.now();
    const deadline = t0 + 10_000;
    let stop = false;
    const completed: Attempt[] = [];
    const refused: Attempt[] = [];
    const failedFresh: Attempt[] = [];
    const dropped: Attempt[] = [];

    const worker = async (): Promise<void> => {
      for (let i = 0; i < 5000 && !stop && performance.now() < deadline; i++) {
        const a = await attempt(child.port, '/work?ms=5', agent);
        if (a.ok) completed.push(a);
        else if (a.code === 'ECONNREFUSED') {
          refused.push(a);
          return; // the server has stopped accepting
        } else if (a.status === undefined && !a.reused) failedFresh.push(a);
        else dropped.push(a);
      }
    };
    const readiness: ReadinessWatch = { first503: undefined, answered503: 0, firstRefused: undefined };
    const prober = (): Promise<void> => pollReadiness(() => attempt(child.port, '/readyz', false), deadline, readiness);

    const load = Promise.all([worker(), worker(), worker(), worker(), prober()]);
    await sleep(300);
    // Long requests in flight when the signal lands: they outlast the drain delay.
    const slow = Promise.all([1, 2, 3].map(() => attempt(child.port, '/work?ms=1200', slowAgent)));
    await sleep(20);
    const signalledAt = performance.now();
    child.proc.kill('SIGTERM');
    const exit = await child.exited;
    stop = true;
    await load;
    const slowResults = await slow;
    agent.destroy();
    slowAgent.destroy();

    // A failure on a fresh connection is a drop only if the server had accepted that connection:
    // one that reached the kernel's backlog just as the server stopped listening is reset by the
    // kernel, never seen by the server (the client was told `Connection: close` on its previous
    // connection and did not have to come back).
    const acceptedLine = child.lines.find((l) => l.startsWith('accepted '));
    expect(acceptedLine, child.lines.join('\n')).toBeDefined();
    const accepted = new Set<number>(JSON.parse(acceptedLine!.slice('accepted '.length)) as number[]);
    const freshButAccepted = failedFresh.filter((a) => a.localPort === undefined || accepted.has(a.localPort));

    expect(exit).toMatchObject({ code: 0, signal: null });
    expect([...dropped, ...freshButAccepted], 'dropped requests').toEqual([]);
    expect(completed.length).toBeGreaterThan(50);
    // The drain told keep-alive clients to go away rather than cutting their connections.
    expect(completed.filter((a) => a.connection === 'close').length).toBeGreaterThan(0);
    expect(slowResults.map((a) => [a.ok, a.body])).toEqual([
      [true, 'ok 1200'],
      [true, 'ok 1200'],
      [true, 'ok 1200'],
    ]);
    expect(readiness.first503).toBeDefined();
    expect(readiness.firstRefused).toBeDefined();
    expect(readiness.first503!).toBeLessThan(readiness.firstRefused!);
    // Readiness failed for a while (the drain) before the server stopped accepting, not just at the end.
    expect(readiness.answered503).toBeGreaterThanOrEqual(3);
    expect(readiness.firstRefused! - signalledAt).toBeGreaterThanOrEqual(450);
    const phases = child.lines.filter((l) => l.startsWith('phase '));
    expect(phases).toEqual(['phase draining SIGTERM', 'phase closing SIGTERM', 'phase hooks SIGTERM', 'phase exiting SIGTERM']);
    expect(child.lines.filter((l) => l.startsWith('shutdown: done'))).toEqual(['shutdown: done (SIGTERM); exiting with code 0']);
  }, 30_000);
});

describe('G2: a shutdown hook hangs', () => {
  it('with a second SIGTERM: no second run, the drain is cut short, the hook times out, the process exits once', async () => {
    const child = await startFixture('shutdown-hang.mjs', { DRAIN_DELAY_MS: '5000', HOOK_TIMEOUT_MS: '300' });
    const signalledAt = performance.now();
    child.proc.kill('SIGTERM');
    await sleep(150);
    child.proc.kill('SIGTERM');
    const exit = await child.exited;
    const elapsed = exit.at - signalledAt;

    expect(exit).toMatchObject({ code: 1, signal: null });
    // Well under the 5 s drain: the second signal hurried it; the hook was cut at 300 ms.
    expect(elapsed).toBeLessThan(2500);
    expect(elapsed).toBeGreaterThanOrEqual(300);
    const lines = child.lines;
    expect(lines.filter((l) => l.startsWith('shutdown: done'))).toEqual(['shutdown: done (SIGTERM); exiting with code 1']);
    expect(lines.filter((l) => l === 'phase exiting SIGTERM')).toHaveLength(1);
    expect(lines.filter((l) => l === 'phase draining SIGTERM')).toHaveLength(1);
    expect(lines.filter((l) => l === 'hook hangs started')).toHaveLength(1);
    expect(lines).toContain('shutdown: SIGTERM received again; hurrying');
    expect(lines).toContain('shutdown: hook "hangs" timed out after 300 ms');
    expect(lines).toContain('hook after ran');
  }, 30_000);

  it('with one SIGTERM: the hook times out and the process exits once, within drain + hook timeout', async () => {
    const child = await startFixture('shutdown-hang.mjs', { DRAIN_DELAY_MS: '200', HOOK_TIMEOUT_MS: '400' });
    const signalledAt = performance.now();
    child.proc.kill('SIGTERM');
    const exit = await child.exited;
    const elapsed = exit.at - signalledAt;
    expect(exit).toMatchObject({ code: 1, signal: null });
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(3000);
    expect(child.lines.filter((l) => l.startsWith('shutdown: done'))).toHaveLength(1);
    expect(child.lines.filter((l) => l.startsWith('phase '))).toEqual([
      'phase draining SIGTERM',
      'phase closing SIGTERM',
      'phase hooks SIGTERM',
      'phase exiting SIGTERM',
    ]);
  }, 30_000);
});
