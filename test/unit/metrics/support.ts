// Helpers for the metrics tests (not a test file itself): read series back out of a registry.
import { Registry } from 'prom-client';
import { afterEach } from 'vitest';
import { registerMetrics, type MetricsOptions, type MetricsRegistration } from '../../../src/metrics/index.js';

/** One series as prom-client reports it. */
export interface Series {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

const open: MetricsRegistration[] = [];
afterEach(() => {
  for (const r of open.splice(0)) r.dispose();
});

/** A fresh registry with bulwark's metrics in it, disposed after the test. */
export function setup(options?: MetricsOptions): { registry: Registry; registration: MetricsRegistration } {
  const registry = new Registry();
  const registration = registerMetrics(registry, options);
  open.push(registration);
  return { registry, registration };
}

/** Every series of metric `name` (collected now, as a scrape would). */
export async function series(registry: Registry, name: string): Promise<Series[]> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  if (metric === undefined) throw new Error(`no metric named ${name}`);
  return metric.values as Series[];
}

/**
 * The value of the one series of `name` whose labels are exactly `labels` (for a histogram, pass
 * `metricName`, e.g. `x_count`); undefined when there is no such series.
 */
export async function valueOf(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
  metricName?: string,
): Promise<number | undefined> {
  const found = (await series(registry, name)).filter(
    (s) =>
      (metricName === undefined || s.metricName === metricName) &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v),
  );
  if (found.length > 1) throw new Error(`${found.length} series of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** A plain error for functions to throw. */
export class Boom extends Error {
  override name = 'Boom';
}

/** Swallows a rejection the test expects. */
export function ignore(): void {}
