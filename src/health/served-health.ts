// The health() instances that bulwark's probe routes serve in this process. A gracefulShutdown
// given no `health` fails the readiness of these, as lightship's one shutdown does and terminus'
// does for the checks it serves: a user who serves /readyz with bulwark and forgets to pass the
// same health to the shutdown still gets readiness failing before the drain, and the log never
// says "readiness failing" while /readyz answers 200.
//
// Like the served-path list, it lives on `globalThis` under a registered symbol, so the ESM and
// CommonJS builds loaded in one process share it. Entries are weak: a health whose routes are gone
// is not kept alive by this list.
import { processShared } from '../core/process-shared.js';

/** The part of a health() instance the shutdown needs. */
export interface ShutdownableHealth {
  beginShutdown(): void;
}

function registry(): Set<WeakRef<ShutdownableHealth>> {
  return processShared('bulwark.servedHealth.v1', () => new Set<WeakRef<ShutdownableHealth>>());
}

/** Notes that a probe route serves `h` (once per instance; dead entries are dropped on the way). */
export function registerServedHealth(h: ShutdownableHealth): void {
  const set = registry();
  for (const ref of set) {
    const seen = ref.deref();
    if (seen === undefined) set.delete(ref);
    else if (seen === h) return;
  }
  set.add(new WeakRef(h));
}

/** The health instances bulwark's probe routes serve now. */
export function servedHealths(): ShutdownableHealth[] {
  const out: ShutdownableHealth[] = [];
  for (const ref of registry()) {
    const h = ref.deref();
    if (h !== undefined) out.push(h);
  }
  return out;
}
