// The pure parts of the benchmark driver (benchmarks/run.mjs): which parts there are and what
// each needs, the driver's arguments, the prerequisite check, reading a part's verdict line and
// the closing summary with its exit code. Nothing here starts a process, so the unit tests can
// drive all of it (test/unit/bench-driver.test.ts).
import { onPath, printTargets, TARGETS_MARKER } from './support.mjs';

export { printTargets, TARGETS_MARKER };

/**
 * Exit codes of `npm run bench`. MISSED means every part ran to its end and at least one target
 * was not met: the benchmark worked, the code fell short. FAILED means the run itself did not
 * work: a prerequisite is missing, an argument is wrong, or a part crashed or printed no verdict.
 * FAILED wins over MISSED when both happen (the verdicts of an incomplete run are incomplete).
 */
export const EXIT = Object.freeze({ OK: 0, MISSED: 1, FAILED: 2 });

/** The Debian package that provides each tool (`apt-get install -y ...`). */
const PACKAGE_OF = { wrk: 'wrk', 'redis-server': 'redis-server', 'redis-benchmark': 'redis-tools', taskset: 'util-linux', valgrind: 'valgrind' };

/**
 * The parts, in the order they run. `node`: the Node flags the part is run with (each in a fresh
 * process). `needs`: tools it cannot run without. `optional`: tools whose absence it reports in
 * its own output, with what is lost. `seconds`: the expected duration on a 2-core machine, full
 * and with --quick (the quick ones measured on a busy 2-core VM, the full ones scaled from the
 * quick ones by the rounds and durations each part adds; a busier machine takes longer).
 */
export const PARTS = Object.freeze([
  {
    name: 'hot-path',
    script: 'hot-path.mjs',
    node: ['--expose-gc', '--max-semi-space-size=64'],
    needs: [],
    optional: [],
    seconds: { full: 150, quick: 75 },
  },
  {
    name: 'ratelimit-memory',
    script: 'ratelimit-memory.mjs',
    node: ['--expose-gc', '--max-semi-space-size=64'],
    needs: [],
    optional: [],
    seconds: { full: 120, quick: 75 },
  },
  {
    name: 'ratelimit-redis',
    script: 'ratelimit-redis.mjs',
    node: [],
    needs: ['redis-server'],
    optional: [
      ['redis-benchmark', 'the ceiling rows read n/a'],
      ['taskset', 'client and Redis run unpinned'],
    ],
    seconds: { full: 150, quick: 30 },
  },
  {
    name: 'redis-memory',
    script: 'redis-memory.mjs',
    node: [],
    needs: ['redis-server'],
    optional: [],
    seconds: { full: 30, quick: 30 },
  },
  {
    name: 'http',
    script: 'http.mjs',
    node: [],
    needs: ['wrk', 'redis-server'],
    optional: [['taskset', 'servers, wrk and Redis run unpinned']],
    seconds: { full: 180, quick: 45 },
  },
  {
    // Issue 15's proof under overload: a modelled backend, the service and the load generator in
    // three processes; timer-driven, so it needs no tool, only a machine not busy with other work.
    name: 'overload',
    script: 'overload.mjs',
    node: [],
    needs: [],
    optional: [],
    seconds: { full: 600, quick: 90 },
  },
]);

export class UsageError extends Error {}

export const USAGE = `npm run bench -- [--quick] [--only PART[,PART]]
node benchmarks/run.mjs [--quick] [--only PART[,PART]] [--help]

  --quick        every part with fewer rounds and shorter durations: a smoke run, noisier;
                 not for figures in RESULTS.md
  --only PART    run only these parts (repeat it, or separate names with commas);
                 parts: ${PARTS.map((p) => p.name).join(', ')}

Exit code: ${EXIT.OK} every target met; ${EXIT.MISSED} a target was NOT met (every part ran to its end);
${EXIT.FAILED} a part could not run (missing tool, bad argument, a crash or no verdict line).`;

/** The driver's arguments: `{ quick, parts, help }`, `parts` in run order. Throws UsageError. */
export function parseDriverArgs(argv) {
  let quick = false;
  let help = false;
  const only = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      if (value === undefined || value === '' || value.startsWith('--')) throw new UsageError('--only needs a part name');
      only.push(...value.split(',').map((s) => s.trim()).filter(Boolean));
    } else throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
  }
  const known = PARTS.map((p) => p.name);
  for (const name of only) {
    if (!known.includes(name)) throw new UsageError(`--only ${name}: no such part (parts: ${known.join(', ')})`);
  }
  const parts = only.length === 0 ? [...PARTS] : PARTS.filter((p) => only.includes(p.name));
  return { quick, parts, help };
}

/**
 * What the chosen parts need and what is missing, looked up on `searchPath` (PATH by default).
 * `message` (when something required is missing) names each tool, the parts that need it and the
 * command that installs them all; `notes` list missing optional tools and what they cost.
 */
export function checkPrerequisites(parts, searchPath = process.env.PATH) {
  const missing = new Map(); // tool → [part names]
  const notes = [];
  for (const part of parts) {
    for (const tool of part.needs) {
      if (onPath(tool, searchPath) !== undefined) continue;
      if (!missing.has(tool)) missing.set(tool, []);
      missing.get(tool).push(part.name);
    }
    for (const [tool, cost] of part.optional) {
      if (onPath(tool, searchPath) === undefined) notes.push(`${tool} not found: ${part.name} still runs, but ${cost}`);
    }
  }
  if (missing.size === 0) return { ok: true, missing: [], notes };
  const packages = [...new Set([...missing.keys()].map((tool) => PACKAGE_OF[tool] ?? tool))];
  const message = [
    'Missing prerequisites, nothing was run:',
    ...[...missing].map(([tool, names]) => `  ${tool} (needed by ${names.join(', ')})`),
    `Install (Debian/Ubuntu): apt-get install -y ${packages.join(' ')}`,
    `or leave those parts out with --only (parts: ${PARTS.map((p) => p.name).join(', ')}).`,
  ].join('\n');
  return { ok: false, missing: [...missing].map(([tool, names]) => ({ tool, parts: names })), notes, message };
}

/** "1 min 30 s", "45 s". */
export function formatDuration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  return s % 60 === 0 ? `${s / 60} min` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** The lines printed before anything runs: each part, its expected duration, and the total. */
export function planLines(parts, quick) {
  const mode = quick ? 'quick' : 'full';
  const total = parts.reduce((sum, p) => sum + p.seconds[mode], 0);
  return [
    `Benchmarks (${quick ? '--quick: fewer rounds, shorter runs; a smoke run, not figures for RESULTS.md' : 'full run'}), one fresh process each:`,
    ...parts.map((p) => `  ${p.name.padEnd(18)} about ${formatDuration(p.seconds[mode])}`),
    `Expected in all: about ${formatDuration(total)} on a 2-core machine (longer when it is busy).`,
  ];
}

/** The node arguments that run `part` (its flags, the script, --quick when asked). */
export function partArgv(part, quick, dir) {
  return [...part.node, `${dir}/${part.script}`, ...(quick ? ['--quick'] : [])];
}

/**
 * The verdicts in a part's output: the targets of its last marker line, or undefined when there
 * is none or it does not parse (the part did not finish). Each target is checked for shape.
 */
export function parseTargets(output) {
  const lines = output.split('\n').filter((l) => l.startsWith(TARGETS_MARKER));
  if (lines.length === 0) return undefined;
  let parsed;
  try {
    parsed = JSON.parse(lines.at(-1).slice(TARGETS_MARKER.length));
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed?.targets)) return undefined;
  const ok = parsed.targets.every((t) => typeof t?.name === 'string' && (t.met === true || t.met === false || t.met === null));
  return ok ? parsed.targets : undefined;
}

/**
 * The closing summary of a run and its exit code. `results`: one per part run, in order,
 * `{ part, exitCode, signal, targets }` (targets from parseTargets, undefined when none came).
 */
export function summarize(results, quick = false) {
  const rows = [];
  const failed = [];
  for (const r of results) {
    if (r.exitCode !== 0 || r.targets === undefined) {
      const how = r.signal ? `killed by ${r.signal}` : r.exitCode !== 0 ? `exit code ${r.exitCode}` : 'no verdict line';
      failed.push(`${r.part}: FAILED to run (${how}); its output above says why`);
    }
    for (const t of r.targets ?? []) rows.push({ part: r.part, ...t });
    if (r.targets !== undefined && r.targets.length === 0 && r.exitCode === 0) rows.push({ part: r.part, name: 'no targets (figures only)', met: undefined });
  }
  const judged = rows.filter((t) => t.met !== undefined);
  const met = judged.filter((t) => t.met === true).length;
  const missed = judged.filter((t) => t.met === false).length;
  const notMeasured = judged.filter((t) => t.met === null).length;
  const exitCode = failed.length > 0 ? EXIT.FAILED : missed > 0 ? EXIT.MISSED : EXIT.OK;
  const cell = (s) => String(s ?? '').replaceAll('|', '\\|');
  const verdict = (t) => (t.met === true ? 'met' : t.met === false ? 'NOT met' : t.met === null ? 'not measured' : '—');
  const lines = [`Summary${quick ? ' (--quick run: noisier than a full run)' : ''}:`, ''];
  if (rows.length > 0) {
    lines.push('| part | target | measured | verdict |', '|---|---|---|---|');
    for (const t of rows) {
      const measured = t.value === undefined ? '' : `${t.value}${t.target && t.met !== null ? ` (target ${t.target})` : ''}`;
      lines.push(`| ${cell(t.part)} | ${cell(t.name)} | ${cell(measured)} | ${verdict(t)} |`);
    }
    lines.push('');
  }
  for (const f of failed) lines.push(f);
  const counts = `${met} of ${judged.length} targets met, ${missed} NOT met${notMeasured ? `, ${notMeasured} not measured` : ''}`;
  const meaning = {
    [EXIT.OK]: 'every part ran and every measured target held',
    [EXIT.MISSED]: 'every part ran; a target was missed (the benchmarks worked, the code fell short)',
    [EXIT.FAILED]: `${failed.length} part${failed.length === 1 ? '' : 's'} did not run to the end, so this run is incomplete`,
  }[exitCode];
  lines.push(`${counts}. Exit code ${exitCode}: ${meaning}.`);
  return { lines, exitCode, met, missed, notMeasured, failed: failed.length };
}
