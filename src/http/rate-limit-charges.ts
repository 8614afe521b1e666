// Per limiter, the requests it has charged, under which key (or keys) and at what cost: a limiter
// met again on the same request (mounted on the app and on a router, say) is not charged again,
// and one met again for the same key with another cost is refused rather than charged the first
// cost only. Kept in a WeakMap per limiter rather than in properties of the request: writing two
// properties onto Express's request cost about 6 % of a whole limited request (35k instructions
// in benchmarks/http-instructions.mjs), a WeakMap entry about 1.2k; entries go with the request.
// A limiter with a single rule over it that cannot meet a request twice (a Fastify plugin's or
// route's rule) skips even that.
import { show } from '../core/validate.js';

/** The requests a limiter has charged: one entry (or a list) per request, each its key, and `\0cost` when the cost is not 1. */
export interface Charges {
  readonly requests: WeakMap<object, string | string[]>;
  /** Rules made over this limiter. */
  rules: number;
}

/** What recording a charge needs of a rule. */
export interface ChargingRule {
  readonly owner: string;
  readonly decider: { readonly name: string };
  readonly charges: Charges;
  /** Charges are recorded even with one rule over the limiter. */
  readonly reentrant: boolean;
}

const chargesByDecider = new WeakMap<object, Charges>();

/** The charges of `decider`, shared by every rule over it. */
export function chargesOf(decider: object): Charges {
  let charges = chargesByDecider.get(decider);
  if (charges === undefined) {
    charges = { requests: new WeakMap(), rules: 0 };
    chargesByDecider.set(decider, charges);
  }
  return charges;
}

const costSuffix = /\u0000(\d+)$/;

/** An entry's key and cost. */
function parse(entry: string): [string, number] {
  const m = costSuffix.exec(entry);
  return m === null ? [entry, 1] : [entry.slice(0, m.index), Number(m[1])];
}

/**
 * Records that the rule's limiter charges `key` `cost` units on this request; false when it
 * already has. Throws when it already charged the key another cost: the second rule's cost would
 * otherwise be dropped without a word (an app-wide limiter and `{ cost: 5 }` on one route).
 */
export function firstCharge(rule: ChargingRule, raw: object, key: string, cost: number): boolean {
  const charges = rule.charges;
  if (!rule.reentrant && charges.rules === 1) return true;
  const entry = cost === 1 ? key : `${key}\u0000${cost}`;
  const seen = charges.requests.get(raw);
  if (seen === undefined) {
    charges.requests.set(raw, entry);
    return true;
  }
  if (seen === entry) return false;
  const list = typeof seen === 'string' ? [seen] : seen;
  if (list.includes(entry)) return false;
  for (const earlier of list) {
    const [k, c] = parse(earlier);
    if (k === key) {
      throw new TypeError(
        `${rule.owner}: limiter ${show(rule.decider.name)} met twice on one request for the same key, with cost ${c} and then ${cost}; ` +
          'a request is charged once per limiter and key: mount it once, with the cost you mean, or give the other cost a limiter of its own',
      );
    }
  }
  if (typeof seen === 'string') charges.requests.set(raw, [seen, entry]);
  else seen.push(entry);
  return true;
}

/** The key the rule's limiter last charged this request under. */
export function chargedKey(rule: ChargingRule, raw: object): string {
  const seen = rule.charges.requests.get(raw)!;
  return parse(typeof seen === 'string' ? seen : seen[seen.length - 1]!)[0];
}

/**
 * Records a compound limit's charge on each of its limits. Throws when one of them was charged on
 * this request already (on its own, by another rule): a compound limit charges all of its limits
 * or none, so it cannot leave that one out, and charging it again would take its units twice.
 */
export function chargeParts(rule: ChargingRule, parts: readonly ChargingRule[], raw: object, key: string, cost: number): void {
  for (const part of parts) {
    let first = false;
    try {
      first = firstCharge(part, raw, key, cost);
    } catch {
      // Charged already under another cost: the same conflict.
    }
    if (!first) {
      throw new TypeError(
        `${rule.owner}: limiter ${show(part.decider.name)} is charged on this request on its own and again inside compound limit ${show(rule.decider.name)}; ` +
          'a request is charged once per limiter: mount one of the two',
      );
    }
  }
}
