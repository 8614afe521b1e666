// A Node program started as a child process that prints `listening <port>` once its server is up:
// the shutdown tests (test/adapters/health-shutdown.test.ts, test/service/) send it real signals.
import { spawn, type ChildProcess } from 'node:child_process';

/** How a child process ended, and when (performance.now()). */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly at: number;
}

/** A running child with a server on `port`. */
export interface ListeningChild {
  readonly proc: ChildProcess;
  /** Every line it printed on stdout so far. */
  readonly lines: string[];
  readonly port: number;
  readonly exited: Promise<Exit>;
}

/**
 * Starts `node <file>` with `env` added to this process's, and resolves once it prints
 * `listening <port>`; rejects (with its stderr and output) if it exits first. It is SIGKILLed if
 * it still runs after `maxMs`.
 */
export async function startListeningChild(file: string, env: Record<string, string | undefined>, maxMs: number): Promise<ListeningChild> {
  const proc = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exit>((resolveExit) => {
    const guard = setTimeout(() => proc.kill('SIGKILL'), maxMs);
    proc.on('exit', (code, signal) => {
      clearTimeout(guard);
      resolveExit({ code, signal, at: performance.now() });
    });
  });
  const port = await new Promise<number>((resolvePort, reject) => {
    proc.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        const m = /^listening (\d+)$/.exec(line);
        if (m) resolvePort(Number(m[1]));
      }
    });
    void exited.then(() => reject(new Error(`${file} exited before listening: ${stderr}\n${lines.join('\n')}`)));
  });
  return { proc, lines, port, exited };
}

/** What a readiness poller saw while a child shut down (times from performance.now()). */
export interface ReadinessWatch {
  /** When `/readyz` first answered 503. */
  first503: number | undefined;
  /** How many 503s it answered. */
  answered503: number;
  /** When a connection was first refused (the listener had closed). */
  firstRefused: number | undefined;
}

/**
 * Polls readiness every 10 ms, as a load balancer does, until connections are refused, `deadline`
 * passes or 2,000 polls were made; fills `watch` as it goes, so callers can read it meanwhile.
 */
export async function pollReadiness(
  ask: () => Promise<{ readonly status?: number; readonly code?: string }>,
  deadline: number,
  watch: ReadinessWatch,
): Promise<void> {
  for (let i = 0; i < 2000 && performance.now() < deadline; i++) {
    const a = await ask();
    if (a.status === 503) {
      watch.first503 ??= performance.now();
      watch.answered503++;
    }
    if (a.code === 'ECONNREFUSED') {
      watch.firstRefused = performance.now();
      return;
    }
    await new Promise((resolveSleep) => setTimeout(resolveSleep, 10));
  }
}
