// A timing bound under load: a decision cannot be answered while the test's own event loop is
// blocked (a busy shared machine, another process on both cores), so latency bounds allow the
// longest stall the loop itself saw during the measurement on top of what they assert.
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopStallWatch {
  /** The longest event-loop stall since the watch started (or was reset), in ms. */
  maxMs(): number;
  /** Starts counting again from now. */
  reset(): void;
  stop(): void;
}

export function watchLoopStalls(): LoopStallWatch {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return {
    maxMs: () => histogram.max / 1e6,
    reset: () => histogram.reset(),
    stop: () => histogram.disable(),
  };
}
