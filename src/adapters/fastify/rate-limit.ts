import { checkOptions, show } from '../../core/validate.js';
import { isServedPath } from '../../health/served-paths.js';
import { type ProblemResponse, rateLimitFailedProblem } from '../../http/problem.js';
import {
  checkDecider,
  checkHttpOptions,
  checkRuleOptions,
  type HttpRateLimitOptions,
  type RateLimitRuleOptions,
} from '../../http/rate-limit-options.js';
import {
  applyOutcome,
  decideRequestNow,
  type HeaderAccess,
  RateLimitRule,
  type RuleOutcome,
} from '../../http/rate-limit-rule.js';
import type { Decider } from '../../ratelimit/rate-limit-policy.js';
import {
  type FastifyInstanceLike,
  type FastifyPluginLike,
  type FastifyReplyLike,
  type FastifyRequestLike,
  type FastifyRouteOptionsLike,
  pluginOf,
  registerOptionKeys,
  routeConfigReader,
  sendProblem,
} from './types.js';

/**
 * Options of {@link rateLimitPlugin}.
 * @example
 * await app.register(rateLimitPlugin, { limiter, global: false, headers: 'draft+legacy' });
 */
export interface RateLimitPluginOptions extends HttpRateLimitOptions<FastifyRequestLike> {
  /** The rate limiter or quota; required unless `global` is false and every limited route names its own. */
  readonly limiter?: Decider;
  /** Limit every route (and not-found answers) unless a route sets `config: { rateLimit: false }`. @default true */
  readonly global?: boolean;
}

/**
 * One rule of a route's `config.rateLimit`: the route's own `limiter` (or the plugin's), and its
 * `key`, `cost` and `skip` (or the plugin's).
 * @example
 * const rule: RouteRateLimitRule = { limiter: exportsQuota, cost: 10 };
 */
export type RouteRateLimitRule = RateLimitRuleOptions<FastifyRequestLike> & {
  /** This rule's limiter. @default the plugin's `limiter` */
  readonly limiter?: Decider;
};

/**
 * A route's `config.rateLimit`: `false` (not limited), `true` (the plugin's rule, even when
 * `global` is false), one rule that replaces the plugin's for this route, or a list of rules that
 * all apply, in order (`true` in a list stands for the plugin's rule).
 * @example
 * app.post('/exports', { config: { rateLimit: [true, { limiter: exportsQuota, key: tenantOf }] } }, handler);
 */
export type RouteRateLimitConfig = boolean | RouteRateLimitRule | readonly (true | RouteRateLimitRule)[];

const owner = 'rateLimitPlugin';
const routeOwner = 'rateLimitPlugin (route config.rateLimit)';
const routeKeys = ['limiter', 'key', 'cost', 'skip', 'quotaUnit'] as const;

type Rule = RateLimitRule<FastifyRequestLike>;

const onReply: HeaderAccess<FastifyReplyLike> = {
  get: (reply, name) => reply.getHeader(name),
  set: (reply, name, value) => {
    reply.header(name, value);
  },
};

/** The limiters a rule charges: its own, or a compound limit's. */
function chargedBy(rule: Rule): readonly Decider[] {
  return rule.parts === undefined ? [rule.decider] : rule.parts.map((p) => p.decider);
}

// The global rules registered on an instance, kept on it: a child context sees its parent's
// through the prototype (Fastify makes each context with Object.create), and adds its own.
const globalRulesKey = Symbol('bulwark.rateLimit.globalRules');

/**
 * Refuses, at startup, a global rule that would meet every request beside one registered earlier
 * on this instance in a way that goes wrong: the same limiter and key at another cost (charged
 * once, at one of them) or another limiter of the same name (items the client cannot tell apart).
 */
function registerGlobal(instance: object, rule: Rule): void {
  const holder = instance as { [globalRulesKey]?: readonly Rule[] };
  const earlier = holder[globalRulesKey] ?? [];
  for (const e of earlier) {
    if (e.decider === rule.decider) {
      if (e.key === rule.key && (e.cost !== rule.cost || e.costOf !== rule.costOf)) {
        throw new TypeError(`${owner}: limiter ${show(rule.decider.name)} is registered twice on this instance with different costs; one request would be charged once, at one of them: register it once`);
      }
    } else if (e.remainingPrefix === rule.remainingPrefix) {
      throw new TypeError(`${owner}: two limiters named ${show(rule.decider.name)} are registered on this instance; give them distinct names so the headers tell them apart`);
    }
  }
  holder[globalRulesKey] = [...earlier, rule];
}

function setup(app: unknown, options: RateLimitPluginOptions): void {
  const instance = app as FastifyInstanceLike;
  const own: Record<string, unknown> = { ...(options as object) };
  for (const k of registerOptionKeys) delete own[k];
  const { options: o, rule: base, shared } = checkHttpOptions<FastifyRequestLike>(
    owner,
    own as RateLimitPluginOptions & Record<string, unknown>,
    ['limiter', 'global'],
  );
  if (o.global !== undefined && typeof o.global !== 'boolean') {
    throw new TypeError(`${owner}: option "global" must be a boolean, got ${show(o.global)}`);
  }
  const global = o.global ?? true;
  const limiter = o.limiter === undefined && !global ? undefined : checkDecider(owner, 'option "limiter"', o.limiter);
  // A plugin's rules run once per request (a route list may not name one limiter twice), so they
  // need not record their charges unless another rule shares their limiter.
  const baseRules: readonly Rule[] | undefined = limiter === undefined ? undefined : [new RateLimitRule(owner, limiter, base, shared, false)];
  const globalRules = global ? baseRules : undefined;
  if (globalRules !== undefined) registerGlobal(instance, globalRules[0]!);
  const routeRules = new WeakMap<object, readonly Rule[]>();
  const configOf = routeConfigReader();
  const exempt = shared.exemptProbes;
  const onError = shared.onError;

  const ruleOf = (setting: unknown, where: string): Rule => {
    if (setting === true) {
      if (baseRules === undefined) throw new TypeError(`${routeOwner}: ${where}true needs the plugin's "limiter" option`);
      return baseRules[0]!;
    }
    if (typeof setting !== 'object' || setting === null || Array.isArray(setting)) {
      throw new TypeError(`${routeOwner}: ${where}must be false, true, an object of options or a list of them, got ${show(setting)}`);
    }
    const r = checkOptions(routeOwner, setting as RouteRateLimitRule, routeKeys);
    const decider = r.limiter === undefined ? limiter : checkDecider(routeOwner, 'option "limiter"', r.limiter);
    if (decider === undefined) throw new TypeError(`${routeOwner}: option "limiter" is required when the plugin has none`);
    return new RateLimitRule(owner, decider, checkRuleOptions(routeOwner, r, base), shared, false);
  };

  const rulesFor = (config: unknown): readonly Rule[] | undefined => {
    const setting = typeof config === 'object' && config !== null ? (config as { rateLimit?: unknown }).rateLimit : undefined;
    if (setting === undefined) return globalRules;
    if (setting === false) return undefined;
    if (setting === true) {
      if (baseRules === undefined) throw new TypeError(`${routeOwner}: true needs the plugin's "limiter" option`);
      return baseRules;
    }
    if (typeof setting !== 'object' || setting === null) {
      throw new TypeError(`${routeOwner}: must be false, true, an object of options or a list of them, got ${show(setting)}`);
    }
    let rules = routeRules.get(setting);
    if (rules === undefined) {
      if (Array.isArray(setting)) {
        const list = setting.map((s: unknown, i) => ruleOf(s, `entry ${i}: `));
        // Caught here rather than at the first request: two rules on one limiter would charge
        // every request twice (the second is skipped at run time), or two names would make the
        // headers ambiguous.
        for (let i = 0; i < list.length; i++) {
          for (let j = 0; j < i; j++) {
            if (list[j]!.decider === list[i]!.decider) {
              throw new TypeError(`${routeOwner}: entries ${j} and ${i} use the same limiter ${show(list[i]!.decider.name)}; one request would be charged once, not twice: keep one entry`);
            }
            const both = chargedBy(list[i]!).find((d) => chargedBy(list[j]!).includes(d));
            if (both !== undefined) {
              const inside = [j, i].filter((k) => list[k]!.parts !== undefined).map((k) => `entry ${k} inside compound limit ${show(list[k]!.decider.name)}`);
              throw new TypeError(`${routeOwner}: entries ${j} and ${i} both charge limiter ${show(both.name)} (${inside.join(', ')}); one request would be charged once, not twice: keep one`);
            }
            if (list[j]!.remainingPrefix === list[i]!.remainingPrefix) {
              throw new TypeError(`${routeOwner}: entries ${j} and ${i} use limiters with the same name ${show(list[i]!.decider.name)}; give them distinct names so the headers tell them apart`);
            }
          }
        }
        rules = list;
      } else {
        rules = [ruleOf(setting, '')];
      }
      routeRules.set(setting, rules);
    }
    return rules.length === 0 ? undefined : rules;
  };

  // Routes declared once the plugin is loaded are checked here, so a bad route config fails at startup.
  instance.addHook('onRoute', (routeOptions: FastifyRouteOptionsLike) => {
    rulesFor(routeOptions.config);
  });

  /** Answers 500: reported for the operator; the client learns nothing of what failed. */
  const failed = (request: FastifyRequestLike, reply: FastifyReplyLike, error: unknown): void => {
    try {
      if (onError === undefined) request.log.error({ err: error }, 'bulwark: the rate limit could not be checked');
      else onError(error, request);
    } catch {
      // A reporter that throws must not turn one failed check into a crashed process.
    }
    if (reply.sent !== true) sendProblem(reply, rateLimitFailedProblem);
  };

  /** Applies one outcome; true to go on to the next rule. */
  const settle = (rule: Rule, outcome: RuleOutcome, request: FastifyRequestLike, reply: FastifyReplyLike): boolean => {
    let answer: ProblemResponse | undefined;
    try {
      answer = applyOutcome(rule, outcome, request.raw, reply, onReply);
    } catch (error) {
      failed(request, reply, error);
      return false;
    }
    if (answer === undefined) return true;
    sendProblem(reply, answer);
    return false;
  };

  /** Runs the rules from `from` on, in order; the first that answers ends the request (a hook that answers does not call `done`). */
  const run = (rules: readonly Rule[], from: number, request: FastifyRequestLike, reply: FastifyReplyLike, done: () => void): void => {
    for (let i = from; i < rules.length; i++) {
      const rule = rules[i]!;
      let outcome: RuleOutcome | Promise<RuleOutcome>;
      try {
        outcome = decideRequestNow(rule, request, request.raw);
      } catch (error) {
        failed(request, reply, error);
        return;
      }
      if (outcome instanceof Promise) {
        const next = i + 1;
        outcome.then(
          (o) => {
            // Fastify may have answered meanwhile (its handlerTimeout, say): then nothing more is sent.
            if (reply.sent !== true && settle(rule, o, request, reply)) run(rules, next, request, reply, done);
          },
          (error: unknown) => failed(request, reply, error),
        );
        return;
      }
      if (!settle(rule, outcome, request, reply)) return;
    }
    done();
  };

  // A callback hook, not an async one: with a memory store the decision is made at once and the
  // request goes on in this same tick, with no promise.
  instance.addHook('onRequest', function bulwarkRateLimit(request: FastifyRequestLike, reply: FastifyReplyLike, done: () => void) {
    if (exempt && isServedPath(request.url)) {
      done();
      return;
    }
    let rules: readonly Rule[] | undefined;
    try {
      rules = rulesFor(configOf(request));
    } catch (error) {
      failed(request, reply, error);
      return;
    }
    if (rules === undefined) done();
    else run(rules, 0, request, reply, done);
  });
}

/**
 * Fastify 4/5 plugin that takes units from rate limiters (or quotas) for each request in an
 * `onRequest` hook, keyed by the client address unless `key` says otherwise. Not encapsulated: it
 * applies to the instance that registers it. Routes may set `config: { rateLimit: false }`, their
 * own `{ limiter, key, cost, skip }`, or a list of rules that all apply (`true` in it is the
 * plugin's). Every rule that decides adds its item to `RateLimit-Policy` and `RateLimit`; the
 * first denial answers 429 with `Retry-After` and an `application/problem+json` body naming its
 * policy (503 when the store failed closed, 400 for a bad cost). The paths bulwark serves itself
 * pass untouched unless `exemptProbes: false`. When `key`, `cost`, `skip` or the limiter fail, the
 * request gets a 500 problem body and the error goes to `onError` (default `request.log.error`).
 * A limiter in shadow mode (`mode: 'shadow'`) never answers: a request it denies goes on with the
 * headers the 429 would have carried, to the next rule and the route. Rules that would charge one
 * limiter twice on a request, or show two items of one name, are refused at startup.
 * @example
 * await app.register(rateLimitPlugin, { limiter, trustProxy: 'loopback' });
 * app.post('/search', { config: { rateLimit: [true, { limiter: searchQuota, cost: 5 }] } }, search);
 */
export const rateLimitPlugin: FastifyPluginLike<RateLimitPluginOptions> = pluginOf(setup, 'bulwark-rate-limit');
