// The modelled dependency of benchmarks/overload.mjs, in its own process (forked by the harness,
// never run alone): a fixed capacity C = W workers / S ms, each call served in S ms ± 20 %
// (uniform), behind an unbounded FIFO queue, as a real overloaded backend has (a database's
// connection queue, a thread pool's backlog). Serving is a timer, not CPU, so the model's capacity
// does not depend on how busy the 2-core machine is.
//
// Protocol: one TCP connection per client on 127.0.0.1:<port 0>, newline-framed, multiplexed by
// id, answers in completion order (as a database client pipelines): the client writes `<id>\n`,
// the backend answers `<id> ok\n` when served, or `<id> flushed\n` when the harness flushed the
// queue between scenarios. One socket instead of one HTTP connection per call keeps the model's
// own cost small next to the service under test (at 3 C without admission control thousands of
// calls wait at once).
//
// Control (IPC from the harness): { type: 'set', workers?, serviceScale? } changes capacity or
// service time from the next call started (calls being served finish as they were);
// { type: 'flush' } answers every queued call `flushed` at once; { type: 'stats' } replies
// { type: 'stats', served, queued, busy, maxQueued, delayP99Ms } and resets the counters.
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const workersArg = Number(process.env.OVERLOAD_WORKERS);
const serviceMs = Number(process.env.OVERLOAD_SERVICE_MS);
if (!Number.isInteger(workersArg) || workersArg < 1 || !(serviceMs > 0)) {
  console.error('overload-backend: OVERLOAD_WORKERS and OVERLOAD_SERVICE_MS must be set (the harness forks this file)');
  process.exit(2);
}

let workers = workersArg;
let serviceScale = 1;
let busy = 0;
let served = 0;
let maxQueued = 0;
/** FIFO of waiting calls: parallel arrays with a moving head, compacted when half is consumed. */
let queueIds = [];
let queueSockets = [];
let head = 0;

const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();

function queued() {
  return queueIds.length - head;
}

function dispatch() {
  while (busy < workers && head < queueIds.length) {
    const id = queueIds[head];
    const socket = queueSockets[head];
    queueIds[head] = undefined;
    queueSockets[head] = undefined;
    head++;
    busy++;
    const ms = serviceMs * serviceScale * (0.8 + 0.4 * Math.random());
    setTimeout(finish, ms, id, socket);
  }
  if (head > 1024 && head * 2 > queueIds.length) {
    queueIds = queueIds.slice(head);
    queueSockets = queueSockets.slice(head);
    head = 0;
  }
}

function finish(id, socket) {
  busy--;
  served++;
  if (!socket.destroyed) socket.write(`${id} ok\n`);
  dispatch();
}

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.setEncoding('latin1');
  let pending = '';
  socket.on('data', (chunk) => {
    pending += chunk;
    let eol;
    let start = 0;
    while ((eol = pending.indexOf('\n', start)) >= 0) {
      queueIds.push(pending.slice(start, eol));
      queueSockets.push(socket);
      start = eol + 1;
    }
    pending = pending.slice(start);
    if (queued() > maxQueued) maxQueued = queued();
    dispatch();
  });
  socket.on('error', () => {
    // the service went away; its queued calls are answered into a destroyed socket, i.e. dropped
  });
});

process.on('message', (m) => {
  if (m.type === 'set') {
    if (m.workers !== undefined) workers = m.workers;
    if (m.serviceScale !== undefined) serviceScale = m.serviceScale;
    dispatch();
    process.send({ type: 'set', workers, serviceScale });
  } else if (m.type === 'flush') {
    const flushed = queued();
    for (let i = head; i < queueIds.length; i++) if (!queueSockets[i].destroyed) queueSockets[i].write(`${queueIds[i]} flushed\n`);
    queueIds = [];
    queueSockets = [];
    head = 0;
    process.send({ type: 'flush', flushed });
  } else if (m.type === 'stats') {
    // The histogram samples every 5 ms and its values include that period: taken off.
    process.send({ type: 'stats', served, queued: queued(), busy, maxQueued, delayP99Ms: Math.max(0, loopDelay.percentile(99) / 1e6 - 5) });
    served = 0;
    maxQueued = queued();
    loopDelay.reset();
  }
});
process.on('disconnect', () => process.exit(0));

server.listen({ host: '127.0.0.1', port: 0 }, () => process.send({ type: 'listening', port: server.address().port }));
