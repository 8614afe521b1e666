import type { Metric } from 'prom-client';
import type { LabelCap } from './label-cap.js';

/** The parts of a prom-client metric that removing series needs. */
interface Removable {
  readonly labelNames?: readonly string[];
  get(): Promise<{ values: { labels: Record<string, string | number> }[] }>;
  remove(labels: Record<string, string | number>): void;
}

/**
 * Removes from each metric every series whose `policy` label is one of `policies` (the
 * policies of an origin that `bulwark/fetch` dropped): its counters, and a histogram's buckets,
 * sum and count. Metrics without a `policy` label are left alone. Resolves once done; never
 * rejects (a metric that cannot be read keeps its series).
 * @example
 * await removePolicySeries([executions, duration], new Set(['api http://a:8080']));
 */
export async function removePolicySeries(metrics: readonly Metric[], policies: ReadonlySet<string>): Promise<void> {
  for (const metric of metrics as readonly unknown[] as readonly Removable[]) {
    if (!metric.labelNames?.includes('policy')) continue;
    try {
      const { values } = await metric.get();
      const done = new Set<string>();
      for (const { labels } of values) {
        if (!policies.has(String(labels.policy))) continue;
        // A histogram lists one value per bucket (`le`) and its sum and count: one series to remove.
        const { le: _bucket, ...own } = labels;
        const key = JSON.stringify(own);
        if (done.has(key)) continue;
        done.add(key);
        metric.remove(own);
      }
    } catch {
      // Never out of a channel subscriber's promise: the series stay, bounded by the label cap.
    }
  }
}

/**
 * What a registration does with a `bulwark:fetch:origin-evicted` message's `policies`: forgets
 * each name (its last seen breaker state, its place under the label cap, so a new origin can take
 * it) and removes its series from `metrics`. Anything that is not a string is ignored.
 * @example
 * forgetPolicies(['api http://a:8080'], cap, lastSeen, [executions, duration]);
 */
export function forgetPolicies(policies: unknown, cap: LabelCap, lastSeen: Map<string, unknown>, metrics: readonly Metric[]): void {
  const gone = new Set(Array.isArray(policies) ? policies.filter((p): p is string => typeof p === 'string') : []);
  for (const policy of gone) {
    lastSeen.delete(policy);
    cap.release('policy', policy);
  }
  if (gone.size > 0) void removePolicySeries(metrics, gone);
}
