// Propagation of a request's traffic class and remaining deadline between services (issue 15 §2,
// DESIGN decision 12): `bulwark/fetch` writes the two headers from the caller's admission scope,
// and the inbound adapters read them back, from trusted peers only, into the handler's scope.
import { PRIORITY_CLASSES, type Priority, type PriorityClass } from '../admission/priority.js';
import type { AdmissionScope } from '../admission/scope.js';
import { trustedPeer, type AddressedRequest, type TrustProxy } from './client-address.js';

/**
 * The header that carries a request's traffic class between services: one of `critical`,
 * `degraded`, `best-effort`, `sheddable` (or the level `3` … `0` when read).
 * @example
 * await fetch(url, { headers: { [PRIORITY_HEADER]: 'critical' } });
 */
export const PRIORITY_HEADER = 'bulwark-priority';

/**
 * The header that carries the caller's remaining deadline: whole milliseconds from when the request
 * is sent, relative (as gRPC's `grpc-timeout`), so the two hosts' clocks need not agree.
 * @example
 * await fetch(url, { headers: { [DEADLINE_HEADER]: '250' } });
 */
export const DEADLINE_HEADER = 'bulwark-deadline';

/** Longest deadline read from or written to {@link DEADLINE_HEADER}, in ms (2^31 − 1, about 24.8 days). */
export const MAX_PROPAGATED_DEADLINE_MS = 2_147_483_647;

/**
 * The value of {@link PRIORITY_HEADER} for a priority (its class name), or `undefined` for none or
 * one that is not a priority.
 * @example
 * priorityHeaderValue(3); // 'critical'
 */
export function priorityHeaderValue(priority: Priority | undefined): PriorityClass | undefined {
  if (typeof priority === 'number') return PRIORITY_CLASSES[priority];
  return priority !== undefined && PRIORITY_CLASSES.includes(priority) ? priority : undefined;
}

/**
 * The value of {@link DEADLINE_HEADER} for a deadline (epoch ms) at `nowMs`: the whole ms left,
 * rounded down, never negative, at most {@link MAX_PROPAGATED_DEADLINE_MS}.
 * @example
 * deadlineHeaderValue(Date.now() + 1_500.7, Date.now()); // '1500'
 */
export function deadlineHeaderValue(deadline: number, nowMs: number): string {
  const left = Math.floor(deadline - nowMs);
  return String(left > 0 ? Math.min(left, MAX_PROPAGATED_DEADLINE_MS) : 0);
}

/**
 * Reads {@link PRIORITY_HEADER}: a class name or a level `0`–`3`, with spaces around it allowed.
 * Anything else (a list, an unknown class, another case) is `undefined`: ignored, never an error.
 * @example
 * parsePriorityHeader(' sheddable '); // 'sheddable'
 */
export function parsePriorityHeader(value: string | readonly string[] | undefined): PriorityClass | undefined {
  if (typeof value !== 'string' || value.length > 16) return undefined;
  const text = value.trim();
  if (text.length === 1) {
    const level = text.charCodeAt(0) - 48;
    return level >= 0 && level <= 3 ? PRIORITY_CLASSES[level] : undefined;
  }
  return PRIORITY_CLASSES.includes(text as PriorityClass) ? (text as PriorityClass) : undefined;
}

/**
 * Reads {@link DEADLINE_HEADER} at `nowMs`: whole ms (digits only, at most
 * {@link MAX_PROPAGATED_DEADLINE_MS}) turned into an epoch-ms deadline. Anything else (a sign, a
 * fraction, a unit, a list, too large) is `undefined`: ignored, never an error. `0` is a deadline
 * that has passed.
 * @example
 * parseDeadlineHeader('250', 1_000); // 1_250
 */
export function parseDeadlineHeader(value: string | readonly string[] | undefined, nowMs: number): number | undefined {
  // Bounded work whatever a peer sends: a value longer than 10 digits with some spaces is not one.
  if (typeof value !== 'string' || value.length > 32) return undefined;
  const text = value.trim();
  if (text.length === 0 || text.length > 10) return undefined;
  let ms = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    ms = ms * 10 + digit;
  }
  return ms <= MAX_PROPAGATED_DEADLINE_MS ? nowMs + ms : undefined;
}

/**
 * Builds a function that reads a request's propagated priority and deadline into an admission
 * scope, when its socket peer is trusted by `trustProxy` (the rules of `clientAddressResolver`;
 * see {@link trustedPeer}). Malformed headers are ignored one by one. Returns `undefined` when
 * `trustProxy` trusts nobody (false, 0 or missing): then nothing is read at all.
 * @example
 * const read = propagatedScopeReader('myMiddleware', ['10.0.0.0/8']);
 * const scope = read?.(req, Date.now()); // { priority: 'critical', deadline: 1767225600250 }
 */
export function propagatedScopeReader(
  owner: string,
  trustProxy: TrustProxy | undefined,
): ((request: AddressedRequest, nowMs: number) => AdmissionScope | undefined) | undefined {
  const trusted = trustedPeer(owner, trustProxy);
  if (trusted === undefined) return undefined;
  return (request, nowMs) => {
    const headers = request.headers;
    const rawPriority = headers[PRIORITY_HEADER];
    const rawDeadline = headers[DEADLINE_HEADER];
    // Nearly every request from outside carries neither: no trust check then.
    if (rawPriority === undefined && rawDeadline === undefined) return undefined;
    if (!trusted(request)) return undefined;
    const priority = parsePriorityHeader(rawPriority);
    const deadline = parseDeadlineHeader(rawDeadline, nowMs);
    if (priority === undefined) return deadline === undefined ? undefined : { deadline };
    return deadline === undefined ? { priority } : { priority, deadline };
  };
}
