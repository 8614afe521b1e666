// The service under test of benchmarks/overload.mjs, in its own process (forked by the harness,
// never run alone): a plain node:http server on 127.0.0.1:<port 0> that calls the modelled backend
// (benchmarks/overload-backend.mjs) once per request and answers 200 when the call is served,
// 503 + Retry-After when its admission stage turns the request away, 502 when the backend flushed
// the call. The request's traffic class comes in the `x-priority` header ('critical',
// 'sheddable'); only the adaptive stage reads it.
//
// Admission stages, chosen by the harness over IPC ({ type: 'stage', stage, options }), each a
// fresh instance so that no scenario inherits another's state:
//   none      every request calls the backend (a naive service)
//   bulkhead  bulwark's bulkhead({ maxConcurrent, maxQueue: 0 }) around the call, sized by hand
//   adaptive  bulwark's admission controller with an adaptive limit around the call (issue 15 §1)
//
// What the process measures and hands over on { type: 'stats' }: its event-loop delay (p99, max),
// its CPU use, how long a rejection took from the request event to the answer (server side), and
// the admission limit sampled every 100 ms ([epoch ms, limit, in flight]).
import { createServer } from 'node:http';
import net from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const backendPort = Number(process.env.OVERLOAD_BACKEND_PORT);
const bulwark = await import(pathToFileURL(process.env.OVERLOAD_BULWARK).href);

/** Epoch ms with sub-ms precision, comparable across the harness's processes. */
const now = () => performance.timeOrigin + performance.now();

// --- the backend client: one multiplexed connection, calls answered by id -----------------------
const pendingCalls = new Map(); // id → resolve
let nextId = 0;
const backend = net.connect({ host: '127.0.0.1', port: backendPort, noDelay: true });
backend.setEncoding('latin1');
let backendBuffer = '';
backend.on('data', (chunk) => {
  backendBuffer += chunk;
  let start = 0;
  let eol;
  while ((eol = backendBuffer.indexOf('\n', start)) >= 0) {
    const space = backendBuffer.indexOf(' ', start);
    const id = Number(backendBuffer.slice(start, space));
    const resolve = pendingCalls.get(id);
    if (resolve !== undefined) {
      pendingCalls.delete(id);
      resolve(backendBuffer.slice(space + 1, eol));
    }
    start = eol + 1;
  }
  backendBuffer = backendBuffer.slice(start);
});
backend.on('error', (error) => {
  console.error(`overload-service: backend connection failed: ${error.message}`);
  process.exit(2);
});

/** One backend call: resolves 'ok' when served, 'flushed' when the harness emptied the queue. */
function callBackend() {
  const id = nextId++;
  backend.write(`${id}\n`);
  return new Promise((resolve) => pendingCalls.set(id, resolve));
}

// --- admission stages ---------------------------------------------------------------------------
const RETRY_AFTER_S = '1';

/** Builds a stage: `handle(priority)` resolves with the HTTP status to answer. */
function makeStage(stage, options) {
  if (stage === 'none') {
    return { handle: () => callBackend().then(statusOf), sample: undefined };
  }
  if (stage === 'bulkhead') {
    const policy = bulwark.bulkhead({ maxConcurrent: options.maxConcurrent, maxQueue: 0, name: 'overload' });
    return {
      handle: () =>
        policy.execute(callBackend).then(statusOf, (error) => {
          if (error instanceof bulwark.BulkheadRejectedError) return 503;
          throw error;
        }),
      sample: () => [options.maxConcurrent, policy.active],
    };
  }
  if (stage === 'adaptive') return adaptiveStage(options);
  throw new Error(`unknown stage ${stage}`);
}

function statusOf(answer) {
  return answer === 'ok' ? 200 : 502;
}

/** The class levels of bulwark's admission core: 3 = critical … 0 = sheddable. */
const LEVEL = { critical: 3, sheddable: 0 };

/**
 * bulwark's admission controller with an adaptive limit around the backend call, deciding on
 * arrival (tryAcquire: a rejection never waits behind admitted work), or with `acquire` when the
 * controller is given a queue. `options`: `algorithm`
 * ('gradient2' by default, or 'vegas', 'aimd'), `controller` (options of admissionController),
 * and the rest for the algorithm, as they are.
 */
function adaptiveStage(options) {
  const { algorithm = 'gradient2', controller: controllerOptions = {}, ...limitOptions } = options;
  if (typeof bulwark.admissionController !== 'function') throw new Error('this build of bulwark has no admissionController');
  const controller = bulwark.admissionController({ name: 'overload', ...controllerOptions, limit: bulwark[algorithm](limitOptions) });
  const released = (permit) => (answer) => {
    permit.release(answer === 'ok' ? 'success' : 'ignore');
    return statusOf(answer);
  };
  const run = (admission) => (typeof admission.release === 'function' ? callBackend().then(released(admission)) : 503);
  // With a queue (controller.maxQueue > 0) a request may wait up to maxWaitMs for a slot.
  const queued = (controllerOptions.maxQueue ?? 0) > 0;
  return {
    handle: (priority) => {
      const request = priority === undefined ? undefined : { priority: LEVEL[priority] };
      if (!queued) return Promise.resolve(run(controller.tryAcquire(request)));
      return Promise.resolve(controller.acquire(request)).then(run);
    },
    sample: () => {
      const s = controller.snapshot();
      return [s.limit, s.inFlight];
    },
  };
}

let current = makeStage('none', {});
const limitSamples = []; // [epoch ms, limit, in flight]
setInterval(() => {
  if (current.sample !== undefined) limitSamples.push([now(), ...current.sample()]);
}, 100).unref();

// --- the server ---------------------------------------------------------------------------------
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
let cpu = process.cpuUsage();
let cpuSince = now();
let rejectionMs = []; // server-side time from the request event to a 503's answer
let answered = 0;
let inFlight = 0;

const server = createServer((req, res) => {
  const t0 = performance.now();
  const header = req.headers['x-priority'];
  const priority = header === 'critical' || header === 'sheddable' ? header : undefined;
  inFlight++;
  current.handle(priority).then(
    (status) => answer(res, status, t0),
    (error) => {
      console.error(`overload-service: ${error.stack ?? error}`);
      answer(res, 500, t0);
    },
  );
});
server.keepAliveTimeout = 60_000;

function answer(res, status, t0) {
  inFlight--;
  answered++;
  if (status === 503) res.writeHead(503, { 'content-length': '0', 'retry-after': RETRY_AFTER_S });
  else res.writeHead(status, { 'content-length': '2' });
  res.end(status === 503 ? undefined : 'ok');
  if (status === 503) rejectionMs.push(performance.now() - t0);
}

process.on('message', (m) => {
  if (m.type === 'stage') {
    try {
      current = makeStage(m.stage, m.options ?? {});
      limitSamples.length = 0;
      process.send({ type: 'stage', ok: true });
    } catch (error) {
      process.send({ type: 'stage', ok: false, error: error.message });
    }
  } else if (m.type === 'stats') {
    const used = process.cpuUsage(cpu);
    const t = now();
    // The histogram samples every 5 ms and its values include that period: taken off.
    process.send({
      type: 'stats',
      loopDelayP99Ms: Math.max(0, loopDelay.percentile(99) / 1e6 - 5),
      loopDelayMaxMs: Math.max(0, loopDelay.max / 1e6 - 5),
      cpuShare: (used.user + used.system) / 1000 / (t - cpuSince),
      rejectionMs,
      answered,
      inFlight,
      pendingBackendCalls: pendingCalls.size,
      limitSamples: limitSamples.splice(0),
    });
    loopDelay.reset();
    cpu = process.cpuUsage();
    cpuSince = t;
    rejectionMs = [];
    answered = 0;
  }
});
process.on('disconnect', () => process.exit(0));

backend.once('connect', () => {
  server.listen({ host: '127.0.0.1', port: 0 }, () => process.send({ type: 'listening', port: server.address().port }));
});
