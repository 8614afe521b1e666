// Rate-limit memory benchmark: the cost of one in-memory decision, `await limiter.consume(key)`,
// for bulwark's three algorithms over `memoryStore()`, against rate-limiter-flexible's
// `RateLimiterMemory` and against a bare `Map` counter behind `async`, for one key and for
// 10,000 keys (cycled through pre-built key strings), in one process and one run.
//
//   npm run bench                      (builds, then runs hot-path.mjs and this file)
//   node --expose-gc --max-semi-space-size=64 benchmarks/ratelimit-memory.mjs [--rounds 15] [--quick] [--json]
//
// --quick: 5 rounds unless --rounds is given, and 20,000 warm-up calls per scenario instead of
// 50,000 (a smoke run, as `npm run bench -- --quick` makes).
// New keys (`new` in the tables; part of `--part decisions`): every call a key the contender has
// never seen, for the bare Map, RateLimiterMemory and bulwark fixedWindow: 50,000 pre-built keys
// cycled, each contender starting afresh (emptied Map, cleared store, new RateLimiterMemory) every
// time the keys come round, so every decision is the first on its key and none evicts (eviction
// under key rotation is the rotation part's). RateLimiterMemory gets a 1 s duration here (its
// points are still far above any key's calls), so that the expiry timer it sets for every new key
// fires and frees the replaced instances' records, instead of holding millions of them: the run
// yields to the event loop after every timed batch (outside the timing) for this.
//
// Target (issue 14): bulwark fixedWindow ≤ 0.5× RateLimiterMemory's time per decision, 1 key,
// 10,000 keys and the first decision on a new key; printed as "Target: ... met / NOT met" lines and, last, as the `bench-targets:`
// line that benchmarks/run.mjs reads.
//
// Method (the same as hot-path.mjs): every scenario is warmed up, then each round times a batch
// of sequential `await scenario()` calls sized to take about 100 ms, rounds interleaved across
// scenarios (order rotated every round) so machine noise hits all of them alike; the figure is the
// median over rounds. No collection is forced inside or between timed rounds. Bytes/op (only with
// --expose-gc) is the heap growth over 2,000 calls after a forced GC (median of 5 tries in which
// no collection ran; n/a when there were none).
//
// No contender ever denies during the run, so every decision timed is an admission (and
// rate-limiter-flexible, which rejects on a denial, never rejects): each has an allowance per key
// (units per hour-long window for the counters; for GCRA, a bucket that holds more calls than the
// run makes), the run counts every call it makes per key (warm-up, calibration, timing, bytes/op)
// and fails if any key could have reached its allowance, and a last consume on every key must
// still be admitted. The header line says how much of its allowance the busiest key used.
//
// Key rotation (`--part rotation`, also in the default `--part all`): what a decision costs when a
// client makes every request under a new key, for a bulwark fixedWindow limiter over
// memoryStore({ maxKeys }) with maxKeys 50,000 and 100,000 (the default), timed like the rest:
//   - hits, not full: the store holds maxKeys keys in room for twice as many, the keys cycled (the
//     ordinary decision on known clients);
//   - new keys, filling: every call a key the store does not hold, the store cleared each time it
//     reaches maxKeys, so it never evicts (the cost before the store filled);
//   - new keys, full: every call a key the store does not hold (2 × maxKeys keys cycled), the store
//     at maxKeys, so every decision evicts one key (the rotation attack).
// The table gives each row's ratio to "hits, not full" and, for the full store, to "filling".
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import os from 'node:os';
import v8 from 'node:v8';
import { fixedWindow, gcra, ManualClock, memoryStore, rateLimiter, slidingWindow } from '../dist/index.js';
import { printTargets } from './support.mjs';

const require = createRequire(import.meta.url);
const { RateLimiterMemory } = require('rate-limiter-flexible');
const rlfVersion = require('rate-limiter-flexible/package.json').version;

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    filter: { type: 'string' },
    part: { type: 'string', default: 'all' },
  },
});
if (!['all', 'decisions', 'rotation'].includes(args.part)) {
  console.error(`--part must be all, decisions or rotation, got ${args.part}`);
  process.exit(1);
}
const ROUNDS = Number(args.rounds ?? (args.quick ? '5' : '15'));
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error(`--rounds must be a whole number of at least 1, got ${args.rounds}`);
  process.exit(1);
}
const BATCH_MS = 100;
const WARMUP_CALLS = args.quick ? 20_000 : 50_000;
const BYTES_CALLS = 2_000;

/** Units per key per window the counters admit: far more calls than any key gets here. */
const LIMIT = 2_000_000_000;
const HOUR_MS = 3_600_000;

/** Keys cycled by the new-key scenarios: the contender starts afresh each time they come round. */
const NEW_KEYS = 50_000;
const KEY_COUNTS = args.part === 'rotation' ? [] : [1, 10_000, NEW_KEYS];
/** Contenders run on new keys (they say how to start afresh). */
const keyLabel = (n) => (n === 1 ? '1 key' : n === NEW_KEYS ? 'new key each call' : `${n.toLocaleString('en')} keys`);
const ROTATION_CAPACITIES = args.part === 'decisions' ? [] : [50_000, 100_000];
const keySets = new Map(
  KEY_COUNTS.map((n) => [n, Array.from({ length: n }, (_, i) => `${n === NEW_KEYS ? 'new' : 'client'}-${String(i).padStart(5, '0')}`)]),
);

/** The contenders run on new keys (their builds return `renew`, which starts them afresh). */
const onNewKeys = new Set(['bare Map counter (async)', `rate-limiter-flexible ${rlfVersion} RateLimiterMemory`, 'bulwark fixedWindow']);

/** One contender, built afresh for each key count (its own store), by a function of that count. */
const contenders = [
  [
    'bare Map counter (async)',
    () => {
      const map = new Map();
      const limit = LIMIT;
      async function consume(key) {
        const n = (map.get(key) ?? 0) + 1;
        map.set(key, n);
        return n <= limit;
      }
      return { consume, admitted: (r) => r === true, allowance: limit, renew: () => map.clear() };
    },
  ],
  [
    // Not a contender: the floor for any limiter that reads the clock once per decision, as every
    // one of them here does (Date.now() is slow on some VMs; its share shows in this row).
    'reference: bare Map counter + Date.now() (async)',
    () => {
      const map = new Map();
      const limit = LIMIT;
      async function consume(key) {
        const n = (map.get(key) ?? 0) + 1;
        map.set(key, n);
        return n <= limit && Date.now() > 0;
      }
      return { consume, admitted: (r) => r === true, allowance: limit };
    },
  ],
  [
    `rate-limiter-flexible ${rlfVersion} RateLimiterMemory`,
    (keyCount) => {
      const options = { points: LIMIT, duration: keyCount === NEW_KEYS ? 1 : HOUR_MS / 1000 };
      let rl = new RateLimiterMemory(options);
      // Rejects on a denial, which would end the run: the limits make sure none happens.
      return {
        consume: (key) => rl.consume(key),
        admitted: (r) => r.remainingPoints >= 0,
        allowance: LIMIT,
        renew: () => {
          rl = new RateLimiterMemory(options);
        },
      };
    },
  ],
  [
    'bulwark gcra',
    (keyCount) => {
      // Every admission adds one emission interval T of backlog, and a key's state lives until its
      // backlog has drained: T is chosen well above the time between two calls on a key (one call,
      // or one pass over the 10k keys plus the pause while other scenarios run), so the state stays
      // live between calls, as the others' hour-long windows do, instead of expiring and being
      // stored anew each time. The bucket, burst × T (2e12 or 4e12 µs), is within the 2^42 µs allowed.
      const [options, burst] =
        keyCount === 1
          ? [{ limit: 1_000, periodMs: 1_000 }, 2_000_000_000] // T = 1 ms
          : [{ limit: 6, periodMs: 60_000 }, 400_000]; // T = 10 s
      const limiter = rateLimiter({ algorithm: gcra({ ...options, burst }), store: memoryStore() });
      // Calls ≤ burst keeps the backlog within the bucket: no denial.
      return { consume: (key) => limiter.consume(key), admitted: (d) => d.allowed === true, allowance: burst };
    },
  ],
  [
    'bulwark fixedWindow',
    () => {
      const store = memoryStore();
      const limiter = rateLimiter({ algorithm: fixedWindow({ limit: LIMIT, windowMs: HOUR_MS }), store });
      return { consume: (key) => limiter.consume(key), admitted: (d) => d.allowed === true, allowance: LIMIT, renew: () => store.clear() };
    },
  ],
  [
    // Not a contender: bulwark's fixedWindow with the clock read taken out (a ManualClock, whose
    // now() reads a field): what the decision costs beyond the clock, for the ≤ 1.2× target.
    'reference: bulwark fixedWindow, no clock read (ManualClock)',
    () => {
      const store = memoryStore({ clock: new ManualClock(Date.now()) });
      const limiter = rateLimiter({ algorithm: fixedWindow({ limit: LIMIT, windowMs: HOUR_MS }), store });
      return { consume: (key) => limiter.consume(key), admitted: (d) => d.allowed === true, allowance: LIMIT };
    },
  ],
  [
    'bulwark slidingWindow',
    () => {
      // limit × windowMs must stay within 2^52: 1e9 × 3.6e6 = 3.6e15.
      const limit = LIMIT / 2;
      const limiter = rateLimiter({ algorithm: slidingWindow({ limit, windowMs: HOUR_MS }), store: memoryStore() });
      return { consume: (key) => limiter.consume(key), admitted: (d) => d.allowed === true, allowance: limit };
    },
  ],
];

/** A scenario: one contender on one key set, as a thunk cycling through the keys. */
function scenario(contender, build, keyCount) {
  const keys = keySets.get(keyCount);
  const { consume, admitted, allowance, renew } = build(keyCount);
  let fn;
  if (keyCount === NEW_KEYS) {
    let i = 0;
    fn = () => {
      if (i === keyCount) {
        renew();
        i = 0;
      }
      return consume(keys[i++]);
    };
  } else if (keyCount === 1) {
    const key = keys[0];
    fn = () => consume(key);
  } else {
    let i = 0;
    fn = () => {
      const key = keys[i];
      i = i + 1 === keyCount ? 0 : i + 1;
      return consume(key);
    };
  }
  const name = `${contender} — ${keyLabel(keyCount)}`;
  // New keys: each key gets one call per pass, from a fresh start (as the allowance check counts).
  return { name, contender, keyCount, keys, fn, consume, admitted, allowance, calls: 0, renews: keyCount === NEW_KEYS };
}

/**
 * A key-rotation scenario (see the header): `kind` is 'hits', 'filling' or 'full', on a store of
 * `capacity` keys. `prefill` brings the store to its starting point before the warm-up.
 */
function rotationScenario(kind, capacity) {
  const maxKeys = kind === 'hits' ? capacity * 2 : capacity;
  const store = memoryStore({ maxKeys });
  const limiter = rateLimiter({ name: 'rotation', algorithm: fixedWindow({ limit: LIMIT, windowMs: HOUR_MS }), store });
  const keyCount = kind === 'hits' ? capacity : capacity * 2;
  const keys = Array.from({ length: keyCount }, (_, i) => `${kind}-${String(i).padStart(6, '0')}`);
  const consume = (key) => limiter.consume(key);
  let i = 0;
  const fn =
    kind === 'filling'
      ? () => {
          if (store.size >= capacity - 1) store.clear();
          const key = keys[i];
          i = i + 1 === keyCount ? 0 : i + 1;
          return consume(key);
        }
      : () => {
          const key = keys[i];
          i = i + 1 === keyCount ? 0 : i + 1;
          return consume(key);
        };
  const prefill = async () => {
    if (kind === 'filling') return;
    // 'hits': every key held; 'full': the store at capacity, the next key one it no longer holds.
    for (let k = 0; k < (kind === 'hits' ? capacity : capacity * 1.5); k++) await fn();
  };
  const label = { hits: 'hits, not full', filling: 'new keys, filling (no eviction)', full: 'new keys, full (every decision evicts)' }[kind];
  return {
    name: `rotation: ${label} — maxKeys ${capacity.toLocaleString('en')}`,
    contender: label,
    rotation: { kind, capacity, store },
    keyCount,
    keys,
    fn,
    prefill,
    consume,
    admitted: (d) => d.allowed === true,
    allowance: LIMIT,
    calls: 0,
  };
}

const scenarios = [];
for (const keyCount of KEY_COUNTS) {
  for (const [name, build] of contenders) {
    if (keyCount === NEW_KEYS && !onNewKeys.has(name)) continue;
    if (args.filter && !name.startsWith('bare') && !name.includes(args.filter)) continue;
    scenarios.push(scenario(name, build, keyCount));
  }
}
for (const capacity of ROTATION_CAPACITIES) {
  for (const kind of ['hits', 'filling', 'full']) scenarios.push(rotationScenario(kind, capacity));
}

async function timeBatch(fn, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

async function calibrate(s) {
  let n = 1_000;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await s.fn();
    s.calls += n;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= 20) return Math.max(1_000, Math.round((n * BATCH_MS) / ms));
    n *= 4;
  }
}

async function bytesPerOp(s) {
  if (typeof globalThis.gc !== 'function') return undefined;
  // A collection inside the window would hide what was allocated before it, and the young
  // generation only grows to its 64 MB as a run goes on: tries during which any collection ran
  // are discarded (up to 20 tries for 5 clean ones).
  const tries = [];
  for (let t = 0; t < 20 && tries.length < 5; t++) {
    globalThis.gc();
    const profiler = new v8.GCProfiler();
    profiler.start();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < BYTES_CALLS; i++) await s.fn();
    const after = process.memoryUsage().heapUsed;
    const { statistics } = profiler.stop();
    s.calls += BYTES_CALLS;
    if (statistics.length === 0) tries.push((after - before) / BYTES_CALLS);
  }
  return tries.length === 0 ? undefined : median(tries);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Warm up every scenario (every 10k-key store holds all its keys afterwards), then size batches.
const sizes = new Map();
for (const s of scenarios) {
  if (s.prefill) await s.prefill();
  for (let i = 0; i < WARMUP_CALLS; i++) await s.fn();
  s.calls += WARMUP_CALLS;
}
for (const s of scenarios) sizes.set(s, await calibrate(s));

const samples = new Map(scenarios.map((s) => [s, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < scenarios.length; k++) {
    const s = scenarios[(k + r) % scenarios.length];
    const n = sizes.get(s);
    samples.get(s).push(await timeBatch(s.fn, n));
    s.calls += n;
    // Outside the timing: lets due timers run (RateLimiterMemory's expiry timers; see the header).
    if (s.renews) await new Promise((resolve) => setImmediate(resolve));
  }
}

const rows = [];
for (const s of scenarios) {
  rows.push({
    name: s.name,
    contender: s.contender,
    keys: s.keyCount,
    rotation: s.rotation && { kind: s.rotation.kind, capacity: s.rotation.capacity },
    ns: median(samples.get(s)),
    bytes: await bytesPerOp(s),
  });
}

// No denial happened: no key was offered as many calls as its contender's allowance (units per
// window for the counters; for GCRA, calls ≤ burst keeps the backlog ≤ the bucket), and one more
// consume on every key is still admitted.
let mostPerKey = 0;
for (const s of scenarios) {
  const perKey = Math.ceil(s.calls / s.keyCount) + 1;
  mostPerKey = Math.max(mostPerKey, perKey / s.allowance);
  if (perKey >= s.allowance) throw new Error(`${s.name}: ${perKey} calls per key could reach its limit`);
  for (const key of s.keys) {
    if (!s.admitted(await s.consume(key))) throw new Error(`${s.name}: a decision was a denial`);
  }
  if (s.rotation && s.rotation.store.size > s.rotation.store.maxKeys) throw new Error(`${s.name}: store over maxKeys`);
}

for (const row of rows) {
  if (row.rotation) {
    const same = (kind) => rows.find((r) => r.rotation?.capacity === row.rotation.capacity && r.rotation.kind === kind);
    row.ratio = row.ns / same('hits').ns;
    if (row.rotation.kind === 'full') row.ratioToFilling = row.ns / same('filling').ns;
    continue;
  }
  const base = rows.find((r) => r.keys === row.keys && r.contender.startsWith('bare'));
  row.ratio = base ? row.ns / base.ns : undefined;
}

// The issue's target, per key count (not measured when --part or --filter left a row out).
const targets = [1, 10_000, NEW_KEYS].map((keys) => {
  const ours = rows.find((r) => !r.rotation && r.keys === keys && r.contender === 'bulwark fixedWindow');
  const peer = rows.find((r) => !r.rotation && r.keys === keys && r.contender.endsWith('RateLimiterMemory'));
  const name = `bulwark fixedWindow ÷ RateLimiterMemory, time per decision, ${keyLabel(keys)}`;
  if (!ours || !peer) return { name, met: null, value: 'not measured (left out)', target: '≤ 0.5×' };
  const ratio = ours.ns / peer.ns;
  return { name, met: ratio <= 0.5, value: `${ratio.toFixed(2)}×`, target: '≤ 0.5×' };
});

if (args.json) {
  console.log(JSON.stringify({ node: process.version, rounds: ROUNDS, rows, targets }, null, 2));
  process.exit(0);
}

const fmt = (x) => (Math.abs(x) >= 1000 ? `${(x / 1000).toFixed(2)} µs` : `${x.toFixed(1)} ns`);
console.log(
  `Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${ROUNDS} rounds, medians; ` +
    `no denials (the busiest key used ${(mostPerKey * 100).toFixed(2)}% of its allowance)`,
);
console.log('');
const showBytes = (r) => (r.bytes === undefined ? 'n/a' : Math.max(0, r.bytes).toFixed(0));
const decisionRows = rows.filter((r) => !r.rotation);
if (decisionRows.length > 0) {
  console.log('| contender | keys | ns/op | ÷ bare Map | bytes/op |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of decisionRows) {
    const ratio = r.ratio === undefined ? 'n/a' : `${r.ratio.toFixed(2)}×`;
    console.log(`| ${r.contender} | ${keyLabel(r.keys)} | ${fmt(r.ns)} | ${ratio} | ${showBytes(r)} |`);
  }
}
const rotationRows = rows.filter((r) => r.rotation);
if (rotationRows.length > 0) {
  if (decisionRows.length > 0) console.log('');
  console.log('Key rotation, bulwark fixedWindow over memoryStore({ maxKeys }):');
  console.log('');
  console.log('| maxKeys | case | ns/op | ÷ hits, not full | ÷ filling | bytes/op |');
  console.log('|---:|---|---:|---:|---:|---:|');
  for (const r of rotationRows) {
    const toFilling = r.ratioToFilling === undefined ? '' : `${r.ratioToFilling.toFixed(2)}×`;
    console.log(
      `| ${r.rotation.capacity.toLocaleString('en')} | ${r.contender} | ${fmt(r.ns)} | ${r.ratio.toFixed(2)}× | ${toFilling} | ${showBytes(r)} |`,
    );
  }
}
console.log('');
for (const t of targets) {
  console.log(`Target: ${t.name} ${t.target}: ${t.value}${t.met === null ? '' : ` — ${t.met ? 'met' : 'NOT met'}`}.`);
}
printTargets(targets);
