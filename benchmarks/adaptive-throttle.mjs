// adaptiveThrottle's figures (issue 16 §2) on real time, against an in-process modelled upstream:
// a function that answers after `--latency-ms` and accepts at most so many calls in each second
// (the rest are refused, as a 429 or 503 would be). Open-loop clients offer calls at a fixed rate,
// ticking every 10 ms, whatever the answers. Three scenarios run side by side, each with its own
// throttle (the defaults: k 2, cap 0.9, minRequests 200; window `--window-ms`, 60 s by default) and upstream:
//
//   overload  500/s offered to an upstream accepting 100/s for 3 windows, then the upstream heals
//             (accepts everything) for 2 more: received and accepted per second after the first
//             window; after healing, how long until the rejection probability is < 1 %.
//   failing   200/s offered to an upstream failing 40 % of calls (seeded draws): one window healthy
//             first (warm), then 3 windows failing; local rejections counted.
//   cold      the same failing upstream from the first call, no healthy window before.
//
// Then the cost of a local rejection: calls one at a time through a throttle rejecting at its cap,
// each timed from the call to its rejection handler; p50/p99 of the rejected ones.
//
//   node benchmarks/adaptive-throttle.mjs [--window-ms 60000] [--latency-ms 5] [--json file]
//
// `--window-ms 3000` gives a quick run (every duration is in windows). One run prints one JSON
// line last; RESULTS.md gives medians of three.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { adaptiveThrottle, ThrottledError } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    'window-ms': { type: 'string', default: '60000' },
    'latency-ms': { type: 'string', default: '5' },
    json: { type: 'string' },
  },
});
const WINDOW_MS = Number(values['window-ms']);
const LATENCY_MS = Number(values['latency-ms']);
const TICK_MS = 10;

/** A seeded source of numbers in [0, 1) (a linear congruential generator). */
function seeded(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

class Refused extends Error {
  name = 'Refused';
}

/**
 * A modelled upstream: `accepts(nowMs)` says whether a call arriving now is taken. It answers after
 * the latency; per elapsed second of the scenario, counts calls received and accepted.
 */
function upstream(accepts, started) {
  const received = [];
  const accepted = [];
  const call = () => {
    const second = Math.floor((performance.now() - started) / 1000);
    received[second] = (received[second] ?? 0) + 1;
    const ok = accepts(performance.now());
    if (ok) accepted[second] = (accepted[second] ?? 0) + 1;
    return new Promise((resolve, reject) => setTimeout(() => (ok ? resolve('ok') : reject(new Refused('refused'))), LATENCY_MS));
  };
  return { call, received, accepted };
}

/** At most `perSecond` accepted in each wall-clock second; `open()` makes it accept everything. */
function capacity(perSecond) {
  let second = -1;
  let used = 0;
  let healed = false;
  const accepts = (now) => {
    if (healed) return true;
    const s = Math.floor(now / 1000);
    if (s !== second) {
      second = s;
      used = 0;
    }
    return used++ < perSecond;
  };
  return { accepts, heal: () => (healed = true) };
}

/**
 * Offers `rate` calls a second for `ms` through `throttle` to `target`, open loop: each 10 ms tick
 * sends what the elapsed time owes. `onSecond(s)` runs at each new second. Counts local rejections.
 */
async function offer(throttle, target, rate, ms, onSecond = () => {}) {
  const start = performance.now();
  let sent = 0;
  let rejected = 0;
  let second = -1;
  const pending = new Set();
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= ms) break;
    const s = Math.floor(elapsed / 1000);
    if (s !== second) {
      second = s;
      onSecond(s);
    }
    const owed = Math.floor((elapsed / 1000) * rate) - sent;
    for (let i = 0; i < owed; i++) {
      sent++;
      const p = throttle.execute(target).then(
        () => {},
        (error) => {
          if (error instanceof ThrottledError) rejected++;
        },
      );
      pending.add(p);
      p.then(() => pending.delete(p));
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
  await Promise.all(pending);
  return { sent, rejected };
}

const sum = (xs) => xs.reduce((a, b) => a + (b ?? 0), 0);
const meanOver = (xs, from, to) => {
  let total = 0;
  for (let i = from; i < to; i++) total += xs[i] ?? 0;
  return total / (to - from);
};

async function overloadScenario() {
  const throttle = adaptiveThrottle({ name: 'overload', windowMs: WINDOW_MS });
  const model = capacity(100);
  const started = performance.now();
  const up = upstream(model.accepts, started);
  const windowS = WINDOW_MS / 1000;
  const overloaded = await offer(throttle, up.call, 500, 3 * WINDOW_MS);
  const probabilityAtHeal = throttle.rejectionProbability;
  model.heal();
  const healedAt = performance.now();
  let belowAfterMs;
  const healed = await offer(throttle, up.call, 500, 2 * WINDOW_MS, () => {
    if (belowAfterMs === undefined && throttle.rejectionProbability < 0.01) belowAfterMs = performance.now() - healedAt;
  });
  const steadyTo = 3 * windowS;
  const receivedSteady = up.received.slice(windowS, steadyTo);
  return {
    receivedPerSecond: meanOver(up.received, windowS, steadyTo),
    receivedMaxSecond: Math.max(...receivedSteady.map((x) => x ?? 0)),
    acceptedPerSecond: meanOver(up.accepted, windowS, steadyTo),
    acceptedMinSecond: Math.min(...up.accepted.slice(windowS, steadyTo).map((x) => x ?? 0)),
    receivedFirstWindow: meanOver(up.received, 0, windowS),
    offeredPerSecond: overloaded.sent / (3 * windowS),
    localRejections: overloaded.rejected,
    probabilityAtHeal,
    healedBelow1PercentMs: belowAfterMs ?? null,
    probabilityTwoWindowsAfterHeal: throttle.rejectionProbability,
    rejectedAfterHeal: healed.rejected,
  };
}

async function failingScenario(warm, seed) {
  const throttle = adaptiveThrottle({ name: warm ? 'failing-warm' : 'failing-cold', windowMs: WINDOW_MS });
  let failing = !warm;
  const draw = seeded(seed);
  const up = upstream(() => !failing || draw() >= 0.4, performance.now());
  if (warm) await offer(throttle, up.call, 200, WINDOW_MS);
  failing = true;
  const run = await offer(throttle, up.call, 200, 3 * WINDOW_MS);
  const from = warm ? WINDOW_MS / 1000 : 0;
  return {
    offered: run.sent,
    localRejections: run.rejected,
    acceptedShare: sum(up.accepted.slice(from)) / sum(up.received.slice(from)),
  };
}

/** Local rejections one at a time, each timed from the call to its rejection handler. */
async function rejectionLatency(calls = 200_000) {
  const throttle = adaptiveThrottle({ name: 'latency', minRequests: 0, windowMs: 3_600_000 });
  for (let i = 0; i < 1_000; i++) await throttle.execute(() => Promise.reject(new Refused('x'))).catch(() => {});
  const times = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    try {
      await throttle.execute(() => Promise.reject(new Refused('x')));
    } catch (error) {
      if (error instanceof ThrottledError) times.push(performance.now() - t0);
    }
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  return { rejected: times.length, p50Ms: at(0.5), p99Ms: at(0.99), p999Ms: at(0.999) };
}

const startedAt = new Date().toISOString();
const [overload, warm, cold] = await Promise.all([overloadScenario(), failingScenario(true, 3), failingScenario(false, 5)]);
const latency = await rejectionLatency();
const result = { startedAt, windowMs: WINDOW_MS, latencyMs: LATENCY_MS, node: process.version, overload, warm, cold, latency };

const pct = (x) => `${(x * 100).toFixed(2)} %`;
console.log(`adaptiveThrottle, window ${WINDOW_MS} ms, upstream latency ${LATENCY_MS} ms (${process.version})`);
console.log(`overload 500/s → 100/s: received ${overload.receivedPerSecond.toFixed(1)}/s (max second ${overload.receivedMaxSecond}; first window ${overload.receivedFirstWindow.toFixed(1)}/s), accepted ${overload.acceptedPerSecond.toFixed(1)}/s (min second ${overload.acceptedMinSecond})`);
console.log(`healing: p at heal ${overload.probabilityAtHeal.toFixed(3)}, < 1 % after ${overload.healedBelow1PercentMs === null ? 'never' : `${(overload.healedBelow1PercentMs / 1000).toFixed(1)} s`}, p two windows after ${overload.probabilityTwoWindowsAfterHeal.toFixed(4)}`);
console.log(`40 % failing, warm: ${warm.localRejections} local rejections of ${warm.offered}, accepted ${pct(warm.acceptedShare)}`);
console.log(`40 % failing, cold: ${cold.localRejections} local rejections of ${cold.offered}, accepted ${pct(cold.acceptedShare)}`);
console.log(`local rejection latency: p50 ${(latency.p50Ms * 1000).toFixed(1)} µs, p99 ${(latency.p99Ms * 1000).toFixed(1)} µs, p99.9 ${(latency.p999Ms * 1000).toFixed(1)} µs (${latency.rejected} rejected)`);
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(result, null, 2));
console.log(JSON.stringify(result));
