// Client-address benchmark (issue 11 §5, RELIABILITY S6): what keying one request by its client
// address costs, `clientOf(req)` from `clientAddressResolver({ trustProxy })` (what the rate-limit
// adapters call per request), for an ordinary request and for a client that pads `X-Forwarded-For`
// with 8 KB of addresses inside the trusted proxy ranges, so that a walk with no bound reads every
// entry. The issue measured 0.8–2 ms of CPU per such request before the walk was bounded.
//
//   npm run build && node benchmarks/client-address.mjs [--rounds 7] [--dist path/to/dist] [--json]
//
// --dist: the build to measure (default ../dist); to compare with a commit, export it
// (`git archive <commit> | tar -x -C /tmp/before`), link node_modules, `npx tsup` there, and pass
// `--dist /tmp/before/dist`. Its `bulwark/express` must export clientAddressResolver (it has since
// issue 4).
//
// Scenarios (trustProxy: 10.0.0.0/8 and fd00::/8, the socket 10.0.0.1, a trusted proxy):
//   - one hop: `X-Forwarded-For: <client>` (IPv4, and IPv6 keyed by its /56);
//   - 5 trusted hops: a real proxy chain, the client then 4 proxies;
//   - 8 KB of trusted IPv4 hops, and of trusted IPv6 hops: the client then ~800 (IPv4) or ~600
//     (IPv6) proxy addresses, one header line;
//   - 8 KB, header ignored: the same IPv4 padding with trustProxy false (the default).
// Every scenario cycles through 2,048 pre-built requests whose addresses all differ, so the
// resolver's IPv6 key cache (1,024 entries) cannot answer them from memory.
//
// Method (as hot-path.mjs): every scenario is warmed up, then each round times a batch of
// sequential calls sized to take about 50 ms, rounds interleaved across scenarios (order rotated
// every round); the figure is the median over rounds, and its ratio to "one hop, IPv4". Bounded:
// warm-up stops after 4 passes over the requests or 500 ms, a batch holds 16 to 2,000,000 calls,
// and the run stops after its rounds (about rounds × scenarios × 50 ms, plus warm-up; a few
// seconds more for a build whose 8 KB case takes milliseconds).
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    dist: { type: 'string', default: path.join(import.meta.dirname, '..', 'dist') },
    json: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 50) throw new RangeError(`--rounds must be a whole number from 1 to 50, got ${args.rounds}`);
const { clientAddressResolver } = await import(pathToFileURL(path.join(path.resolve(args.dist), 'express.js')).href);

const TRUSTED = ['10.0.0.0/8', 'fd00::/8'];
const VARIANTS = 2_048;
const BATCH_MS = 50;
const MAX_BATCH = 2_000_000;

const v4 = (n) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
const v6 = (n) => `fd00::${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
const clientV4 = (k) => `198.51.${(k >> 8) & 255}.${k & 255}`;
const clientV6 = (k) => `2001:db8:${k.toString(16)}:${(k * 7) & 0xffff}::7`;

/** Proxy addresses made by `address`, all different, until they fill at least `bytes` of header. */
function padding(address, k, bytes) {
  const entries = [];
  let length = 0;
  for (let i = 0; length < bytes; i++) {
    const entry = address(k * 1_024 + i + 1);
    entries.push(entry);
    length += entry.length + 2;
  }
  return entries;
}

/** 2,048 requests from the trusted socket, header made by `header(k)`. */
function requests(header) {
  return Array.from({ length: VARIANTS }, (_, k) => ({ socket: { remoteAddress: '10.0.0.1' }, headers: { 'x-forwarded-for': header(k) } }));
}

const trusted = clientAddressResolver({ trustProxy: TRUSTED });
const untrusting = clientAddressResolver({ trustProxy: false });
const scenarios = [
  ['one hop, IPv4', trusted, requests((k) => clientV4(k))],
  ['one hop, IPv6', trusted, requests((k) => clientV6(k))],
  ['5 trusted hops', trusted, requests((k) => [clientV4(k), v4(k * 4 + 1), v4(k * 4 + 2), v4(k * 4 + 3), v4(k * 4 + 4)].join(', '))],
  ['8 KB of trusted IPv4 hops', trusted, requests((k) => [clientV4(k), ...padding(v4, k, 8_192)].join(', '))],
  ['8 KB of trusted IPv6 hops', trusted, requests((k) => [clientV6(k), ...padding(v6, k, 8_192)].join(', '))],
  ['8 KB, header ignored (trustProxy false)', untrusting, requests((k) => [clientV4(k), ...padding(v4, k, 8_192)].join(', '))],
];
for (const [name, , list] of scenarios) {
  const bytes = list[0].headers['x-forwarded-for'].length;
  if (name.startsWith('8 KB') && bytes < 8_192) throw new Error(`${name}: the header is ${bytes} bytes, not 8 KB`);
}

let sink = 0;
/** Nanoseconds per call over `n` calls, cycling through `list`. */
function timeBatch(clientOf, list, n) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += clientOf(list[i & (VARIANTS - 1)]).length;
  return Number(process.hrtime.bigint() - start) / n;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

const sizes = new Map();
for (const [name, clientOf, list] of scenarios) {
  // Warm-up: 4 passes over the requests, or 500 ms for a build that takes milliseconds a call.
  const until = performance.now() + 500;
  for (let done = 0; done < VARIANTS * 4 && performance.now() < until; done += 64) timeBatch(clientOf, list, 64);
  const ns = timeBatch(clientOf, list, 256);
  sizes.set(name, Math.max(16, Math.min(MAX_BATCH, Math.round((BATCH_MS * 1e6) / ns))));
}
const samples = new Map(scenarios.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = scenarios.map((_, i) => scenarios[(i + round) % scenarios.length]);
  for (const [name, clientOf, list] of order) samples.get(name).push(timeBatch(clientOf, list, sizes.get(name)));
}

const base = median(samples.get(scenarios[0][0]));
const rows = scenarios.map(([name, , list]) => {
  const ns = median(samples.get(name));
  return { scenario: name, headerBytes: list[0].headers['x-forwarded-for'].length, nsPerCall: Math.round(ns), ratio: Number((ns / base).toFixed(2)) };
});
if (sink === 0) throw new Error('no keys made');

if (args.json) {
  console.log(JSON.stringify({ node: process.version, rounds: ROUNDS, dist: args.dist, rows }));
} else {
  console.log(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${ROUNDS} rounds, medians, ${args.dist}`);
  console.log('| scenario | X-Forwarded-For bytes | per call | ÷ one hop, IPv4 |');
  console.log('|---|---:|---:|---:|');
  const show = (ns) => (ns >= 1_000 ? `${(ns / 1_000).toFixed(2)} µs` : `${ns} ns`);
  for (const r of rows) console.log(`| ${r.scenario} | ${r.headerBytes} | ${show(r.nsPerCall)} | ${r.ratio}× |`);
}
