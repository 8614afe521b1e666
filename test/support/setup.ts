// Loaded before every test file: each test fails on an unhandled rejection, a timer it leaves
// running, or a MaxListeners warning, so leaks show up where they are made.
import { afterEach, beforeEach, expect } from 'vitest';
import { refedTrackedTimers, trackTimers } from './timer-tracker.js';

// One list and one pair of listeners per process: a process that runs several test files (a
// `singleFork` project, or `isolate: false`) loads this file once per file, and a listener per
// load would itself set off the warning.
const shared = globalThis as { bulwarkTestProblems?: string[] };
const problems: string[] = shared.bulwarkTestProblems ?? [];
if (shared.bulwarkTestProblems === undefined) {
  shared.bulwarkTestProblems = problems;
  process.on('unhandledRejection', (reason) => {
    problems.push(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
  });
  process.on('warning', (warning) => {
    if (warning.name === 'MaxListenersExceededWarning') problems.push(`MaxListeners warning: ${warning.message}`);
  });
}

beforeEach(() => {
  problems.length = 0;
  trackTimers();
});

afterEach(async () => {
  // Let settled work release its timers and report late rejections before judging; and let a
  // library's zero-delay timer fire (OpenTelemetry's InMemorySpanExporter answers through a
  // setTimeout of 0, which a loaded machine once left pending past the setImmediates).
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 1));
  await new Promise((resolve) => setImmediate(resolve));
  const leaked = refedTrackedTimers();
  const found = [...problems];
  problems.length = 0;
  expect(found, 'unhandled rejections and MaxListeners warnings').toEqual([]);
  expect(leaked, 'timers left running by the test (where each was made)').toEqual([]);
});
