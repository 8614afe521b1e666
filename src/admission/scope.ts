import { AsyncLocalStorage } from 'node:async_hooks';
import { processShared } from '../core/process-shared.js';
import type { Priority } from './priority.js';

/**
 * What the work in progress carries for admission control, through its async context: its traffic
 * class and the time (epoch ms, `Date.now()` scale) by which its caller stops waiting. Inbound
 * adapters set it from trusted peers; `bulwark/fetch` sends it on outgoing requests.
 * @example
 * withAdmissionScope({ priority: 'critical', deadline: Date.now() + 2_000 }, () => handle(req));
 */
export interface AdmissionScope {
  /** The request's traffic class. */
  readonly priority?: Priority;
  /** When the caller stops waiting, as epoch ms. */
  readonly deadline?: number;
  /** Who the work is for, for fairness inside a class. Never sent to other services. */
  readonly tenant?: string;
}

// One store per process, so the ESM and CommonJS builds of bulwark loaded side by side (an
// inbound adapter from one, bulwark/fetch from the other) see the same scope.
const storage = processShared('bulwark.admission.scope', () => new AsyncLocalStorage<AdmissionScope>());

/**
 * Runs `fn` with `scope` as the current admission scope; fields it leaves out are taken from the
 * scope around it (so a handler can narrow the priority and keep the caller's deadline).
 * @example
 * await withAdmissionScope({ priority: 'sheddable' }, () => refreshRecommendations());
 */
export function withAdmissionScope<T>(scope: AdmissionScope, fn: () => T): T {
  const outer = storage.getStore();
  return storage.run(outer === undefined ? scope : { ...outer, ...scope }, fn);
}

/**
 * The current admission scope, or `undefined` outside any.
 * @example
 * const priority = currentAdmissionScope()?.priority ?? 'degraded';
 */
export function currentAdmissionScope(): AdmissionScope | undefined {
  return storage.getStore();
}
