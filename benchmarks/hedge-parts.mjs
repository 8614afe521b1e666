// What a hedge's success path (and a timeout's call) needs per call, each timed alone in a tight
// loop: the clock read of its deadline, the capture of the caller's async context, the ref and
// unref of the shared timer as the queue fills and empties, and a bound handler. Issue 14 §3
// asks for a hedge whose first attempt succeeds to add ≤ 100 ns to `await fn()`; these parts,
// which its behaviour needs (a deadline per call, a delayed attempt in its caller's context, a
// process that can exit while idle), show how much of that they take before any promise.
//
//   node benchmarks/hedge-parts.mjs   (5 runs of 2,000,000 calls each, after 200,000 warm-up; the median)
import { AsyncResource } from 'node:async_hooks';

const N = 2_000_000;
let sink;

function bench(name, f) {
  for (let i = 0; i < 200_000; i++) f(i);
  const runs = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f(i);
    runs.push(Number(process.hrtime.bigint() - start) / N);
  }
  runs.sort((a, b) => a - b);
  console.log(`| ${name} | ${runs[2].toFixed(1)} |`);
}

class Holder {
  method(a) {
    return a;
  }
}
const holder = new Holder();
const timer = setTimeout(() => {}, 1e9);

console.log(`Node ${process.version}`);
console.log('| part | ns per call (median of 5) |');
console.log('|---|---:|');
bench('empty loop', (i) => {
  sink = i;
});
bench('performance.now() (the deadline)', () => {
  sink = performance.now();
});
bench('Date.now()', () => {
  sink = Date.now();
});
bench("new AsyncResource() (the caller's context)", () => {
  sink = new AsyncResource('bulwark.hedge');
});
bench('timer.ref() + timer.unref() (queue fills, empties)', () => {
  timer.ref();
  timer.unref();
});
bench('a bound method, made (one handler)', (i) => {
  sink = holder.method.bind(holder, i);
});
clearTimeout(timer);
