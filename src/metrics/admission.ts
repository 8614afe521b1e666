import { Counter, Gauge } from 'prom-client';
import { channelNames } from '../core/diagnostics.js';
import { show } from '../core/validate.js';

/**
 * Anything whose admission state the gauges read at scrape time: an `admissionController`, an
 * `adaptiveConcurrency` policy, or the inbound middleware's controller.
 * @example
 * const observed: ObservedAdmission = adaptiveConcurrency({ name: 'db' });
 */
export interface ObservedAdmission {
  snapshot(): { readonly name: string; readonly mode: string; readonly limit: number; readonly inFlight: number; readonly queued: number };
}

const CLASSES = ['sheddable', 'best-effort', 'degraded', 'critical'];

/** Checks the `admission` option: an iterable of objects with `snapshot()`. */
export function admissionOption(owner: string, value: unknown): Iterable<ObservedAdmission> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw new TypeError(`${owner}: option "admission" must be an iterable of admission controllers or adaptiveConcurrency policies, got ${show(value)}`);
  }
  const iterable = value as Iterable<unknown>;
  const oneShot = (iterable as { [Symbol.iterator](): unknown })[Symbol.iterator]() === iterable;
  const items = [...iterable];
  items.forEach((item, i) => {
    if (typeof item !== 'object' || item === null || typeof (item as ObservedAdmission).snapshot !== 'function') {
      throw new TypeError(`${owner}: option "admission" must hold objects with snapshot(), got ${show(item)} at index ${i}`);
    }
  });
  return oneShot ? (items as ObservedAdmission[]) : (iterable as Iterable<ObservedAdmission>);
}

type Bound = <L extends Record<string, string>>(labels: L) => L;
type Label = (value: unknown) => string;

/**
 * The admission metrics: the limit (from `bulwark:admission:limit`, and read at scrape time with
 * in flight and queued from the observed controllers) and rejections by policy, reason, mode and
 * class (from `bulwark:admission:rejected`).
 */
export function admissionMetrics(name: (suffix: string) => string, bound: Bound, label: Label, observed: Iterable<ObservedAdmission> | undefined) {
  const read = (set: (policy: string, s: ReturnType<ObservedAdmission['snapshot']>) => void): void => {
    if (observed === undefined) return;
    for (const o of observed) {
      // A controller that cannot be read must not fail the whole scrape.
      try {
        const s = o.snapshot();
        set(bound({ policy: label(s.name) }).policy, s);
      } catch {
        // skipped
      }
    }
  };
  type Field = 'limit' | 'inFlight' | 'queued';
  const gauge = (suffix: string, help: string, field: Field): Gauge<'policy'> => {
    const g: Gauge<'policy'> = new Gauge({
      name: name(suffix),
      help,
      labelNames: ['policy'],
      registers: [],
      collect: () => read((policy, s) => g.set({ policy }, s[field])),
    });
    return g;
  };
  const limit = gauge('admission_limit', 'Concurrency limit of each admission controller (adaptiveConcurrency, inbound admission).', 'limit');
  const inFlight = gauge('admission_in_flight', 'Permits held against each observed admission controller (read at scrape time).', 'inFlight');
  const queued = gauge('admission_queued', 'Requests waiting for a slot in each observed admission controller (read at scrape time).', 'queued');
  const rejections = new Counter({
    name: name('admission_rejections_total'),
    help: 'Requests an admission controller turned away (mode="shadow": would have), by reason and class.',
    labelNames: ['policy', 'reason', 'mode', 'priority'],
    registers: [],
  });
  type Message = Record<string, unknown>;
  const handlers: [string, (m: Message) => void][] = [
    [channelNames.admissionLimit, (m) => typeof m.to === 'number' && limit.set(bound({ policy: label(m.policy) }), m.to)],
    [
      channelNames.admissionRejected,
      (m) =>
        rejections.inc(
          bound({
            policy: label(m.policy),
            reason: label(m.reason),
            mode: m.mode === 'shadow' ? 'shadow' : 'enforce',
            priority: typeof m.priority === 'number' ? (CLASSES[m.priority] ?? 'unknown') : 'unknown',
          }),
        ),
    ],
  ];
  return { metrics: [limit, inFlight, queued, rejections] as const, handlers };
}
