// bulwark/fetch's own CPU per call, without the network (issue 14 §4): the same clients as
// fetch-overhead.mjs, but the `fetch` they call is a stub that answers at once with a canned
// 200. What is left is the plumbing and the policies: the part this package can change. The
// network benchmark's differences of a few µs drown in undici's ~250 µs on a shared machine.
//
//   npm run build && node benchmarks/fetch-plumbing.mjs [--calls 200000] [--runs 3] [--filter REGEX] [--undici]
//
// Each (variant, concurrency) runs in a fresh process: --calls warm-up calls, then --calls
// counted; ns per call is process CPU (user + system) ÷ calls. Medians of --runs processes,
// interleaved. `stub+signal` passes a fresh AbortController's signal to the stub: what making one
// costs (Node 20: ~3 µs). `Request` and `Request+signal` build undici's Request (what fetch
// builds first) without and with such a signal: what undici charges to follow a signal, paid by
// any fetch that is given one; `Request+timeout` the same with AbortSignal.timeout(10 s).
//
// `--undici` swaps the stub for global `fetch` itself over a stub undici dispatcher (init's
// `dispatcher`) that answers every request on the next tick with a canned 200 and a 2-byte body,
// read by the client: all of undici's fetch (Request, Response, body stream, following a signal)
// without a socket, so a few µs stand out of the noise that a real server adds. Rows there:
// `stub` = fetch, `stub+signal` / `stub+timeout` = fetch given a fresh AbortController's signal /
// AbortSignal.timeout(10 s), `stub+dispatcher` = fetch with no signal made abortable through a
// dispatcher that wraps the stub one and keeps each request's abort function (a way to abort an
// attempt without a signal; not what bulwark does), and bulwark's rows use the global fetch.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { abortableDispatcher, stubDispatcher } from './fetch-dispatchers.mjs';
import { cockatielFetchPolicy } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '3' },
    filter: { type: 'string' },
    child: { type: 'boolean', default: false },
    variant: { type: 'string' },
    concurrency: { type: 'string' },
    undici: { type: 'boolean', default: false },
  },
});
const all = args.undici
  ? ['stub', 'stub+signal', 'stub+timeout', 'stub+dispatcher', 'none', 'retry+breaker', 'defaults', 'timeoutMs', 'cockatiel']
  : ['stub', 'stub+signal', 'Request', 'Request+signal', 'Request+timeout', 'none', 'retry+breaker', 'defaults', 'timeoutMs', 'cockatiel'];
const variants = all.filter(
  (v) => v === 'stub' || args.filter === undefined || new RegExp(args.filter).test(v),
);
const concurrencies = [1, 16];
const url = 'http://127.0.0.1:8080/items?id=7';

/** The clients of --undici mode: global fetch over the stub dispatcher; each reads the body. */
async function undiciClient(variant) {
  const dispatcher = stubDispatcher();
  const init = { dispatcher };
  const read = (promise) => promise.then((res) => res.arrayBuffer());
  switch (variant) {
    case 'stub':
      return () => read(fetch(url, init));
    case 'stub+signal':
      return () => read(fetch(url, { dispatcher, signal: new AbortController().signal }));
    case 'stub+timeout':
      return () => read(fetch(url, { dispatcher, signal: AbortSignal.timeout(10_000) }));
    case 'stub+dispatcher':
      return () => read(fetch(url, { dispatcher: abortableDispatcher(dispatcher) }));
    case 'cockatiel': {
      const policy = await cockatielFetchPolicy();
      return () => policy.execute(({ signal }) => read(fetch(url, { dispatcher, signal })));
    }
    default: {
      const f = createFetch(options(variant));
      return () => read(f(url, init));
    }
  }
}

const { createFetch } = await import('../dist/fetch.js');

function options(variant) {
  const o = {
    none: { retry: false, circuitBreaker: false, attemptTimeoutMs: false },
    'retry+breaker': { attemptTimeoutMs: false },
    defaults: {},
    timeoutMs: { timeoutMs: 30_000 },
  }[variant];
  if (o === undefined) throw new Error(`unknown variant ${variant}`);
  return o;
}

async function client(variant) {
  if (args.undici) return undiciClient(variant);
  const response = { status: 200, ok: true, headers: new Headers(), redirected: false, url, body: null, bodyUsed: false };
  const stub = () => Promise.resolve(response);
  switch (variant) {
    case 'stub':
      return () => stub(url);
    case 'stub+signal':
      return () => stub(url, { signal: new AbortController().signal });
    case 'Request':
      return () => stub(new Request(url));
    case 'Request+signal':
      return () => stub(new Request(url, { signal: new AbortController().signal }));
    case 'Request+timeout':
      return () => stub(new Request(url, { signal: AbortSignal.timeout(10_000) }));
    case 'cockatiel': {
      const policy = await cockatielFetchPolicy();
      return () => policy.execute(({ signal }) => stub(url, { signal }));
    }
    default: {
      const f = createFetch({ ...options(variant), fetch: stub });
      return () => f(url);
    }
  }
}

async function runChild() {
  const call = await client(args.variant);
  const concurrency = Number(args.concurrency);
  const n = Number(args.calls);
  const drive = async () => {
    let left = n;
    const lane = async () => {
      while (left-- > 0) await call();
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  };
  await drive();
  const cpu0 = process.cpuUsage();
  await drive();
  const cpu = process.cpuUsage(cpu0);
  process.send({ ns: ((cpu.user + cpu.system) * 1000) / n });
  process.disconnect();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const results = new Map();
  for (let run = 0; run < Number(args.runs); run++) {
    for (const concurrency of concurrencies) {
      for (const variant of variants) {
        const proc = fork(fileURLToPath(import.meta.url), ['--child', '--variant', variant, '--concurrency', String(concurrency), '--calls', args.calls, ...(args.undici ? ['--undici'] : [])]);
        const r = await new Promise((resolve, reject) => {
          proc.once('message', resolve);
          proc.once('exit', (code) => reject(new Error(`${variant}: child exited with ${code}`)));
        });
        const key = `${variant}@${concurrency}`;
        if (!results.has(key)) results.set(key, []);
        results.get(key).push(r.ns);
      }
    }
  }
  console.log(`fetch plumbing (${args.undici ? 'global fetch over a stub dispatcher' : 'stub fetch'}): node ${process.version}, ${args.calls} calls, median of ${args.runs} fresh processes\n`);
  console.log('| variant | conc | CPU ns/call (min–max) | over stub |');
  console.log('|---|---:|---:|---:|');
  for (const concurrency of concurrencies) {
    const base = median(results.get(`stub@${concurrency}`));
    for (const variant of variants) {
      const xs = results.get(`${variant}@${concurrency}`);
      const m = median(xs);
      console.log(
        `| ${variant} | ${concurrency} | ${Math.round(m)} (${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}) | ${variant === 'stub' ? '—' : `${m >= base ? '+' : '−'}${(Math.abs(m - base) / 1000).toFixed(1)} µs`} |`,
      );
    }
  }
}

if (args.child) await runChild();
else await main();
