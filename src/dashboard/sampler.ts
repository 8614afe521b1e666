// One sampler for every open dashboard page of the process: while at least one viewer is
// connected, one recording of the policies is held and one unref'd timer reads inspect() once a
// second and writes the same event to every viewer. The last viewer to leave stops the timer and
// releases the recording, so a process nobody looks at carries nothing.
import type { Disposable } from '../core/events.js';
import { inspect } from '../introspection/inspect.js';
import { recordPolicies } from '../introspection/recorder.js';

/** How often viewers get a new reading, in ms. */
export const SAMPLE_INTERVAL_MS = 1_000;

/** A viewer that has this much unsent (a client that stopped reading) is disconnected. */
export const MAX_UNSENT_BYTES = 1 << 20;

/** Where a viewer's events go: an SSE response. */
export interface Viewer {
  write(chunk: string): unknown;
  readonly writableLength: number;
  destroy(): unknown;
}

const viewers = new Set<Viewer>();
let timer: NodeJS.Timeout | undefined;
let recording: Disposable | undefined;

function event(): string {
  return `data: ${JSON.stringify(inspect())}\n\n`;
}

function tick(): void {
  const chunk = event();
  for (const viewer of viewers) {
    if (viewer.writableLength > MAX_UNSENT_BYTES) viewer.destroy();
    else viewer.write(chunk);
  }
}

/**
 * Adds a viewer, starting the sampler if it is the first, and sends it a first reading at once.
 * Returns what removes it (idempotent); the last one out stops the sampler.
 */
export function addViewer(viewer: Viewer): () => void {
  if (viewers.size === 0) {
    recording = recordPolicies();
    timer = setInterval(tick, SAMPLE_INTERVAL_MS);
    timer.unref();
  }
  viewers.add(viewer);
  viewer.write(event());
  return () => {
    if (!viewers.delete(viewer) || viewers.size > 0) return;
    clearInterval(timer);
    timer = undefined;
    recording?.dispose();
    recording = undefined;
  };
}

/** Viewers connected now, and whether the sampler runs (for tests and the docs' claims). */
export function samplerState(): { viewers: number; running: boolean } {
  return { viewers: viewers.size, running: timer !== undefined };
}
