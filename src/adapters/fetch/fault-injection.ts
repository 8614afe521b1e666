// bulwark/fetch's `faultInjection` option: faults injected into each attempt in place of (or
// before) the real request, inside the attempt's breaker and timeout, so the fetch's own retries,
// breakers and failover meet them as they would meet a failing server.
import { STATUS_CODES } from 'node:http';
import { faultInjection, type FaultInjectionPolicy } from '../../chaos/fault-injection.js';
import type { Clock } from '../../core/clock.js';
import type { Context } from '../../core/context.js';
import { type ContextualPolicy, invoke, isPolicy, type Policy, runSymbol } from '../../core/policy.js';
import { checkOptions, countOption, show } from '../../core/validate.js';
import { PROBLEM_CONTENT_TYPE, PROBLEM_TYPES, problem } from '../../http/problem.js';
import type { FetchFaultInjectionOptions } from './types.js';

const keys = ['rate', 'status', 'networkError', 'latencyMs', 'enabled', 'when', 'random', 'name'] as const;

/**
 * The policy the `faultInjection` option stands for: the policy given (a `faultInjection()`, whose
 * `outcome`, if any, must make a new `Response` each time), or one made from its options.
 */
export function faultsOption(owner: string, value: unknown, clock: Clock): Policy<Response> {
  // Duck-typed: a policy from the CommonJS build of `bulwark` is another copy of the class.
  return isPolicy(value) ? (value as Policy<Response>) : fromOptions(owner, value, clock);
}

/**
 * Sends an attempt through the fault injection, in the attempt's own context: `when` sees its
 * `attempt`, and injected latency ends with the attempt's signal (its timeout, the caller's abort).
 */
export function withFaults(faults: Policy<Response>, context: Context, send: () => Promise<Response>): Promise<Response> {
  if (runSymbol in faults) return invoke(faults as ContextualPolicy<Response>, send, context) as Promise<Response>;
  const signal = context.abortable();
  return faults.execute(send, signal === undefined ? undefined : { signal });
}

function fromOptions(owner: string, value: unknown, clock: Clock): FaultInjectionPolicy<Response> {
  const name = `${owner}: option "faultInjection"`;
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`${name} must be a faultInjection() policy or its options, got ${show(value)}`);
  }
  const { status, networkError, ...rest } = checkOptions(name, value as FetchFaultInjectionOptions, keys);
  if (networkError !== undefined && typeof networkError !== 'boolean') {
    throw new TypeError(`${name}: "networkError" must be a boolean, got ${show(networkError)}`);
  }
  if (status !== undefined && networkError === true) {
    throw new TypeError(`${name}: "status" and "networkError" both end the attempt: give one`);
  }
  const code = status === undefined ? undefined : countOption(name, 'status', status, 0, { min: 400, max: 599 });
  const body = code === undefined ? undefined : problem(code, PROBLEM_TYPES.faultInjected, STATUS_CODES[code] ?? 'Error', 'A fault was injected into this attempt (fetch fault injection is on).');
  return faultInjection<Response>({
    ...rest,
    rate: rest.rate as number, // checked by the policy, with the others
    name: rest.name ?? 'fetch fault-injection',
    clock,
    ...(body === undefined
      ? {}
      : { outcome: () => new Response(body.body, { status: body.status, statusText: STATUS_CODES[body.status] ?? '', headers: { 'content-type': PROBLEM_CONTENT_TYPE } }) }),
    ...(networkError === true ? { fault: injectedNetworkError } : {}),
  });
}

/** What undici rejects with when a connection drops mid-request: a TypeError whose cause has the code. */
function injectedNetworkError(): Error {
  const cause = Object.assign(new Error('the connection was reset (an injected fault)'), { code: 'ECONNRESET' });
  return new TypeError('fetch failed', { cause });
}
