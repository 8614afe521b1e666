// Real redis-server processes for the integration tests: single servers, a 3-master cluster and a
// sentinel setup. Every server runs on a random free loopback port, without persistence, in a
// fresh temp dir (removed on stop), and is killed by pid: by `stop()`, or — if a run dies first —
// by the exit and signal hooks below, so no orphan outlives the test process. Every wait is
// bounded and every timer made here is cleared, so the setup file's leak checks stay quiet.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread } from 'node:worker_threads';

/** The only interface the servers listen on. */
export const HOST = '127.0.0.1' as const;

/** How to get the binaries, repeated in every "missing" error. */
const INSTALL_HINT = 'install it with: apt-get install -y redis-server (it provides redis-server and redis-cli)';

// ---------------------------------------------------------------------------------------------
// Orphan protection: every live server pid and every temp dir not yet removed, process-wide (kept
// on globalThis so that evaluating this module twice in one process does not add hooks twice).

interface Registry {
  pids: Set<number>;
  dirs: Set<string>;
  hooked: boolean;
}

const globals = globalThis as typeof globalThis & { __bulwarkRedisRegistry?: Registry };
const registry: Registry = (globals.__bulwarkRedisRegistry ??= { pids: new Set(), dirs: new Set(), hooked: false });

/** SIGKILLs every server still alive and removes every temp dir, synchronously. */
function killEverything(): void {
  for (const pid of registry.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  registry.pids.clear();
  for (const dir of registry.dirs) rmSync(dir, { recursive: true, force: true });
  registry.dirs.clear();
}

/**
 * Installs, once per process, an 'exit' hook that kills every server still alive. A vitest fork
 * is ended with SIGTERM, which skips 'exit' hooks, so SIGTERM, SIGINT and SIGHUP kill them too
 * and then, if nothing else handles the signal, re-raise it for the default action.
 */
function hookExit(): void {
  if (registry.hooked) return;
  registry.hooked = true;
  process.on('exit', killEverything);
  if (!isMainThread) return; // a worker thread must not re-raise a signal at the whole process
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killEverything();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Small utilities.

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The absolute path of `name` on PATH; throws, saying how to install it, when it is missing. */
function findBinary(name: 'redis-server' | 'redis-cli'): string {
  const searchPath = process.env.PATH ?? '';
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error(`${name} was not found on PATH (${searchPath}); the integration tests need a real Redis: ${INSTALL_HINT}`);
}

/**
 * Calls `check` until it returns a value, every `intervalMs`, for at most `timeoutMs`; `check`
 * throws to say why it is not ready yet, and the last reason ends up in the timeout error.
 */
async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T>, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no check finished';
  for (;;) {
    try {
      return await check();
    } catch (error) {
      last = messageOf(error);
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last check: ${last}`);
    await sleep(intervalMs);
  }
}

/** Rejects with `message` if `promise` has not settled within `ms`; the timer is always cleared. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The last `count` lines of a file, or a note that it is missing. */
function tail(file: string, count = 20): string {
  if (!existsSync(file)) return `(${file} does not exist)`;
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  return lines.slice(-count).join('\n');
}

/** One `field:value` line of an INFO reply. */
export function infoField(info: string, field: string): string | undefined {
  const match = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return match?.[1]?.trim();
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP2 client: one short-lived connection per call, for readiness checks and admin
// commands, with no reconnects, queues or timers left behind.

/** A command argument; Buffers are sent byte for byte (keys from GETKEYSINSLOT, say). */
export type Arg = string | number | Buffer;

/** A parsed reply: simple strings are strings, bulk strings Buffers, errors {@link ReplyError}. */
export type Reply = string | number | Buffer | null | ReplyError | Reply[];

/** An error reply from the server (`-ERR ...`). */
export class ReplyError extends Error {
  override name = 'ReplyError';
}

function encode(args: readonly Arg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parses one reply at `at`; undefined when the buffer does not hold all of it yet. */
function parse(buffer: Buffer, at: number): { value: Reply; next: number } | undefined {
  const eol = buffer.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const type = buffer.toString('latin1', at, at + 1);
  const line = buffer.toString('utf8', at + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: new ReplyError(line), next };
    case ':':
      return { value: Number(line), next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.subarray(next, next + length), next: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next };
      const items: Reply[] = [];
      let position = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, position);
        if (!item) return undefined;
        items.push(item.value);
        position = item.next;
      }
      return { value: items, next: position };
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

function describeCommands(commands: readonly (readonly Arg[])[]): string {
  return commands.map((c) => c.map((a) => (Buffer.isBuffer(a) ? '<bytes>' : String(a))).join(' ')).join('; ');
}

/**
 * Sends `commands` in one go over a fresh connection to 127.0.0.1:`port` and resolves with one
 * reply per command (error replies included as {@link ReplyError} values). Rejects when the
 * connection fails or not every reply arrived within `timeoutMs`.
 */
export function sendCommands(port: number, commands: readonly (readonly Arg[])[], timeoutMs = 2_000): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const replies: Reply[] = [];
    let received = Buffer.alloc(0);
    let offset = 0;
    let settled = false;
    const socket = net.connect({ host: HOST, port });
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(replies);
    };
    const timer = setTimeout(
      () => finish(new Error(`no reply from ${HOST}:${port} within ${timeoutMs} ms to: ${describeCommands(commands)}`)),
      timeoutMs,
    );
    socket.on('connect', () => socket.write(Buffer.concat(commands.map(encode))));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      try {
        while (replies.length < commands.length) {
          const reply = parse(received, offset);
          if (!reply) break;
          replies.push(reply.value);
          offset = reply.next;
        }
      } catch (error) {
        finish(error as Error);
        return;
      }
      if (replies.length === commands.length) finish();
    });
    socket.on('error', (error) => finish(new Error(`${HOST}:${port}: ${error.message}`)));
    socket.on('close', () => finish(new Error(`${HOST}:${port} closed the connection before replying to: ${describeCommands(commands)}`)));
  });
}

/** Sends one command (see {@link sendCommands}); an error reply rejects as a {@link ReplyError}. */
export async function command(port: number, args: readonly Arg[], timeoutMs = 2_000): Promise<Reply> {
  const [reply] = await sendCommands(port, [args], timeoutMs);
  if (reply instanceof ReplyError) throw reply;
  return reply ?? null;
}

/** A reply as text (bulk strings decoded as UTF-8). */
function text(reply: Reply): string {
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (typeof reply === 'string' || typeof reply === 'number') return String(reply);
  throw new Error(`expected a string reply, got ${JSON.stringify(reply)}`);
}

async function info(port: number, section: string): Promise<string> {
  return text(await command(port, ['INFO', section]));
}

/** An ioredis `Redis` or `Cluster`, as far as {@link disconnectClient} needs one. */
export interface DisconnectableClient {
  readonly status: string;
  disconnect(): void;
  once(event: 'end', listener: () => void): unknown;
  /** A Cluster's node connections. */
  nodes?(): DisconnectableClient[];
  /** The client's socket (ioredis keeps the last one it opened). */
  readonly stream?: { readonly closed?: boolean; once(event: 'close', listener: () => void): unknown };
}

/**
 * Disconnects an ioredis client (a Cluster with all its node connections) and waits, bounded,
 * until each has ended: ioredis arms a timer in disconnect() that it clears only once the socket
 * has closed, and a Cluster ends before its nodes' sockets have, so a test that just calls
 * disconnect() ends with timers running.
 */
export async function disconnectClient(client: DisconnectableClient, timeoutMs = 5_000): Promise<void> {
  // Once ended, disconnect() would arm that timer again with no socket left to clear it.
  const open = [client, ...(client.nodes?.() ?? [])].filter((c) => c.status !== 'end');
  if (open.length === 0) return;
  const ended = Promise.all(open.map((c) => new Promise<void>((resolve) => c.once('end', resolve))));
  client.disconnect();
  await within(
    ended,
    timeoutMs,
    `the client did not end within ${timeoutMs} ms of disconnect() (still open: ${open.filter((c) => c.status !== 'end').map((c) => c.status).join(', ')})`,
  );
  // 'end' can come before the socket a disconnect() ended has closed (one still connecting through
  // a blackholing proxy, on a busy machine): ioredis clears its timer only on that close.
  const sockets = open.map((c) => c.stream).filter((socket) => socket !== undefined && socket.closed === false);
  await within(
    Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket!.once('close', resolve)))),
    timeoutMs,
    `a client's socket did not close within ${timeoutMs} ms of disconnect()`,
  );
  // A Cluster also opens short-lived connections of its own (to refresh its slot map after a
  // MOVED) that it disconnects as soon as they have answered; their sockets, and the timers
  // ioredis arms until each closes, may outlive 'end' by a moment on loopback.
  await new Promise((resolve) => setTimeout(resolve, client.nodes === undefined ? 0 : 50));
}

// ---------------------------------------------------------------------------------------------
// redis-cli.

/**
 * Runs the redis-cli binary with `args` and resolves with its stdout; rejects with stderr/stdout
 * when it exits non-zero, and kills it when it runs longer than `timeoutMs`.
 */
function runCli(args: readonly string[], timeoutMs: number): Promise<string> {
  const bin = findBinary('redis-cli');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const shown = `redis-cli ${args.join(' ')}`;
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${shown} could not run: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`${shown} did not finish within ${timeoutMs} ms; output so far: ${stdout}${stderr}`));
      else if (code !== 0) reject(new Error(`${shown} failed (${signal ?? `exit code ${code}`}): ${(stderr || stdout).trim()}`));
      else resolve(stdout);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Ports.

function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ host: HOST, port, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}

interface PortNeeds {
  /** Highest acceptable port (cluster nodes: ≤ 55000, so port + 10000 is valid). */
  maxPort?: number;
  /** Also require port + 10000 (the cluster bus port) to be free. */
  busPort?: boolean;
}

/** A port that was free a moment ago (bound with listen(0), then closed); never 6379. */
async function freePort(needs: PortNeeds = {}): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = await listenOnce(0);
    if (port === undefined || port === 6379) continue;
    if (needs.maxPort !== undefined && port > needs.maxPort) continue;
    if (needs.busPort && (await listenOnce(port + 10_000)) === undefined) continue;
    return port;
  }
  throw new Error(`could not find a free loopback port${needs.maxPort ? ` at or below ${needs.maxPort}` : ''} in 100 tries`);
}

// ---------------------------------------------------------------------------------------------
// One server process.

/** A redis-server process started by {@link startRedis} (or as part of a cluster or sentinel setup). */
export interface RedisServer {
  readonly host: typeof HOST;
  /** The port it listens on; it stays the same across {@link RedisServer.restart}. */
  readonly port: number;
  /** The pid of the current process (a restart changes it). */
  readonly pid: number;
  /** Its temp dir, holding redis.log (and nodes.conf / sentinel.conf); removed by stop(). */
  readonly dir: string;
  /** Whether the process is running (a SIGSTOPped process counts as running). */
  readonly alive: boolean;
  /** SIGKILLs the process, waits (bounded) for it to exit and removes the dir. Idempotent. */
  stop(): Promise<void>;
  /** Sends `signal` to the process (SIGSTOP, SIGCONT, SIGKILL, ...); a SIGKILL to a dead one is a no-op. */
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the process has exited (bounded: rejects after `timeoutMs`). */
  exited(timeoutMs?: number): Promise<void>;
  /** Starts the server again on the same port and dir (killing it first if it still runs) and waits until it answers PING. */
  restart(): Promise<void>;
  /** Runs `redis-cli -h 127.0.0.1 -p <port> -e ...args` and returns its stdout; an error reply or a 10 s timeout rejects. */
  cli(...args: string[]): Promise<string>;
  /** Sends one command over raw RESP (see {@link command}); an error reply rejects. */
  command(args: readonly Arg[], timeoutMs?: number): Promise<Reply>;
}

/** How to run a server: the arguments after the common ones, and an optional config file. */
interface Recipe {
  label: string;
  args: readonly string[];
  /** Sentinel mode: the sentinel.conf contents, written before the first start. */
  sentinelConfig?: string;
  ports?: PortNeeds;
}

/** Why a start failed because the port was taken between picking it and redis binding it. */
class PortTakenError extends Error {}

const LOG = 'redis.log';
const OUTPUT = 'output.log';
const START_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 5_000;
const CLI_TIMEOUT_MS = 10_000;

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function spawnServer(recipe: Recipe, dir: string, port: number): ChildProcess {
  const argv = [
    ...(recipe.sentinelConfig === undefined ? [] : [path.join(dir, 'sentinel.conf'), '--sentinel']),
    '--port', String(port),
    '--bind', HOST,
    '--protected-mode', 'no',
    '--dir', dir,
    '--logfile', path.join(dir, LOG),
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    ...recipe.args,
  ];
  // stdout/stderr (config errors are printed there before the log file is open) go to a file, so
  // no pipe stays open in this process.
  const output = openSync(path.join(dir, OUTPUT), 'a');
  let child: ChildProcess;
  try {
    child = spawn(findBinary('redis-server'), argv, { cwd: dir, stdio: ['ignore', output, output] });
  } finally {
    closeSync(output);
  }
  child.on('error', () => {}); // a failed spawn shows up as an exit, which waitReady reports
  child.unref(); // a forgotten server must not keep the process alive; the exit hook kills it
  if (child.pid !== undefined) registry.pids.add(child.pid);
  child.once('exit', () => {
    if (child.pid !== undefined) registry.pids.delete(child.pid);
  });
  return child;
}

function exitOf(child: ChildProcess, timeoutMs: number, what: string): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  return within(
    new Promise<void>((resolve) => child.once('exit', () => resolve())),
    timeoutMs,
    `${what} (pid ${child.pid}) did not exit within ${timeoutMs} ms`,
  );
}

async function killAndWait(child: ChildProcess, what: string): Promise<void> {
  if (!isRunning(child)) return;
  try {
    child.kill('SIGKILL');
  } catch {
    // already gone
  }
  await exitOf(child, EXIT_TIMEOUT_MS, what);
}

/** Both log files' last lines, for error messages. */
function logsOf(dir: string): string {
  return `--- last lines of ${path.join(dir, LOG)} ---\n${tail(path.join(dir, LOG))}\n--- ${OUTPUT} ---\n${tail(path.join(dir, OUTPUT), 10)}`;
}

/** Waits until the process on `port` answers PING and is `child` (INFO's process_id matches). */
async function waitReady(child: ChildProcess, port: number, dir: string, what: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = 'no check finished';
  for (;;) {
    if (!isRunning(child)) {
      const logs = logsOf(dir);
      const reason = `${what} exited at once (${child.signalCode ?? `exit code ${child.exitCode}`}) on port ${port}`;
      if (/Address already in use/i.test(logs)) throw new PortTakenError(`${reason}: the port was taken\n${logs}`);
      throw new Error(`${reason}\n${logs}`);
    }
    try {
      const [serverInfo, pong] = await sendCommands(port, [['INFO', 'server'], ['PING']], 1_000);
      const pid = Number(infoField(text(serverInfo ?? null), 'process_id'));
      if (pid !== child.pid) last = `port ${port} is answered by pid ${pid}, not ${child.pid}`;
      else if (pong !== 'PONG') last = `PING answered ${String(pong)}`;
      else return;
    } catch (error) {
      last = messageOf(error);
    }
    if (Date.now() >= deadline) {
      await killAndWait(child, what);
      throw new Error(`${what} on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms (last check: ${last})\n${logsOf(dir)}`);
    }
    await sleep(20);
  }
}

class Server implements RedisServer {
  readonly host = HOST;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly recipe: Recipe,
    readonly port: number,
    readonly dir: string,
    private child: ChildProcess,
  ) {}

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return isRunning(this.child);
  }

  private get what(): string {
    return `${this.recipe.label} on port ${this.port}`;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await killAndWait(this.child, this.what);
      } finally {
        rmSync(this.dir, { recursive: true, force: true });
        registry.dirs.delete(this.dir);
      }
    })();
    return this.stopping;
  }

  kill(signal: NodeJS.Signals): void {
    if (signal === 'SIGKILL' && !this.alive) return;
    if (!this.alive) throw new Error(`cannot send ${signal} to ${this.what}: it has exited`);
    process.kill(this.pid, signal);
  }

  exited(timeoutMs = EXIT_TIMEOUT_MS): Promise<void> {
    return exitOf(this.child, timeoutMs, this.what);
  }

  async restart(): Promise<void> {
    if (this.stopping) throw new Error(`cannot restart ${this.what}: it was stopped`);
    await killAndWait(this.child, this.what);
    this.child = spawnServer(this.recipe, this.dir, this.port);
    try {
      await waitReady(this.child, this.port, this.dir, this.what);
    } catch (error) {
      await killAndWait(this.child, this.what);
      throw new Error(`restarting ${this.what} failed: ${messageOf(error)}`);
    }
  }

  cli(...args: string[]): Promise<string> {
    return runCli(['-h', HOST, '-p', String(this.port), '-e', ...args], CLI_TIMEOUT_MS);
  }

  command(args: readonly Arg[], timeoutMs?: number): Promise<Reply> {
    return command(this.port, args, timeoutMs);
  }
}

/** Starts one server per `recipe`, retrying on another port (up to 5 times) when its port was taken. */
async function launch(recipe: Recipe): Promise<Server> {
  findBinary('redis-server');
  hookExit();
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-redis-'));
    registry.dirs.add(dir);
    let child: ChildProcess | undefined;
    try {
      const port = await freePort(recipe.ports);
      if (recipe.sentinelConfig !== undefined) writeFileSync(path.join(dir, 'sentinel.conf'), recipe.sentinelConfig);
      child = spawnServer(recipe, dir, port);
      await waitReady(child, port, dir, recipe.label);
      return new Server(recipe, port, dir, child);
    } catch (error) {
      if (child) await killAndWait(child, recipe.label);
      rmSync(dir, { recursive: true, force: true });
      registry.dirs.delete(dir);
      if (error instanceof PortTakenError && attempt < 5) continue;
      throw error;
    }
  }
}

/** Stops every server given, even when some stops fail; rethrows the first failure. */
async function stopAll(servers: readonly RedisServer[]): Promise<void> {
  const results = await Promise.allSettled(servers.map((s) => s.stop()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Starts a redis-server on a random free loopback port, with no persistence, in a fresh temp
 * dir, and resolves once it answers PING. `args` are extra redis-server options
 * (`['--maxmemory', '10mb']`). Throws, saying how to install Redis, when redis-server is missing.
 */
export function startRedis(options: { args?: string[] } = {}): Promise<RedisServer> {
  return launch({ label: 'redis-server', args: options.args ?? [] });
}

// ---------------------------------------------------------------------------------------------
// Cluster.

/** A 3-master Redis Cluster (by default without replicas) started by {@link startCluster}. */
export interface RedisCluster {
  /** The three masters as started (in the order given to `redis-cli --cluster create`). */
  nodes: RedisServer[];
  /** With `replicas: 1`: one replica per master, `replicas[i]` replicating `nodes[i]`; else empty. */
  replicas: RedisServer[];
  /** Where a cluster client starts (every node, replicas included). */
  startupNodes: { host: string; port: number }[];
  /** Stops every node. */
  stop(): Promise<void>;
  /**
   * Moves one hash slot, with its keys, from the node that owns it to `nodes[toNodeIndex]`
   * (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE the keys in batches of 100, SETSLOT NODE on
   * every node) and waits until every node agrees. A no-op when that node already owns it.
   */
  migrateSlot(slot: number, toNodeIndex: number): Promise<void>;
  /** The index in `nodes` of the node owning `slot`, as the first node that answers sees it. */
  slotOwner(slot: number): Promise<number>;
}

const SLOTS = 16_384;

/** Slot → port of the owner (0: none), from the CLUSTER SLOTS of the node on `port`. */
export async function slotMap(port: number): Promise<number[]> {
  const reply = await command(port, ['CLUSTER', 'SLOTS']);
  if (!Array.isArray(reply)) throw new Error(`CLUSTER SLOTS on ${port} returned ${String(reply)}`);
  const owners = new Array<number>(SLOTS).fill(0);
  for (const range of reply) {
    if (!Array.isArray(range)) continue;
    const [start, end, master] = range;
    if (typeof start !== 'number' || typeof end !== 'number' || !Array.isArray(master)) continue;
    const ownerPort = Number(master[1]);
    for (let slot = start; slot <= end; slot++) owners[slot] = ownerPort;
  }
  return owners;
}

/** A short picture of a slot map (ranges per port), for error messages. */
function describeSlots(owners: readonly number[]): string {
  const ranges: string[] = [];
  let start = 0;
  for (let slot = 1; slot <= owners.length; slot++) {
    if (slot === owners.length || owners[slot] !== owners[start]) {
      ranges.push(`${start}-${slot - 1}:${owners[start] || 'none'}`);
      start = slot;
    }
  }
  return ranges.join(' ');
}

/** Checks (throwing the reason otherwise) that every node says cluster_state:ok and all slot maps agree and cover every slot. */
async function clusterSettled(nodes: readonly RedisServer[]): Promise<void> {
  const maps: number[][] = [];
  for (const node of nodes) {
    const state = text(await command(node.port, ['CLUSTER', 'INFO']));
    if (infoField(state, 'cluster_state') !== 'ok') throw new Error(`node ${node.port}: cluster_state:${infoField(state, 'cluster_state')}`);
    if (infoField(state, 'cluster_known_nodes') !== String(nodes.length)) {
      throw new Error(`node ${node.port} knows ${infoField(state, 'cluster_known_nodes')} nodes`);
    }
    maps.push(await slotMap(node.port));
  }
  const first = maps[0] ?? [];
  if (first.some((port) => port === 0)) throw new Error(`node ${nodes[0]?.port} does not cover every slot: ${describeSlots(first)}`);
  maps.forEach((map, i) => {
    if (map.some((port, slot) => port !== first[slot])) {
      throw new Error(`nodes disagree on slots: ${nodes[0]?.port} has ${describeSlots(first)}, ${nodes[i]?.port} has ${describeSlots(map)}`);
    }
  });
}

/** The port of the master a replica on `port` follows, once its link to it is up. */
async function masterOfReplica(port: number): Promise<number> {
  const replication = await info(port, 'replication');
  if (infoField(replication, 'role') !== 'slave') throw new Error(`node ${port} says role:${infoField(replication, 'role')}`);
  if (infoField(replication, 'master_link_status') !== 'up') throw new Error(`replica ${port}: master_link_status:${infoField(replication, 'master_link_status')}`);
  return Number(infoField(replication, 'master_port'));
}

/**
 * Starts 3 cluster-enabled masters on free ports ≤ 55000 (the bus port is port + 10000), and with
 * `replicas: 1` one replica of each, joins them with `redis-cli --cluster create ... --cluster-yes`,
 * and resolves once every node reports cluster_state:ok, all agree on the slots and every replica's
 * link to its master is up. `args` go to every node (the default --cluster-node-timeout is
 * 5000 ms; a replica takes over a dead master only after it, so a failover test lowers it).
 */
export async function startCluster(options: { args?: string[]; replicas?: 0 | 1 } = {}): Promise<RedisCluster> {
  findBinary('redis-cli'); // before starting anything: `--cluster create` needs it
  const replicaCount = options.replicas ?? 0;
  if (replicaCount !== 0 && replicaCount !== 1) throw new RangeError(`replicas must be 0 or 1, got ${String(options.replicas)}`);
  const recipe: Recipe = {
    label: 'cluster node',
    args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000', ...(options.args ?? [])],
    ports: { maxPort: 55_000, busPort: true },
  };
  const started: RedisServer[] = [];
  const nodes: RedisServer[] = [];
  const replicas: RedisServer[] = [];
  try {
    for (let i = 0; i < 3 * (1 + replicaCount); i++) started.push(await launch(recipe));
    await runCli(
      ['--cluster', 'create', ...started.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', String(replicaCount), '--cluster-yes'],
      30_000,
    );
    await waitFor('the cluster to settle (cluster_state:ok, one slot map on every node)', 20_000, () => clusterSettled(started), 100);
    if (replicaCount === 0) {
      nodes.push(...started);
    } else {
      // redis-cli chooses which nodes become masters and which master each replica follows.
      const masterPorts = new Set((await slotMap(started[0]!.port)).filter((port) => port !== 0));
      nodes.push(...started.filter((n) => masterPorts.has(n.port)));
      if (nodes.length !== 3) throw new Error(`expected 3 masters, the slot map names ${[...masterPorts].join(', ')}`);
      const followed = await waitFor('every replica to sync with its master', 20_000, () =>
        Promise.all(started.filter((n) => !masterPorts.has(n.port)).map(async (n) => ({ node: n, master: await masterOfReplica(n.port) }))),
      100);
      for (const master of nodes) {
        const replica = followed.find((f) => f.master === master.port);
        if (!replica) throw new Error(`no replica follows the master on ${master.port}`);
        replicas.push(replica.node);
      }
    }
  } catch (error) {
    await stopAll(started).catch(() => {});
    throw error;
  }
  const ids = new Map<RedisServer, string>();
  const idOf = async (node: RedisServer): Promise<string> => {
    let id = ids.get(node);
    if (id === undefined) {
      id = text(await node.command(['CLUSTER', 'MYID']));
      ids.set(node, id);
    }
    return id;
  };

  const slotOwner = async (slot: number): Promise<number> => {
    if (!Number.isInteger(slot) || slot < 0 || slot >= SLOTS) throw new RangeError(`slot must be 0..${SLOTS - 1}, got ${slot}`);
    const errors: string[] = [];
    for (const node of nodes) {
      try {
        const port = (await slotMap(node.port))[slot];
        const index = nodes.findIndex((n) => n.port === port);
        if (index < 0) throw new Error(`slot ${slot} is owned by unknown port ${port}`);
        return index;
      } catch (error) {
        errors.push(`${node.port}: ${messageOf(error)}`);
      }
    }
    throw new Error(`no node could tell who owns slot ${slot}: ${errors.join('; ')}`);
  };

  const migrateSlot = async (slot: number, toNodeIndex: number): Promise<void> => {
    const target = nodes[toNodeIndex];
    if (!target) throw new RangeError(`toNodeIndex must be 0..${nodes.length - 1}, got ${toNodeIndex}`);
    const source = nodes[await slotOwner(slot)];
    if (!source) throw new Error(`slot ${slot} has no owner`);
    if (source === target) return;
    const [sourceId, targetId] = [await idOf(source), await idOf(target)];
    await target.command(['CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId]);
    await source.command(['CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId]);
    for (let batch = 0; ; batch++) {
      if (batch > 100_000) throw new Error(`slot ${slot} never ran out of keys to migrate`);
      const keys = await source.command(['CLUSTER', 'GETKEYSINSLOT', slot, 100]);
      if (!Array.isArray(keys) || keys.length === 0) break;
      await source.command(['MIGRATE', HOST, target.port, '', 0, 5_000, 'KEYS', ...(keys as Buffer[])], 10_000);
    }
    // The target first, so it bumps its epoch and owns the slot before the source lets go.
    for (const node of [target, source, ...nodes.filter((n) => n !== source && n !== target)]) {
      await node.command(['CLUSTER', 'SETSLOT', slot, 'NODE', targetId]);
    }
    await waitFor(`every node to see slot ${slot} on port ${target.port}`, 10_000, async () => {
      for (const node of nodes) {
        const owner = (await slotMap(node.port))[slot];
        if (owner !== target.port) throw new Error(`node ${node.port} says port ${owner}`);
      }
    });
  };

  return {
    nodes,
    replicas,
    startupNodes: started.map((n) => ({ host: n.host, port: n.port })),
    stop: () => stopAll(started),
    migrateSlot,
    slotOwner,
  };
}

// ---------------------------------------------------------------------------------------------
// Sentinel.

/** A master, a replica and 3 sentinels (quorum 2) started by {@link startSentinel}. */
export interface RedisSentinelSetup {
  /** The server started as master (after a failover it is dead, or a replica once restarted). */
  master: RedisServer;
  /** The server started as its replica (the one a first failover promotes). */
  replica: RedisServer;
  sentinels: RedisServer[];
  /** The name the sentinels monitor the master under ('mymaster'). */
  masterName: string;
  /** Where a sentinel-aware client starts (every sentinel). */
  sentinelAddresses: { host: string; port: number }[];
  /**
   * SIGKILLs the current master (as the sentinels see it) and waits (bounded, 30 s) until every
   * sentinel reports another server as master and that server says role:master; returns its port.
   */
  failover(): Promise<number>;
  /** The master's port as the first sentinel that answers reports it. */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
}

async function sentinelMasterPort(sentinel: RedisServer, name: string): Promise<number> {
  const reply = await sentinel.command(['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name]);
  if (!Array.isArray(reply) || reply.length !== 2) throw new Error(`sentinel ${sentinel.port} knows no master ${name}`);
  return Number(text(reply[1] ?? null));
}

/** A SENTINEL MASTER reply (flat field/value list) as a record. */
async function sentinelMasterState(sentinel: RedisServer, name: string): Promise<Record<string, string>> {
  const reply = await sentinel.command(['SENTINEL', 'MASTER', name]);
  if (!Array.isArray(reply)) throw new Error(`SENTINEL MASTER ${name} on ${sentinel.port} returned ${String(reply)}`);
  const state: Record<string, string> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) state[text(reply[i] ?? null)] = text(reply[i + 1] ?? null);
  return state;
}

/**
 * Starts a master, a replica of it and 3 sentinels monitoring it as 'mymaster' (quorum 2,
 * down-after-milliseconds 1000, failover-timeout 3000), and resolves once the replica is in sync
 * and every sentinel sees the master, the replica and the two other sentinels.
 */
export async function startSentinel(): Promise<RedisSentinelSetup> {
  const masterName = 'mymaster';
  const started: RedisServer[] = [];
  try {
    // A master by default waits 5 s for more replicas before a diskless full sync.
    const syncNow = ['--repl-diskless-sync-delay', '0'];
    const master = await launch({ label: 'master', args: syncNow });
    started.push(master);
    const replica = await launch({ label: 'replica', args: [...syncNow, '--replicaof', HOST, String(master.port)] });
    started.push(replica);
    await waitFor(`the replica on ${replica.port} to sync with the master on ${master.port}`, 15_000, async () => {
      const replication = await info(replica.port, 'replication');
      if (infoField(replication, 'master_link_status') !== 'up') throw new Error(`master_link_status:${infoField(replication, 'master_link_status')}`);
    });
    const sentinelConfig = [
      `sentinel monitor ${masterName} ${HOST} ${master.port} 2`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 3000`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n');
    const sentinels: RedisServer[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinel = await launch({ label: 'sentinel', args: [], sentinelConfig });
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    await waitFor('every sentinel to see the master, the replica and 2 other sentinels', 20_000, async () => {
      for (const sentinel of sentinels) {
        const state = await sentinelMasterState(sentinel, masterName);
        if (state.flags !== 'master' || state['num-slaves'] !== '1' || state['num-other-sentinels'] !== '2') {
          throw new Error(
            `sentinel ${sentinel.port}: flags=${state.flags} num-slaves=${state['num-slaves']} num-other-sentinels=${state['num-other-sentinels']}`,
          );
        }
      }
    }, 100);

    const masterPort = async (): Promise<number> => {
      const errors: string[] = [];
      for (const sentinel of sentinels) {
        try {
          return await sentinelMasterPort(sentinel, masterName);
        } catch (error) {
          errors.push(`${sentinel.port}: ${messageOf(error)}`);
        }
      }
      throw new Error(`no sentinel could name the master: ${errors.join('; ')}`);
    };

    const failover = async (): Promise<number> => {
      const oldPort = await masterPort();
      const old = [master, replica].find((s) => s.port === oldPort);
      if (!old) throw new Error(`the sentinels name port ${oldPort} as master, which is neither ${master.port} nor ${replica.port}`);
      old.kill('SIGKILL');
      await old.exited();
      return waitFor(`the sentinels to promote a new master after killing ${oldPort}`, 30_000, async () => {
        const ports = new Set<number>();
        for (const sentinel of sentinels) if (sentinel.alive) ports.add(await sentinelMasterPort(sentinel, masterName));
        const [port] = ports;
        if (ports.size !== 1 || port === undefined || port === oldPort) throw new Error(`sentinels name ${[...ports].join(', ')}`);
        const role = infoField(await info(port, 'replication'), 'role');
        if (role !== 'master') throw new Error(`the sentinels name ${port}, which still says role:${role}`);
        return port;
      }, 100);
    };

    return {
      master,
      replica,
      sentinels,
      masterName,
      sentinelAddresses: sentinels.map((s) => ({ host: s.host, port: s.port })),
      failover,
      masterPort,
      stop: () => stopAll(started),
    };
  } catch (error) {
    await stopAll(started).catch(() => {});
    throw error;
  }
}
