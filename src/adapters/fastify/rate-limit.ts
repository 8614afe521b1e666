import { checkOptions, show } from '../../core/validate.js';
import { rateLimitFailedProblem } from '../../http/problem.js';
import {
  checkDecider,
  checkHttpOptions,
  checkRuleOptions,
  decideRequestNow,
  type HttpRateLimitOptions,
  RateLimitRule,
  type RateLimitRuleOptions,
  retryAfterValue,
  writeRateLimitHeaders,
} from '../../http/rate-limit-rule.js';
import type { Decider } from '../../ratelimit/rate-limit-policy.js';
import type { LimiterDecision } from '../../ratelimit/store.js';
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
 * A route's `config.rateLimit`: `false` (not limited), `true` (limited by the plugin's settings
 * even when `global` is false), or settings that replace the plugin's for this route.
 * @example
 * const rateLimit: RouteRateLimitConfig = { limiter: exportsQuota, cost: 10 };
 * app.post('/exports', { config: { rateLimit } }, handler);
 */
export type RouteRateLimitConfig =
  | boolean
  | (RateLimitRuleOptions<FastifyRequestLike> & {
      /** This route's own limiter. @default the plugin's `limiter` */
      readonly limiter?: Decider;
    });

const owner = 'rateLimitPlugin';
const routeOwner = 'rateLimitPlugin (route config.rateLimit)';
const routeKeys = ['limiter', 'key', 'cost', 'skip'] as const;

type Rule = RateLimitRule<FastifyRequestLike>;

function setOnReply(reply: FastifyReplyLike, name: string, value: string): void {
  reply.header(name, value);
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
  const baseRule = limiter === undefined ? undefined : new RateLimitRule(owner, limiter, base, shared);
  const globalRule = global ? baseRule : undefined;
  const routeRules = new WeakMap<object, Rule>();
  const configOf = routeConfigReader(instance);

  const ruleFor = (config: unknown): Rule | undefined => {
    const setting = typeof config === 'object' && config !== null ? (config as { rateLimit?: unknown }).rateLimit : undefined;
    if (setting === undefined) return globalRule;
    if (setting === false) return undefined;
    if (setting === true) {
      if (baseRule === undefined) throw new TypeError(`${routeOwner}: true needs the plugin's "limiter" option`);
      return baseRule;
    }
    if (typeof setting !== 'object' || setting === null) {
      throw new TypeError(`${routeOwner}: must be false, true or an object of options, got ${show(setting)}`);
    }
    let rule = routeRules.get(setting);
    if (rule === undefined) {
      const r = checkOptions(routeOwner, setting as Exclude<RouteRateLimitConfig, boolean>, routeKeys);
      const decider = r.limiter === undefined ? limiter : checkDecider(routeOwner, 'option "limiter"', r.limiter);
      if (decider === undefined) throw new TypeError(`${routeOwner}: option "limiter" is required when the plugin has none`);
      rule = new RateLimitRule(owner, decider, checkRuleOptions(routeOwner, r, base), shared);
      routeRules.set(setting, rule);
    }
    return rule;
  };

  // Routes declared once the plugin is loaded are checked here, so a bad route config fails at startup.
  instance.addHook('onRoute', (routeOptions: FastifyRouteOptionsLike) => {
    ruleFor(routeOptions.config);
  });

  // A callback hook, not an async one: with a memory store the decision is made at once and the
  // request goes on in this same tick, with no promise.
  instance.addHook('onRequest', function bulwarkRateLimit(request: FastifyRequestLike, reply: FastifyReplyLike, done: () => void) {
    let rule: Rule | undefined;
    let outcome: LimiterDecision | undefined | Promise<LimiterDecision | undefined>;
    try {
      rule = ruleFor(configOf(request));
      if (rule === undefined) {
        done();
        return;
      }
      outcome = decideRequestNow(rule, request, request.raw);
    } catch (error) {
      failed(request, reply, error);
      return;
    }
    if (outcome instanceof Promise) {
      const r = rule;
      // Fastify may have answered meanwhile (its handlerTimeout, say): then nothing more is sent.
      outcome.then(
        (decision) => {
          if (reply.sent !== true) decided(r, reply, done, decision);
        },
        (error: unknown) => failed(request, reply, error),
      );
    } else decided(rule, reply, done, outcome);
  });
}

/** Goes on, or answers 429 (a hook that answers does not call `done`), once the decision is made. */
function decided(rule: Rule, reply: FastifyReplyLike, done: () => void, decision: LimiterDecision | undefined): void {
  if (decision !== undefined) {
    if (rule.draft) writeRateLimitHeaders(rule, decision, reply, setOnReply);
    if (!decision.allowed) {
      sendProblem(reply, rule.denial, retryAfterValue(decision));
      return;
    }
  }
  done();
}

/** Answers 500: logged for the operator; the client learns nothing of what failed. */
function failed(request: FastifyRequestLike, reply: FastifyReplyLike, error: unknown): void {
  request.log.error({ err: error }, 'bulwark: the rate limit could not be checked');
  if (reply.sent !== true) sendProblem(reply, rateLimitFailedProblem);
}

/**
 * Fastify 4/5 plugin that takes units from a rate limiter (or quota) for each request in an
 * `onRequest` hook, keyed by the client address unless `key` says otherwise. Not encapsulated: it
 * applies to the instance that registers it. Routes may set `config: { rateLimit: false }` or their
 * own `{ limiter, key, cost, skip }`. Denials get 429, `Retry-After` and an
 * `application/problem+json` body; when `key`, `cost`, `skip` or the limiter throw, the request
 * gets a 500 problem body and the error is logged with `request.log.error`.
 * @example
 * await app.register(rateLimitPlugin, { limiter, trustProxy: 'loopback' });
 * app.post('/search', { config: { rateLimit: { limiter: searchLimiter, cost: 5 } } }, search);
 */
export const rateLimitPlugin: FastifyPluginLike<RateLimitPluginOptions> = pluginOf(setup, 'bulwark-rate-limit');
