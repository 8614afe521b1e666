// The assembled service as a program of its own, for the scenarios that need a real process: real
// SIGTERM (row G1) and a count of what reaches `uncaughtException` / `unhandledRejection` (row
// C5). Built by ./child.ts with tsup and run with node.
//
//   env: SERVICE_FRAMEWORK (express | fastify), REDIS_PORT, UPSTREAM_URL, DRAIN_DELAY_MS,
//        PER_CLIENT_LIMIT (optional)
//   stdout: `listening <port>`; `uncaught <message>` / `unhandled <message>` as they happen;
//           `phase <phase> <signal>` for each shutdown phase; the shutdown's own log lines;
//           `log <line>` for the service's error log; at exit, `accepted <json ports>` and
//           `faults uncaught=<n> unhandled=<n>`.
import { subscribe } from 'node:diagnostics_channel';
import { writeSync } from 'node:fs';
import { channelNames } from '../../../src/index.js';
import { startExpressService } from './express-service.js';
import { startFastifyService } from './fastify-service.js';
import type { ServiceOptions } from './parts.js';

let uncaught = 0;
let unhandled = 0;
const accepted: number[] = [];
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
process.on('uncaughtException', (error) => {
  uncaught++;
  console.log(`uncaught ${messageOf(error)}`);
});
process.on('unhandledRejection', (reason) => {
  unhandled++;
  console.log(`unhandled ${messageOf(reason)}`);
});
// Written synchronously: stdout to a pipe is asynchronous, and the process is about to end.
process.on('exit', () => {
  writeSync(1, `accepted ${JSON.stringify(accepted)}\nfaults uncaught=${uncaught} unhandled=${unhandled}\n`);
});
subscribe(channelNames.shutdownPhase, (message) => {
  const { phase, signal } = message as { phase: string; signal: string };
  console.log(`phase ${phase} ${signal}`);
});

const options: ServiceOptions = {
  redisPort: Number(process.env.REDIS_PORT),
  upstreamUrl: String(process.env.UPSTREAM_URL),
  prefix: `child-${process.pid}:`,
  ...(process.env.PER_CLIENT_LIMIT === undefined ? {} : { perClientLimit: Number(process.env.PER_CLIENT_LIMIT) }),
  log: (line) => console.log(`log ${line}`),
  signals: { drainDelayMs: Number(process.env.DRAIN_DELAY_MS ?? 500) },
};
const service = process.env.SERVICE_FRAMEWORK === 'fastify' ? await startFastifyService(options) : await startExpressService(options);
service.server.on('connection', (socket) => accepted.push(socket.remotePort ?? -1));
console.log(`listening ${service.port}`);
