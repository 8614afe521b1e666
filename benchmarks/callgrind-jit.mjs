// Names the JavaScript in a callgrind dump. callgrind counts the instructions of V8's compiled
// code, but knows it only by address; V8's `--perf-basic-prof` map says which function each
// address range held. This reads a main-thread dump and its map, as `http-instructions.mjs --keep
// DIR` leaves them, and prints the instructions per request of the busiest functions (JS and
// native), and of the groups they belong to (bulwark, ioredis, Fastify, Node's own JS, V8, libc).
// Diagnostic only: the map is written while the server runs, so a little of what it counts is
// the writing of the map itself (shown as libstdc++), and code moved by the GC may be misnamed.
//
//   node benchmarks/http-instructions.mjs --filter ID --keep DIR
//   node benchmarks/callgrind-jit.mjs DIR/ID [--requests 4000] [--top 40] [--compare DIR/OTHER_ID] [--inclusive]
//
// --inclusive counts, for each function, its own instructions and those of every call it made
// (a function calling itself, or JS calling JS, is counted at each level; groups then overlap).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    requests: { type: 'string', default: '4000' },
    top: { type: 'string', default: '40' },
    compare: { type: 'string' },
    inclusive: { type: 'boolean', default: false },
  },
});
if (positionals.length !== 1) {
  console.error('usage: node benchmarks/callgrind-jit.mjs DIR/ID [--requests N] [--top N] [--compare DIR/OTHER_ID]');
  process.exit(1);
}
const REQUESTS = Number(args.requests);
const TOP = Number(args.top);

/** Sorted, non-overlapping [start, end, name] ranges from a perf map; a later entry for an address wins. */
function readMap(file) {
  const entries = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m) entries.push([parseInt(m[1], 16), parseInt(m[1], 16) + parseInt(m[2], 16), m[3]]);
  }
  // Later code may reuse an address: keep the last entry that covers each start address.
  const byStart = new Map();
  for (const e of entries) byStart.set(e[0], e);
  return [...byStart.values()].sort((a, b) => a[0] - b[0]);
}

function lookup(ranges, address) {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [start, end] = ranges[mid];
    if (address < start) hi = mid - 1;
    else if (address >= end) lo = mid + 1;
    else return ranges[mid][2];
  }
  return undefined;
}

/** Self instructions per name: JS names from the map, native ones from callgrind. */
function selfCost(base) {
  const ranges = readMap(`${base}.perf-map`);
  const text = readFileSync(`${base}.callgrind`, 'utf8');
  const names = { ob: new Map(), fn: new Map() };
  const costs = new Map();
  const inclusive = new Map(); // own instructions plus those of everything called from the function
  let object = '';
  let fn = '';
  let address = 0;
  let skipNext = false;
  const define = (kind, rest) => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(rest);
    if (!m) return rest;
    if (m[2] !== undefined) names[kind].set(m[1], m[2]);
    return names[kind].get(m[1]) ?? rest;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('ob=')) object = define('ob', line.slice(3));
    else if (line.startsWith('fn=')) fn = define('fn', line.slice(3));
    else if (line.startsWith('cob=')) define('ob', line.slice(4));
    else if (line.startsWith('cfn=')) define('fn', line.slice(4));
    else if (line.startsWith('calls=')) skipNext = true;
    else if (/^[0-9+\-*]/.test(line)) {
      const [position, , cost] = line.split(' ');
      if (position.startsWith('0x')) address = parseInt(position, 16);
      else if (position[0] === '+') address += parseInt(position.slice(1), 16);
      else if (position[0] === '-') address -= parseInt(position.slice(1), 16);
      const n = Number(cost);
      if (!Number.isFinite(n)) continue;
      const js = lookup(ranges, address);
      const name = js ?? `${fn} [${object.split('/').at(-1)}]`;
      inclusive.set(name, (inclusive.get(name) ?? 0) + n);
      if (skipNext) {
        skipNext = false; // a call's inclusive cost, not this function's own
        continue;
      }
      costs.set(name, (costs.get(name) ?? 0) + n);
    }
  }
  return args.inclusive ? inclusive : costs;
}

function groupOf(name) {
  if (/^(JS|LazyCompile|Function):/.test(name) || /^[*~^]/.test(name)) {
    if (/node_modules\/(ioredis|redis-parser|denque|standard-as-callback|cluster-key-slot)\//.test(name)) return 'ioredis';
    if (/node_modules\/(@fastify\/rate-limit|express-rate-limit|rate-limit-redis|rate-limiter-flexible)\//.test(name)) return 'peer limiter';
    if (/node_modules\/(fastify|find-my-way|avvio|@fastify|light-my-request|fast-json-stringify|abstract-logging|pino)/.test(name)) return 'Fastify';
    if (/node_modules\/(express|router|body-parser|finalhandler|send|serve-static|path-to-regexp)\//.test(name)) return 'Express';
    if (/\/dist\//.test(name) && !/node_modules/.test(name)) return 'bulwark';
    if (/node:/.test(name)) return "Node's JS";
    return 'other JS';
  }
  if (/^(Builtin|BytecodeHandler|Stub|RegExp|Handler):/.test(name)) return 'V8 builtins, regexps, stubs';
  if (/\[node\]$/.test(name)) return 'node binary (V8 runtime, libuv, http parser)';
  if (/\[libc[.-]/.test(name)) return 'libc';
  if (/\[libstdc\+\+/.test(name)) return 'libstdc++ (mostly the perf map being written)';
  return 'other native';
}

function report(costs) {
  const groups = new Map();
  for (const [name, n] of costs) groups.set(groupOf(name), (groups.get(groupOf(name)) ?? 0) + n);
  return { costs, groups };
}

const k = (n) => `${(n / REQUESTS / 1000).toFixed(2)}k`;
const main = report(selfCost(positionals[0]));
const other = args.compare ? report(selfCost(args.compare)) : undefined;

console.log(`\n${positionals[0]}: instructions per request (÷ ${REQUESTS})${other ? `, and ${args.compare}` : ''}\n`);
console.log('By group:');
for (const [g, n] of [...main.groups].sort((a, b) => b[1] - a[1])) {
  const o = other?.groups.get(g) ?? 0;
  console.log(`  ${k(n).padStart(8)}${other ? `  ${k(o).padStart(8)}  ${(n - o >= 0 ? '+' : '') + k(n - o)}` : ''}  ${g}`);
}
console.log(`\nBusiest functions${other ? ' (sorted by the difference)' : ''}:`);
const names = new Set([...main.costs.keys(), ...(other ? other.costs.keys() : [])]);
const rows = [...names].map((name) => [name, main.costs.get(name) ?? 0, other?.costs.get(name) ?? 0]);
rows.sort((a, b) => (other ? b[1] - b[2] - (a[1] - a[2]) : b[1] - a[1]));
for (const [name, n, o] of rows.slice(0, TOP)) {
  console.log(`  ${k(n).padStart(8)}${other ? `  ${k(o).padStart(8)}  ${(n - o >= 0 ? '+' : '') + k(n - o)}` : ''}  ${name.slice(0, 140)}`);
}
