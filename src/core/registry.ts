// The process-wide list of policies the introspection reads (`inspect()` and the dashboard).
// Filled once per policy at construction, read only when someone inspects: nothing per call.
// Entries are weak, so a policy that is no longer used is collected as if it was never listed.

/** What every listed policy has: a kind and the `name` it was given. */
export interface RegisteredPolicy {
  readonly kind: string;
  readonly name: string;
}

interface Registry {
  readonly refs: Set<WeakRef<RegisteredPolicy>>;
  readonly finalizer: FinalizationRegistry<WeakRef<RegisteredPolicy>>;
}

// On `globalThis` under a registered symbol, so that every copy of bulwark in the process (the
// ESM and CommonJS builds, each subpath's bundle) lists into the same registry.
const KEY = Symbol.for('bulwark.registry');

function registry(): Registry {
  const holder = globalThis as unknown as Record<symbol, Registry | undefined>;
  let r = holder[KEY];
  if (r === undefined) {
    const refs = new Set<WeakRef<RegisteredPolicy>>();
    r = { refs, finalizer: new FinalizationRegistry((ref) => refs.delete(ref)) };
    holder[KEY] = r;
  }
  return r;
}

/** Lists `policy` for introspection, weakly (internal: policies call it from their constructor). */
export function registerPolicy(policy: RegisteredPolicy): void {
  const r = registry();
  const ref = new WeakRef(policy);
  r.refs.add(ref);
  r.finalizer.register(policy, ref);
}

/** The listed policies still alive, in the order they were built. */
export function registeredPolicies(): RegisteredPolicy[] {
  const out: RegisteredPolicy[] = [];
  for (const ref of registry().refs) {
    const policy = ref.deref();
    if (policy !== undefined) out.push(policy);
  }
  return out;
}
