// Helpers shared by the benchmark scripts (not a benchmark itself).
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The executable `name` on PATH (or on `searchPath`, a PATH-style list), or undefined. */
export function onPath(name, searchPath = process.env.PATH) {
  for (const dir of (searchPath ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A TCP port free on `host` right now (the system picks it). */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Sends one command on a fresh connection to `host:port` and returns the raw RESP reply (PING and INFO only). */
export function redisCommand(port, argv, timeoutMs = 2_000, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${argv[0]}: no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`*${argv.length}\r\n${argv.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (complete(reply)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(reply);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  // Enough of RESP for PING (simple string) and INFO (bulk string).
  function complete(s) {
    if (s[0] === '+' || s[0] === '-') return s.includes('\r\n');
    if (s[0] !== '$') return false;
    const eol = s.indexOf('\r\n');
    return eol >= 0 && Buffer.byteLength(s) >= eol + 2 + Number(s.slice(1, eol)) + 2;
  }
}

/**
 * The line that carries a benchmark's verdicts to benchmarks/run.mjs: the marker, then JSON
 * `{"targets":[{ name, met, value, target }]}` (met: true, false, or null when not measured).
 * Every part prints it once, last, even with no targets, so that the driver can tell a part that
 * finished from one that stopped early. Shown when a script runs alone too: it is one line.
 */
export const TARGETS_MARKER = 'bench-targets:';

export function printTargets(targets) {
  console.log(`${TARGETS_MARKER} ${JSON.stringify({ targets })}`);
}

/** Exits with a message unless each of `names` in the parsed `args` is a whole number of at least 1. */
export function requireCounts(args, names) {
  for (const name of names) {
    const n = Number(args[name]);
    if (!Number.isInteger(n) || n < 1) {
      console.error(`--${name} must be a whole number of at least 1, got ${args[name]}`);
      process.exit(1);
    }
  }
}

/**
 * valgrind's arguments to run node under callgrind, one dump per thread, into `dir`/cg.out; with
 * `keep`, also the instruction-level detail and V8's map of its compiled code (logs go to `dir`)
 * that callgrind-jit.mjs reads. Exits with a message when valgrind is not installed. Returns the
 * paths of valgrind and callgrind_control, and the arguments, ending with node's executable.
 */
export function callgrindNode(dir, keep) {
  const valgrind = onPath('valgrind');
  const control = onPath('callgrind_control');
  if (valgrind === undefined || control === undefined) {
    console.error('valgrind was not found on PATH (apt-get install -y valgrind)');
    process.exit(1);
  }
  const args = ['-q', '--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${path.join(dir, 'cg.out')}`];
  // --perf-basic-prof also makes V8 write a log; it goes to the temporary directory.
  if (keep) args.push('--dump-instr=yes', process.execPath, '--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${path.join(dir, 'v8.log')}`);
  else args.push(process.execPath);
  return { valgrind, control, args };
}

/**
 * cockatiel's counterpart of createFetch's defaults, for the fetch benchmarks: retry (2 attempts),
 * a consecutive(5) breaker and an aggressive 10 s timeout, all counting errors and 5xx answers.
 */
export async function cockatielFetchPolicy() {
  const c = await import('cockatiel');
  const failed = c.handleAll.orWhenResult((res) => res.status >= 500);
  return c.wrap(
    c.retry(failed, { maxAttempts: 2, backoff: new c.ExponentialBackoff() }),
    c.circuitBreaker(failed, { halfOpenAfter: 10_000, breaker: new c.ConsecutiveBreaker(5) }),
    c.timeout(10_000, c.TimeoutStrategy.Aggressive),
  );
}

/**
 * Runs `cleanup` when the process exits, and on Ctrl-C, SIGTERM or SIGHUP too (then exits with
 * 128 + the signal's number), so no server the script started outlives it.
 */
export function cleanUpOnExit(cleanup) {
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      cleanup();
      process.exit(128 + os.constants.signals[signal]);
    });
  }
}

/**
 * A throwaway redis-server on a free loopback port (no persistence, a temp dir named after
 * `label`), killed by pid on exit, on Ctrl-C, SIGTERM and SIGHUP, or by `stop()`.
 */
export async function startRedisServer(label) {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), `bulwark-${label}-`));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  cleanUpOnExit(stop);
  for (let i = 0; i < 100; i++) {
    try {
      if ((await redisCommand(port, ['PING'])).startsWith('+PONG')) return { port, stop };
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('redis-server did not answer PING within 5 s');
}

/** The first IPC message of `type` from a forked `child`; rejects if it exits first. */
export function messageFrom(child, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m.type !== type) return;
      child.off('exit', onExit);
      child.off('message', onMessage);
      resolve(m);
    };
    const onExit = (code) => reject(new Error(`worker exited (${code}) before "${type}"`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
