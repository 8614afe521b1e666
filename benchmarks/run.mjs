// The benchmark driver behind `npm run bench`: checks up front for the tools the chosen parts
// need, says what it will run and how long that takes, runs each part in a fresh Node process
// with the flags it needs, and ends with a summary of every target and whether it held.
//
//   npm run bench                     (builds, then runs this file)
//   node benchmarks/run.mjs [--quick] [--only PART[,PART]] [--help]
//
// Exit code: 0 every target met; 1 a target was NOT met (every part ran to its end); 2 a part
// could not run (a missing tool, a bad argument, a crash, or no verdict line). Each part prints
// its verdicts as one `bench-targets: {...}` line (benchmarks/support.mjs), which the driver
// reads instead of echoing; everything else a part prints is passed through as it comes.
// The pure logic lives in benchmarks/driver.mjs.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { checkPrerequisites, EXIT, formatDuration, parseDriverArgs, parseTargets, partArgv, planLines, summarize, USAGE, UsageError } from './driver.mjs';
import { TARGETS_MARKER } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

let options;
try {
  options = parseDriverArgs(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  console.error(`${error.message}\n\n${USAGE}`);
  process.exit(EXIT.FAILED);
}
if (options.help) {
  console.log(USAGE);
  process.exit(EXIT.OK);
}

const prerequisites = checkPrerequisites(options.parts);
if (!prerequisites.ok) {
  console.error(prerequisites.message);
  process.exit(EXIT.FAILED);
}

for (const line of planLines(options.parts, options.quick)) console.log(line);
for (const note of prerequisites.notes) console.log(`Note: ${note}.`);

let current; // the running part's child process
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    // Pass it on: each part cleans up its own servers on these signals.
    current?.kill(signal);
    process.exit(128 + os.constants.signals[signal]);
  });
}

/** Runs one part; resolves with its exit code, signal and the targets of its verdict line. */
function runPart(part) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, partArgv(part, options.quick, here), { stdio: ['ignore', 'pipe', 'inherit'] });
    current = child;
    let output = '';
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      output += chunk;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) if (!line.startsWith(TARGETS_MARKER)) process.stdout.write(`${line}\n`);
    });
    child.on('error', (error) => {
      console.error(`${part.name}: could not start: ${error.message}`);
    });
    child.on('close', (exitCode, signal) => {
      current = undefined;
      if (pending && !pending.startsWith(TARGETS_MARKER)) process.stdout.write(`${pending}\n`);
      resolve({ part: part.name, exitCode: exitCode ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1), signal, targets: parseTargets(output) });
    });
  });
}

const started = performance.now();
const results = [];
for (const part of options.parts) {
  const t0 = performance.now();
  console.log(`\n=== ${part.name}: node ${partArgv(part, options.quick, path.relative(process.cwd(), here) || '.').join(' ')}\n`);
  const result = await runPart(part);
  results.push(result);
  console.log(`\n=== ${part.name}: ${result.exitCode === 0 ? 'done' : `exited with code ${result.exitCode}`} in ${formatDuration((performance.now() - t0) / 1000)}`);
}

const summary = summarize(results, options.quick);
console.log('');
for (const line of summary.lines) console.log(line);
console.log(`(${formatDuration((performance.now() - started) / 1000)} in all.)`);
process.exitCode = summary.exitCode;
