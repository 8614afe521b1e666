// Runs the assembled service (./service-main.ts) in a child process: built once per test file with
// tsup into a temp dir (with a node_modules link, so express, fastify, ioredis and prom-client
// resolve), started with node, and killed by pid if it outlives its bound.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'tsup';
import { afterAll, beforeAll } from 'vitest';
import { type Exit, type ListeningChild, startListeningChild } from '../../support/listening-child.js';
import { useRedisAndUpstream, type Shared } from './harness.js';

const root = resolve(import.meta.dirname, '../../..');

/** A build of the service program; `remove()` deletes it. */
export interface ServiceBuild {
  readonly entry: string;
  remove(): void;
}

export async function buildServiceProgram(): Promise<ServiceBuild> {
  const outDir = mkdtempSync(join(tmpdir(), 'bulwark-service-'));
  symlinkSync(join(root, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}\n');
  await build({
    config: false,
    entry: { 'service-main': join(root, 'test', 'service', 'support', 'service-main.ts') },
    format: ['esm'],
    outDir,
    platform: 'node',
    target: 'node20',
    dts: false,
    sourcemap: false,
    splitting: false,
    silent: true,
    loader: { '.lua': 'text' },
    external: ['express', 'fastify', 'ioredis', 'prom-client'],
  });
  return { entry: join(outDir, 'service-main.js'), remove: () => rmSync(outDir, { recursive: true, force: true }) };
}

/**
 * For a test file that runs the service as a program: one redis-server, one upstream and one
 * build of the program, for the whole file.
 */
export function useServiceProgram(): Shared & { readonly program: ServiceBuild } {
  const shared = useRedisAndUpstream();
  let program: ServiceBuild | undefined;
  beforeAll(async () => {
    program = await buildServiceProgram();
  });
  afterAll(() => program?.remove());
  return Object.create(shared, {
    program: {
      get() {
        if (!program) throw new Error('useServiceProgram: the program is only there inside tests');
        return program;
      },
    },
  }) as Shared & { readonly program: ServiceBuild };
}

/** A running service process. */
export interface Child extends ListeningChild {
  /** SIGKILLs it if it still runs, and waits for its exit. */
  kill(): Promise<Exit>;
}

/** Starts the service program; resolves on its `listening <port>` line. SIGKILLed after `maxMs`. */
export async function startChild(build: ServiceBuild, env: Record<string, string | undefined>, maxMs = 30_000): Promise<Child> {
  const child = await startListeningChild(build.entry, env, maxMs);
  const { proc, exited } = child;
  return {
    ...child,
    kill: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      return exited;
    },
  };
}

/** One request's outcome; never rejects. Records whether it went over a reused keep-alive connection. */
export interface Attempt {
  readonly ok: boolean;
  readonly status?: number;
  readonly connection?: string;
  readonly body?: string;
  readonly code?: string;
  readonly reused: boolean;
  readonly localPort?: number;
}

export function attempt(port: number, path: string, agent: Agent | false, headers: Record<string, string> = {}): Promise<Attempt> {
  return new Promise((done) => {
    let localPort: number | undefined;
    let reused = false;
    const req = request({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ ok: res.statusCode === 200, status: res.statusCode, connection: res.headers.connection, body, reused, localPort }));
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
