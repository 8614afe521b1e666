// Loaded before every test file: each test fails on an unhandled rejection, a timer it leaves
// running, or a MaxListeners warning, so leaks show up where they are made.
import { afterEach, beforeEach, expect } from 'vitest';
import { refedTimers } from './helpers.js';

const problems: string[] = [];

process.on('unhandledRejection', (reason) => {
  problems.push(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
});
process.on('warning', (warning) => {
  if (warning.name === 'MaxListenersExceededWarning') problems.push(`MaxListeners warning: ${warning.message}`);
});

let timersBefore = 0;

beforeEach(() => {
  problems.length = 0;
  timersBefore = refedTimers();
});

afterEach(async () => {
  // Let settled work release its timers and report late rejections before judging.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  const leaked = refedTimers() - timersBefore;
  const found = [...problems];
  problems.length = 0;
  expect(found, 'unhandled rejections and MaxListeners warnings').toEqual([]);
  expect(leaked, 'timers left running by the test').toBeLessThanOrEqual(0);
});
