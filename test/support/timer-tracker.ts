// Tracks the timers a test creates, so that leak checks see only those: counting every timer in
// the process also counted the test runner's own (RPC, reporting), which made the check flaky
// when the machine was loaded.
import { createHook } from 'node:async_hooks';

interface Tracked {
  readonly resource: { hasRef?: () => boolean };
  readonly origin: string;
}

const live = new Map<number, Tracked>();
let tracking = false;

// Timers created by the runner itself (test timeouts, RPC, reporting) are not the test's.
const runnerCode = /node_modules[\\/](?:vitest|@vitest|tinypool|birpc|tinyspy|vite)[\\/]/;

/** The first stack frame outside this file and Node's internals: where the timer was made. */
function originOf(stack: string): string {
  const frames = stack.split('\n').slice(1);
  return frames.find((f) => !f.includes('timer-tracker') && !f.includes('node:')) ?? frames[0] ?? '';
}

createHook({
  init(asyncId, type, _trigger, resource) {
    if (!tracking || type !== 'Timeout') return;
    const origin = originOf(new Error().stack ?? '');
    if (!runnerCode.test(origin)) live.set(asyncId, { resource: resource as Tracked['resource'], origin });
  },
  destroy(asyncId) {
    live.delete(asyncId);
  },
}).enable();

/** Starts a fresh record of the timers made from now on (outside the test runner). */
export function trackTimers(): void {
  live.clear();
  tracking = true;
}

/** Timers made since {@link trackTimers} that still exist and hold the process open. */
export function refedTrackedTimers(): string[] {
  return [...live.values()].filter((t) => t.resource.hasRef?.() !== false).map((t) => t.origin.trim());
}
