// The inbound face of admission control (issue 15 §1–2), shared by the Express middleware and the
// Fastify plugin: options read once, and what each request gets (a scope from its trusted peer's
// propagated class and deadline; a refusal when that deadline has passed).
import { type AdmissionScope, withAdmissionScope } from '../admission/scope.js';
import { checkOptions, show } from '../core/validate.js';
import type { AddressedRequest, TrustProxy } from './client-address.js';
import { propagatedScopeReader } from './propagation.js';

/**
 * Options of the propagation adapters (`propagationMiddleware`, `propagationPlugin`).
 * @example
 * const options: PropagationOptions = { trustProxy: ['10.0.0.0/8'] };
 */
export interface PropagationOptions {
  /**
   * The peers whose `bulwark-priority` and `bulwark-deadline` headers are believed, by the rules of
   * `clientAddressResolver`'s `trustProxy`: a hop count of 1 or more trusts every peer, addresses
   * and ranges (`'loopback'`, `'uniquelocal'`, `'10.0.0.0/8'`, …) trust the socket peers in them.
   * Required: an edge proxy in that list must strip the two headers from outside requests.
   */
  readonly trustProxy: TrustProxy;
}

/** Reads a request's propagated scope, at `nowMs` (epoch ms). */
export type ScopeReader = (request: AddressedRequest, nowMs: number) => AdmissionScope | undefined;

const propagationKeys = ['trustProxy'] as const;

/**
 * Reads a propagation adapter's options (dropping `ignoredKeys` first: Fastify's `register`
 * options) into the function that reads each request's scope.
 */
export function propagationSetup(owner: string, options: unknown, ignoredKeys: readonly string[] = []): ScopeReader {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${owner}: the argument must be { trustProxy }, got ${show(options)}`);
  }
  const own: Record<string, unknown> = { ...options };
  for (const k of ignoredKeys) delete own[k];
  const o = checkOptions(owner, own as Partial<PropagationOptions>, propagationKeys);
  const read = propagatedScopeReader(owner, o.trustProxy);
  if (read === undefined) {
    throw new TypeError(
      `${owner}: option "trustProxy" must name the peers whose propagated priority and deadline are believed (a hop count, addresses or ranges), got ${show(o.trustProxy)}: trusting nobody, the adapter would do nothing`,
    );
  }
  return read;
}

/** Whether the scope's propagated deadline has passed at `nowMs`: the request is then refused. */
export function deadlinePassed(scope: AdmissionScope, nowMs: number): boolean {
  return scope.deadline !== undefined && scope.deadline <= nowMs;
}

/**
 * Runs `next` inside the request's propagated scope (at once when it has none), or calls
 * `refuse(reply)` instead when the scope's deadline has passed. `next` carries the rest of the
 * request with it (Express's `next`, Fastify's `done`), so all of it runs in the scope.
 */
export function inPropagatedScope<Reply>(
  read: ScopeReader,
  request: AddressedRequest,
  reply: Reply,
  next: () => void,
  refuse: (reply: Reply) => void,
): void {
  const now = Date.now();
  const scope = read(request, now);
  if (scope === undefined) next();
  else if (deadlinePassed(scope, now)) refuse(reply);
  else withAdmissionScope(scope, next);
}
