// Sockets a client leaves open on a real server after timeouts, aborts and retried failed
// answers (issue 12 §1): bulwark/fetch against a plain `fetch` with a hand-written timeout and
// retry loop that neither aborts nor cancels (what the sockets look like when nobody frees them).
//
//   npm run build && node benchmarks/fetch-sockets.mjs [--calls 10] [--attempts 5] [--wait-ms 500]
//
// - Each scenario gets a fresh node:http server on 127.0.0.1 that counts its sockets:
//   `connection` in, socket `close` out. `carrying` = those that carried a request; `busy` = those
//   whose response is not fully handed to the kernel (an unread body larger than the socket
//   buffers, or a request the handler never answers).
// - `--calls` calls at once, `--attempts` attempts each; the counts are read `--wait-ms` after
//   every call settled (a fixed wait, not a poll).
// - Scenarios: `timeouts` (a server that never answers, 40 ms per attempt), `abort mid-body` (the
//   caller aborts after the first chunk of an endless body), `retried 503s` (every answer a 503
//   with a 4 MB body; the last answer is cancelled by the caller).
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createFetch } from '../dist/fetch.js';
import { constant } from '../dist/index.js';

const { values } = parseArgs({
  options: { calls: { type: 'string', default: '10' }, attempts: { type: 'string', default: '5' }, 'wait-ms': { type: 'string', default: '500' } },
});
const calls = Number(values.calls);
const attempts = Number(values.attempts);
const waitMs = Number(values['wait-ms']);
const bigBody = Buffer.alloc(4 * 1024 * 1024, 'x');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function counting(handler) {
  const server = createServer(handler);
  const sockets = new Set();
  const carried = new WeakSet();
  const busy = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      busy.delete(socket);
    });
  });
  server.on('request', (req, res) => {
    carried.add(req.socket);
    if (req.socket.destroyed) return;
    busy.add(req.socket);
    res.once('finish', () => busy.delete(req.socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts: () => ({ open: sockets.size, carrying: [...sockets].filter((s) => carried.has(s)).length, busy: busy.size }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

/** A plain fetch bounded by a race, as often hand-written: the request is never aborted. */
async function naiveTimeout(url, ms) {
  let t;
  const timer = new Promise((_, reject) => (t = setTimeout(() => reject(new Error('timeout')), ms)));
  try {
    return await Promise.race([fetch(url), timer]);
  } finally {
    clearTimeout(t);
  }
}

/** A plain retry loop that drops failed answers without cancelling their bodies. */
async function naiveRetry(send) {
  let last;
  for (let i = 0; i < attempts; i++) {
    try {
      last = await send();
      if (last.status < 500) return last;
    } catch (error) {
      if (i === attempts - 1) throw error;
    }
  }
  return last;
}

const scenarios = {
  timeouts: {
    handler: () => {},
    bulwark: (url) => createFetch({ attemptTimeoutMs: 40, circuitBreaker: false, retry: { maxAttempts: attempts, backoff: constant(1) } })(url).catch(() => {}),
    plain: (url) => naiveRetry(() => naiveTimeout(url, 40)).catch(() => {}),
  },
  'abort mid-body': {
    handler: (_req, res) => {
      res.writeHead(200);
      res.write('x'.repeat(16 * 1024));
    },
    bulwark: (url) => readThenAbort((signal) => createFetch({ attemptTimeoutMs: 1_000 })(url, { signal })),
    plain: (url) => readThenAbort((signal) => fetch(url, { signal })),
  },
  'retried 503s': {
    handler: (_req, res) => res.writeHead(503).end(bigBody),
    bulwark: async (url) => (await createFetch({ circuitBreaker: false, retry: { maxAttempts: attempts, backoff: constant(1) } })(url)).body?.cancel(),
    plain: async (url) => (await naiveRetry(() => fetch(url))).body?.cancel(),
  },
};

async function readThenAbort(send) {
  const controller = new AbortController();
  const res = await send(controller.signal);
  const reader = res.body.getReader();
  await reader.read();
  controller.abort(new Error('enough'));
  await reader.read().catch(() => {});
}

console.log(`${calls} calls at once, ${attempts} attempts each where retried; counts ${waitMs} ms after the calls settled`);
console.log('| scenario | client | open | carried a request | busy |');
console.log('|---|---|---:|---:|---:|');
for (const [name, s] of Object.entries(scenarios)) {
  for (const client of ['bulwark', 'plain']) {
    const srv = await counting(s.handler);
    await Promise.all(Array.from({ length: calls }, () => s[client](`${srv.url}/`)));
    await sleep(waitMs);
    const c = srv.counts();
    console.log(`| ${name} | ${client === 'bulwark' ? 'bulwark/fetch' : 'plain fetch, hand-written loop'} | ${c.open} | ${c.carrying} | ${c.busy} |`);
    await srv.close();
  }
}
process.exit(0);
