// Issue 16 §5's figures for compoundLimit, full length, on a real redis-server this script starts
// (no persistence, temp dir, free loopback port; killed by pid at the end, on an error and on Ctrl-C):
//
//   npm run build && flock /tmp/bench.lock node benchmarks/compound.mjs [--seconds 60] [--repeats 5] [--json]
//
// 1. All or nothing: --procs processes (forked from this file, the built package) each run
//    --callers callers charging compoundLimit([per-user fixedWindow 10/s, per-tenant fixedWindow
//    1,000/min]) over --users users spread over --tenants tenants (tag: the tenant), back to
//    back, for --seconds; and, at the same time in the same processes, --callers callers doing
//    the same with two separate limiters, per-user `consume` then per-tenant `consume` (the
//    baseline). Every compound decision carries each part's count (limit − remaining) and its
//    window (from resetMs, bracketed by the call's start and end). Per part, key and window, the
//    counts the admitted calls got must be exactly 1, 2, …, k (a unit charged for a call that
//    was not admitted leaves a gap or a count above k; two admissions of one unit, a repeat),
//    k must not pass the limit, and the counts the denied calls' peeks saw must not pass k. At
//    the end, every counter still stored in Redis (SCAN, read raw) must equal the k of its window.
//    Baseline: the units charged to the per-user limiter for calls the per-tenant one then denied.
// 2. Run-time limits: during the run process 0 calls setLimit(tenant t0, 'per-tenant', …) every
//    4 s from t = 6 s, lowering it to 300 and raising it back to 1,000 in turn; every other
//    process records the limit each of its t0 decisions reports. Per change and process: the
//    time from the setLimit call until its first decision reporting the new limit (bound 1 s),
//    and the decisions sent after setLimit resolved (sub-ms clock) that still reported the old
//    one (must be 0).
// 3. Throughput, for context: one process, --callers callers, fresh keys under limits too high to
//    deny: `compound.consume` against `await perUser.consume(); await perTenant.consume()`, 2 s
//    each, alternately, --repeats times; medians.
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { compoundLimit, fixedWindow, rateLimiter } from '../dist/index.js';
import { redisStore } from '../dist/redis.js';
import { messageFrom, printTargets, requireCounts, startRedisServer } from './support.mjs';

const { values: args } = parseArgs({
  options: {
    worker: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '60' },
    procs: { type: 'string', default: '4' },
    callers: { type: 'string', default: '32' },
    users: { type: 'string', default: '64' },
    tenants: { type: 'string', default: '8' },
    repeats: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
requireCounts(args, ['seconds', 'procs', 'callers', 'users', 'tenants', 'repeats']);
const SECONDS = Number(args.seconds);
const PROCS = Number(args.procs);
const CALLERS = Number(args.callers);
const USERS = Number(args.users);
const TENANTS = Number(args.tenants);
const REPEATS = Number(args.repeats);
// The two parts, in the order the compound limit is given them.
const PARTS = [
  { name: 'per-user', limit: 10, windowMs: 1_000 },
  { name: 'per-tenant', limit: 1_000, windowMs: 60_000 },
];
const LOWERED = 300; // the per-tenant limit of t0 while lowered
const FIRST_CHANGE_MS = 6_000;
const CHANGE_EVERY_MS = 4_000;
const LAG_BOUND_MS = 1_000;

const round = (ms) => Math.round(ms * 10) / 10;
const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const tenantOf = (user) => `t${user % TENANTS}`;
// Wall-clock time with sub-millisecond resolution, comparable across the processes (Date.now()
// ticks in whole ms: many callers resuming in one tick share it, so order within a ms is lost).
const now = () => performance.timeOrigin + performance.now();

function connect(port) {
  const client = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  return new Promise((resolve) => client.once('ready', () => resolve(client)));
}

/** The limiters of one process: the compound limit and the baseline's two. */
function limiters(store, limits = PARTS) {
  const make = (prefix) => limits.map((p) => rateLimiter({ name: `${prefix}${p.name}`, algorithm: fixedWindow({ limit: p.limit, windowMs: p.windowMs }), store }));
  const [user, tenant] = make('');
  const [bUser, bTenant] = make('b-');
  return { both: compoundLimit([user, tenant], { name: 'bench' }), bUser, bTenant };
}

if (args.worker) await worker();
else await main();

/** One process of figures 1 and 2; reports its books to the parent. */
async function worker() {
  const config = await new Promise((resolve) => process.once('message', resolve));
  const client = await connect(config.port);
  const store = redisStore(client, { timeoutMs: 5_000 });
  const { both, bUser, bTenant } = limiters(store);
  process.send({ type: 'ready' });
  const { startAt, endAt } = await new Promise((resolve) => process.once('message', resolve));
  await sleep(startAt - Date.now());

  // Per part, key and window end: the counts admitted calls got, and the highest count a peek saw.
  const books = PARTS.map(() => new Map());
  const watched = []; // t0's decisions: [sent, answered, per-tenant limit in force]
  const c = { calls: 0, admitted: 0, 'per-user': 0, 'per-tenant': 0, notRedis: 0, unplaced: 0 };
  const b = { calls: 0, admitted: 0, deniedFirst: 0, chargedThenDenied: 0 };
  const pick = () => Math.floor(Math.random() * USERS);

  const compoundCaller = async () => {
    while (Date.now() < endAt) {
      const user = pick();
      const tenant = tenantOf(user);
      const sent = now();
      // The window a decision fell in is placed on the wall clock, the one Redis decides on (TIME)
      // and the stored counters are read with: a step of the wall clock against the monotonic
      // one (NTP, a VM resumed) would otherwise put decisions near a 1 s boundary in the wrong
      // window, which the checks below report as gaps, repeats and counters unequal.
      const sentWall = Date.now();
      const d = await both.consume([`u${user}`, tenant], { tag: tenant });
      const answered = now();
      c.calls++;
      if (d.store !== 'redis') c.notRedis++;
      if (d.allowed) c.admitted++;
      else c[d.deniedBy]++;
      if (tenant === 't0') watched.push([sent, answered, d.parts[1].decision.limit]);
      d.parts.forEach(({ decision }, i) => {
        const W = PARTS[i].windowMs;
        // The server decided between `sent` and `answered`; its window ends at a multiple of W.
        if (decision.resetMs <= 0 || answered - sent >= W) {
          c.unplaced++;
          return;
        }
        const end = Math.ceil((sentWall + decision.resetMs) / W) * W;
        const id = `${i === 0 ? `u${user}` : tenant} ${end}`;
        let book = books[i].get(id);
        if (book === undefined) books[i].set(id, (book = { counts: [], peeked: 0 }));
        if (d.allowed) book.counts.push(decision.limit - decision.remaining);
        else if (decision.allowed) book.peeked = Math.max(book.peeked, decision.limit - decision.remaining - 1);
      });
    }
  };
  const baselineCaller = async () => {
    while (Date.now() < endAt) {
      const user = pick();
      b.calls++;
      if (!(await bUser.consume(`u${user}`)).allowed) {
        b.deniedFirst++;
        continue;
      }
      if ((await bTenant.consume(tenantOf(user))).allowed) b.admitted++;
      else b.chargedThenDenied++;
    }
  };
  const changes = [];
  const changer = async () => {
    for (let k = 0; startAt + FIRST_CHANGE_MS + k * CHANGE_EVERY_MS < endAt - 2_000; k++) {
      await sleep(startAt + FIRST_CHANGE_MS + k * CHANGE_EVERY_MS - Date.now());
      const limit = k % 2 === 0 ? LOWERED : PARTS[1].limit;
      const calledAt = now();
      await both.setLimit('t0', 'per-tenant', fixedWindow({ limit, windowMs: PARTS[1].windowMs }));
      changes.push({ calledAt, doneAt: now(), limit });
    }
  };
  await Promise.all([
    ...Array.from({ length: CALLERS }, compoundCaller),
    ...Array.from({ length: CALLERS }, baselineCaller),
    ...(config.id === 0 ? [changer()] : []),
  ]);
  const out = books.map((m) => [...m].map(([id, book]) => [id, book.counts, book.peeked]));
  await client.quit();
  // Exit once the message is written (an exit right after send can lose it).
  process.send({ type: 'result', compound: c, baseline: b, books: out, watched, changes }, () => process.exit(0));
}

/** Figures 1 and 2: the fleet, then every counter still in Redis read raw. */
async function fleet(port) {
  const self = fileURLToPath(import.meta.url);
  const passOn = ['--seconds', '--procs', '--callers', '--users', '--tenants'].flatMap((a) => [a, String(args[a.slice(2)])]);
  const children = Array.from({ length: PROCS }, () => fork(self, ['--worker', ...passOn], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const ready = children.map((child) => messageFrom(child, 'ready'));
  children.forEach((child, id) => child.send({ port, id }));
  await Promise.all(ready);
  const startAt = Date.now() + 200;
  const done = children.map((child) => messageFrom(child, 'result'));
  for (const child of children) child.send({ startAt, endAt: startAt + SECONDS * 1_000 });
  const results = await Promise.all(done);
  const stored = await storedCounters(port);
  return { ...books(results, stored), ...lags(results) };
}

/** Every compound counter in Redis now: part index, key and window end → count. */
async function storedCounters(port) {
  const client = await connect(port);
  const out = new Map();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', 'bulwark:{c:*', 'COUNT', 1_000);
    cursor = next;
    for (const key of keys) {
      const m = /:\d+:(per-user|per-tenant):k:(.+)$/.exec(key);
      if (m === null) continue;
      const [value, pttl] = await client.multi().get(key).pttl(key).exec().then((r) => r.map(([, v]) => v));
      if (value === null) continue; // its window ended between SCAN and the read
      const i = m[1] === 'per-user' ? 0 : 1;
      const W = PARTS[i].windowMs;
      if (!/^\d+$/.test(value) || pttl <= 0) throw new Error(`unexpected stored value ${JSON.stringify(value)} (pttl ${pttl}) at ${key}`);
      out.set(`${i} ${m[2]} ${Math.round((Date.now() + pttl) / W) * W}`, Math.floor(Number(value) / 8));
    }
  } while (cursor !== '0');
  client.disconnect();
  return out;
}

/** Figure 1: the callers' books merged, checked, and compared with the stored counters. */
function books(results, stored) {
  const merged = PARTS.map(() => new Map());
  for (const r of results) {
    r.books.forEach((list, i) => {
      for (const [id, counts, peeked] of list) {
        const m = merged[i].get(id) ?? { counts: [], peeked: 0 };
        m.counts.push(...counts);
        m.peeked = Math.max(m.peeked, peeked);
        merged[i].set(id, m);
      }
    });
  }
  const faults = { gaps: 0, repeats: 0, overLimit: 0, peekAbove: 0, storedDiffers: 0 };
  const examples = [];
  let windows = 0;
  merged.forEach((m, i) => {
    for (const [id, { counts, peeked }] of m) {
      windows++;
      const sorted = counts.sort((a, b) => a - b);
      const k = sorted.length;
      const found = [];
      if (k > PARTS[i].limit) found.push(['overLimit', 1]);
      const distinct = new Set(sorted).size;
      if (distinct < k) found.push(['repeats', k - distinct]);
      if (k > 0 && sorted[k - 1] !== k) found.push(['gaps', sorted[k - 1] - distinct]);
      if (peeked > k) found.push(['peekAbove', 1]);
      const key = `${i} ${id}`;
      if (stored.has(key) && stored.get(key) !== k) found.push(['storedDiffers', 1]);
      for (const [what, n] of found) {
        faults[what] += n;
        if (examples.length < 10) examples.push({ part: PARTS[i].name, window: id, what, admitted: k, highest: sorted[k - 1], peeked, stored: stored.get(key) });
      }
    }
  });
  // A stored counter no admitted call accounts for.
  for (const [key, count] of stored) {
    const [i, ...rest] = key.split(' ');
    if (!merged[Number(i)].has(rest.join(' ')) && count !== 0) {
      faults.storedDiffers++;
      if (examples.length < 10) examples.push({ part: PARTS[Number(i)].name, window: rest.join(' '), what: 'storedDiffers', admitted: 0, stored: count });
    }
  }
  const sum = (f) => results.reduce((s, r) => s + f(r), 0);
  return {
    compound: {
      calls: sum((r) => r.compound.calls),
      admitted: sum((r) => r.compound.admitted),
      deniedByUser: sum((r) => r.compound['per-user']),
      deniedByTenant: sum((r) => r.compound['per-tenant']),
      notRedis: sum((r) => r.compound.notRedis),
      unplaced: sum((r) => r.compound.unplaced),
      windows,
      storedChecked: stored.size,
      faults,
      cases: Object.values(faults).reduce((s, n) => s + n, 0),
      examples,
    },
    baseline: {
      calls: sum((r) => r.baseline.calls),
      admitted: sum((r) => r.baseline.admitted),
      deniedFirst: sum((r) => r.baseline.deniedFirst),
      chargedThenDenied: sum((r) => r.baseline.chargedThenDenied),
    },
  };
}

/** Figure 2: per change and per other process, the time until its decisions report the new limit. */
function lags(results) {
  const { changes } = results[0];
  const rows = [];
  changes.forEach((change, k) => {
    const until = changes[k + 1]?.calledAt ?? Infinity;
    const old = k === 0 ? PARTS[1].limit : changes[k - 1].limit;
    for (let w = 1; w < results.length; w++) {
      const seen = results[w].watched.filter(([, answered, limit]) => limit === change.limit && answered >= change.calledAt && answered < until);
      const first = Math.min(...seen.map(([, answered]) => answered));
      // Sent after setLimit resolved, yet reporting the old limit: stale when answered before the
      // next change began; answered after it, it may follow that change, which sets the old
      // value again (the changes alternate), so those are counted apart (staleOrNext).
      const sentAfter = results[w].watched.filter(([sent, , limit]) => limit === old && sent > change.doneAt && sent < until);
      const stale = sentAfter.filter(([, answered]) => answered < until).length;
      rows.push({ change: k, process: w, limit: change.limit, lagMs: Number.isFinite(first) ? round(first - change.calledAt) : null, stale, staleOrNext: sentAfter.length, setLimitMs: round(change.doneAt - change.calledAt) });
    }
  });
  const measured = rows.filter((r) => r.lagMs !== null).map((r) => r.lagMs);
  return {
    lag: {
      changes: changes.length,
      rows,
      unseen: rows.filter((r) => r.lagMs === null).length,
      maxMs: measured.length ? Math.max(...measured) : null,
      medianMs: measured.length ? median(measured) : null,
      stale: rows.reduce((s, r) => s + r.stale, 0),
      staleOrNext: rows.reduce((s, r) => s + r.staleOrNext, 0),
      setLimitMaxMs: round(Math.max(...changes.map((ch) => ch.doneAt - ch.calledAt))),
    },
  };
}

/** Figure 3: compound.consume against two awaited consumes, one process, --callers callers. */
async function throughput(port) {
  const client = await connect(port);
  const store = redisStore(client, { timeoutMs: 5_000 });
  const high = PARTS.map((p) => ({ ...p, name: `tp-${p.name}`, limit: 1e9 }));
  const { both, bUser, bTenant } = limiters(store, high);
  const run = async (call) => {
    let n = 0;
    const end = performance.now() + 2_000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (performance.now() < end) {
          const user = Math.floor(Math.random() * USERS);
          const d = await call(user, tenantOf(user));
          if (!d) throw new Error('a throughput call was denied');
          n++;
        }
      }),
    );
    return n / ((performance.now() - started) / 1_000);
  };
  const modes = {
    compound: async (user, tenant) => (await both.consume([`u${user}`, tenant], { tag: tenant })).allowed,
    separate: async (user, tenant) => (await bUser.consume(`u${user}`)).allowed && (await bTenant.consume(tenant)).allowed,
  };
  await run(modes.compound);
  await run(modes.separate); // warm-up
  const rows = [];
  for (let r = 0; r < REPEATS; r++) {
    const row = {};
    for (const name of r % 2 ? ['separate', 'compound'] : ['compound', 'separate']) row[name] = await run(modes[name]);
    rows.push({ ...row, ratio: row.compound / row.separate });
  }
  client.disconnect();
  return { compound: median(rows.map((r) => r.compound)), separate: median(rows.map((r) => r.separate)), ratio: median(rows.map((r) => r.ratio)), rows };
}

async function main() {
  const server = await startRedisServer('compound');
  try {
    const f = await fleet(server.port);
    const t = await throughput(server.port);
    const { compound: c, baseline: b, lag } = f;
    const pct = (n, d) => `${((100 * n) / Math.max(d, 1)).toFixed(2)} %`;
    console.log(`fleet: ${PROCS} processes × (${CALLERS} compound + ${CALLERS} baseline callers), ${SECONDS} s, ${USERS} users over ${TENANTS} tenants`);
    console.log(`limits: per-user ${PARTS[0].limit}/${PARTS[0].windowMs / 1000} s AND per-tenant ${PARTS[1].limit}/${PARTS[1].windowMs / 1000} s (fixed windows)`);
    console.log('| figure | bound | measured |');
    console.log('|---|---|---|');
    console.log(`| compound: calls (admitted / denied per-user / denied per-tenant) | — | ${c.calls} (${c.admitted} / ${c.deniedByUser} / ${c.deniedByTenant}) |`);
    console.log(`| compound: part charged while another denied (gaps ${c.faults.gaps}, repeats ${c.faults.repeats}, over limit ${c.faults.overLimit}, peek above ${c.faults.peekAbove}, stored ≠ admitted ${c.faults.storedDiffers}) | 0 | ${c.cases} over ${c.windows} counter windows, ${c.storedChecked} stored counters read |`);
    console.log(`| compound: decisions not made by Redis / not placed in a window | 0 / — | ${c.notRedis} / ${c.unplaced} |`);
    console.log(`| baseline: calls (admitted / denied by per-user) | — | ${b.calls} (${b.admitted} / ${b.deniedFirst}) |`);
    console.log(`| baseline: units charged to per-user for calls per-tenant denied | — | ${b.chargedThenDenied} (${pct(b.chargedThenDenied, b.calls)} of calls) |`);
    console.log(`| setLimit seen by every other process: max (median), ${lag.changes} changes × ${PROCS - 1} processes | ≤ ${LAG_BOUND_MS} ms | ${lag.maxMs} ms (${lag.medianMs} ms), unseen ${lag.unseen} |`);
    console.log(`| decisions sent after setLimit resolved reporting the old limit | 0 | ${lag.stale} (with those answered after the next change began: ${lag.staleOrNext}; setLimit itself ≤ ${lag.setLimitMaxMs} ms) |`);
    console.log(`| throughput, 1 process × ${CALLERS} callers: compound / two consumes (median of ${REPEATS}) | — | ${Math.round(t.compound)}/s / ${Math.round(t.separate)}/s, ratio ${t.ratio.toFixed(2)} |`);
    if (c.examples.length) console.log(`faults (first ${c.examples.length}): ${JSON.stringify(c.examples)}`);
    const targets = [
      { name: 'compound 0 parts charged while another denied', met: c.cases === 0 && c.notRedis === 0 && c.admitted > 0 && c.deniedByUser > 0 && c.deniedByTenant > 0, value: c.cases, target: 0 },
      { name: 'compound setLimit in force fleet-wide ≤ 1 s', met: lag.changes >= 10 && lag.unseen === 0 && lag.stale === 0 && lag.maxMs <= LAG_BOUND_MS, value: lag.maxMs, target: LAG_BOUND_MS },
    ];
    for (const target of targets) console.log(`Target: ${target.name}: ${target.met ? 'met' : 'NOT met'}`);
    printTargets(targets);
    if (args.json) console.log(JSON.stringify({ fleet: { ...f, lag: { ...lag, rows: undefined } }, lagRows: lag.rows, throughput: t }));
  } finally {
    server.stop();
  }
}
