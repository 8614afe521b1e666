// Helpers shared by the shadow-mode tests (issue 15 §3): what a channel carried while some code
// ran, and seeded traffic, so that the same requests can be replayed in both modes.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';

/** The messages published on `channel` while `run` runs, in order. */
export async function messagesDuring<M>(channel: string, run: () => Promise<void>): Promise<M[]> {
  const seen: M[] = [];
  const listener = (m: unknown): void => void seen.push(m as M);
  subscribe(channel, listener);
  try {
    await run();
  } finally {
    unsubscribe(channel, listener);
  }
  return seen;
}

/** A seeded generator of numbers in [0, 1) (a 31-bit LCG): the same sequence on every run. */
export function seeded(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
}
