import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { PROBLEM_CONTENT_TYPE } from '../../http/problem.js';

// Small structural views of Fastify 4 and 5, so that nothing imports fastify at runtime and the
// types fit both major versions. Members are method-shaped so that Fastify's own (more precise)
// types are accepted.

/**
 * The parts of a Fastify request the plugins read (key, cost and skip functions receive the real request).
 * @example
 * const key = (request: FastifyRequestLike) => String(request.headers['x-api-key']);
 */
export interface FastifyRequestLike {
  readonly raw: IncomingMessage;
  readonly headers: IncomingHttpHeaders;
  readonly url: string;
  readonly method: string;
  /** The client address as Fastify's `trustProxy` setting sees it. */
  readonly ip: string;
  readonly routeOptions: { readonly config?: unknown };
  readonly log: { error(object: unknown, message?: string): void };
}

/**
 * The parts of a Fastify reply the plugins use.
 * @example
 * (reply: FastifyReplyLike) => reply.header('RateLimit', '"api";r=1;t=5');
 */
export interface FastifyReplyLike {
  /** True once the response has been sent (or hijacked). */
  readonly sent?: boolean;
  code(statusCode: number): unknown;
  header(name: string, value: string): unknown;
  getHeader(name: string): unknown;
  send(payload?: unknown): unknown;
}

/** The route options an `onRoute` hook sees. */
export interface FastifyRouteOptionsLike {
  readonly url?: string;
  readonly config?: unknown;
}

/** The parts of a Fastify instance the plugins use. */
export interface FastifyInstanceLike {
  /** Fastify's version, e.g. `'5.1.0'`. */
  readonly version?: string;
  addHook(name: 'onRequest', hook: (request: FastifyRequestLike, reply: FastifyReplyLike, done: (error?: Error) => void) => void): unknown;
  addHook(name: 'onRequest', hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>): unknown;
  addHook(name: 'onRoute', hook: (routeOptions: FastifyRouteOptionsLike) => void): unknown;
  addHook(name: 'onClose', hook: (instance: unknown, done: () => void) => void): unknown;
}

/**
 * A Fastify plugin callback that `register` accepts on Fastify 4 and 5. The instance is typed
 * `unknown` here because the two versions' instance types differ; the plugin reads it as a
 * {@link FastifyInstanceLike}.
 * @example
 * const plugin: FastifyPluginLike<RateLimitPluginOptions> = rateLimitPlugin;
 */
export interface FastifyPluginLike<Options> {
  (instance: unknown, options: Options, done: (error?: Error) => void): void;
}

/**
 * Builds a callback-style plugin from `setup`, which throws on bad options: avvio does not catch
 * what a callback plugin throws, so the error goes to `done`. The plugin is exposed (see
 * {@link exposePlugin}).
 */
export function pluginOf<Options>(setup: (app: unknown, options: Options) => void, name: string): FastifyPluginLike<Options> {
  const plugin = (app: unknown, options: Options, done: (error?: Error) => void): void => {
    try {
      setup(app, options);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  };
  return exposePlugin(plugin, name);
}

/** Answers with a ready-made `application/problem+json` body and its status (and `Retry-After` when given). */
export function sendProblem(reply: FastifyReplyLike, problem: { readonly status: number; readonly body: string }, retryAfter?: string): FastifyReplyLike {
  reply.code(problem.status);
  if (retryAfter !== undefined) reply.header('Retry-After', retryAfter);
  reply.header('Content-Type', PROBLEM_CONTENT_TYPE);
  reply.send(problem.body);
  return reply;
}

/**
 * Marks a plugin as not encapsulated (its hooks apply to the instance that registers it) and
 * names it, as fastify-plugin would.
 */
export function exposePlugin<F extends object>(plugin: F, name: string): F {
  Object.defineProperty(plugin, Symbol.for('skip-override'), { value: true });
  Object.defineProperty(plugin, Symbol.for('fastify.display-name'), { value: name });
  Object.defineProperty(plugin, Symbol.for('plugin-meta'), { value: { name, fastify: '4.x || 5.x' } });
  return plugin;
}

/**
 * Reads a request's route config. The official accessor builds a fresh object on every read:
 * Fastify 5's `request.routeOptions` a dozen properties and a router query (about a tenth of what a
 * limiter adds to a request), Fastify 4's a frozen one (microseconds), whose other accessors are
 * deprecated. So the route context is read through the request's own `fastify.context` symbol,
 * found on the first request, and its `config` is the very object `routeOptions.config` returns;
 * where that symbol or that property is missing (another major version), `routeOptions` is used.
 */
export function routeConfigReader(): (request: FastifyRequestLike) => unknown {
  const official = (request: FastifyRequestLike): unknown => request.routeOptions.config;
  let symbol: symbol | null | undefined;
  return (request) => {
    if (symbol === undefined) {
      symbol = Object.getOwnPropertySymbols(request).find((s) => s.description === 'fastify.context') ?? null;
    }
    const context = symbol === null ? undefined : (request as unknown as Record<symbol, { config?: unknown } | undefined>)[symbol];
    return typeof context === 'object' && context !== null && 'config' in context ? context.config : official(request);
  };
}

/** Options `register` itself reads and passes along to the plugin; they are not the plugin's. */
export const registerOptionKeys = ['prefix', 'logLevel', 'logSerializers'] as const;
