// bulwark/fetch's own CPU per call, without the network (issue 14 §4): the same clients as
// fetch-overhead.mjs, but the `fetch` they call is a stub that answers at once with a canned
// 200. What is left is the plumbing and the policies: the part this package can change. The
// network benchmark's differences of a few µs drown in undici's ~250 µs on a shared machine.
//
//   npm run build && node benchmarks/fetch-plumbing.mjs [--calls 200000] [--runs 3] [--filter REGEX]
//
// Each (variant, concurrency) runs in a fresh process: --calls warm-up calls, then --calls
// counted; ns per call is process CPU (user + system) ÷ calls. Medians of --runs processes,
// interleaved. `stub+signal` passes a fresh AbortController's signal to the stub: what making one
// costs (Node 20: ~3 µs). `Request` and `Request+signal` build undici's Request (what fetch
// builds first) without and with such a signal: what undici charges to follow a signal, paid by
// any fetch that is given one.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cockatielFetchPolicy } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '3' },
    filter: { type: 'string' },
    child: { type: 'boolean', default: false },
    variant: { type: 'string' },
    concurrency: { type: 'string' },
  },
});
const variants = ['stub', 'stub+signal', 'Request', 'Request+signal', 'none', 'retry+breaker', 'defaults', 'timeoutMs', 'cockatiel'].filter(
  (v) => v === 'stub' || args.filter === undefined || new RegExp(args.filter).test(v),
);
const concurrencies = [1, 16];
const url = 'http://127.0.0.1:8080/items?id=7';

async function client(variant) {
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
    case 'cockatiel': {
      const policy = await cockatielFetchPolicy();
      return () => policy.execute(({ signal }) => stub(url, { signal }));
    }
    default: {
      const { createFetch } = await import('../dist/fetch.js');
      const options = {
        none: { retry: false, circuitBreaker: false, attemptTimeoutMs: false },
        'retry+breaker': { attemptTimeoutMs: false },
        defaults: {},
        timeoutMs: { timeoutMs: 30_000 },
      }[variant];
      if (options === undefined) throw new Error(`unknown variant ${variant}`);
      const f = createFetch({ ...options, fetch: stub });
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
        const proc = fork(fileURLToPath(import.meta.url), ['--child', '--variant', variant, '--concurrency', String(concurrency), '--calls', args.calls]);
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
  console.log(`fetch plumbing (stub fetch): node ${process.version}, ${args.calls} calls, median of ${args.runs} fresh processes\n`);
  console.log('| variant | conc | CPU ns/call (min–max) | over stub |');
  console.log('|---|---:|---:|---:|');
  for (const concurrency of concurrencies) {
    const base = median(results.get(`stub@${concurrency}`));
    for (const variant of variants) {
      const xs = results.get(`${variant}@${concurrency}`);
      const m = median(xs);
      console.log(
        `| ${variant} | ${concurrency} | ${Math.round(m)} (${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}) | ${variant === 'stub' ? '—' : `+${((m - base) / 1000).toFixed(1)} µs`} |`,
      );
    }
  }
}

if (args.child) await runChild();
else await main();
