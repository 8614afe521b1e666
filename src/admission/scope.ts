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
// inbound adapter from one, bulwark/fetch from the other) see the same scope. `entered` stays false
// until a scope is first entered: until then reading the scope is a property read, not a lookup of
// the async context (the adaptive limit reads it on every call).
const shared = processShared('bulwark.admission.scope', () => ({ storage: new AsyncLocalStorage<AdmissionScope>(), entered: false }));
const storage = shared.storage;

/**
 * Runs `fn` with `scope` as the current admission scope; fields it leaves out are taken from the
 * scope around it (so a handler can narrow the priority and keep the caller's deadline).
 * @example
 * await withAdmissionScope({ priority: 'sheddable' }, () => refreshRecommendations());
 */
export function withAdmissionScope<T>(scope: AdmissionScope, fn: () => T): T {
  shared.entered = true;
  const outer = storage.getStore();
  return storage.run(outer === undefined ? scope : { ...outer, ...scope }, fn);
}

/**
 * The current admission scope, or `undefined` outside any.
 * @example
 * const priority = currentAdmissionScope()?.priority ?? 'degraded';
 */
export function currentAdmissionScope(): AdmissionScope | undefined {
  return shared.entered ? storage.getStore() : undefined;
}
