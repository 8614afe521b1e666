// observability/capture.mjs, which makes the README's picture, still works end to end: a real
// Prometheus scrapes a real demo run, and every panel the demo exercises gets series from
// Prometheus's query API. (It draws from the built package, as `npm run demo` does: `npm test`
// builds first.)
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runNode } from '../../support/run-node.js';

const root = resolve(import.meta.dirname, '../../..');
const scratch = mkdtempSync(join(tmpdir(), 'bulwark-capture-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function runCapture(out: string): Promise<{ code: number | null; output: string }> {
  return runNode(join(root, 'observability', 'capture.mjs'), ['--out', out], { cwd: root, killAfterMs: 110_000 });
}

describe('observability/capture.mjs', () => {
  it('draws the dashboard queries of a demo run scraped by a real Prometheus', async () => {
    if (!existsSync('/usr/bin/prometheus') && !existsSync('/usr/local/bin/prometheus')) {
      throw new Error('prometheus is not installed: apt-get install -y prometheus (Debian package)');
    }
    const out = join(scratch, 'run.svg');
    const { code, output } = await runCapture(out);
    expect(code, output).toBe(0);
    // What the script printed per dashboard panel: "<title>: <n> series".
    const series = new Map([...output.matchAll(/^(.+): (\d+) series$/gm)].map((m) => [m[1]!, Number(m[2])]));
    for (const panel of ['Executions per second', 'Breaker state', 'Transitions', 'Retries per call', 'Decisions per second', 'Health check status', 'Fetch failovers per second']) {
      expect(series.get(panel), `${panel}\n${output}`).toBeGreaterThan(0);
    }
    // The burst phase is seen as denials next to admissions.
    expect(series.get('Decisions per second')).toBeGreaterThanOrEqual(2);
    const svg = readFileSync(out, 'utf8');
    expect(svg.startsWith('<svg ')).toBe(true);
    expect(svg).toContain('Executions per second');
    expect(svg.match(/<path d="M/g)?.length ?? 0).toBeGreaterThanOrEqual(10);
  }, 120_000);
});
