// Inbound fault injection, whatever the framework: which requests get a fault (the switch, the
// draw, the trusted header), what it is (a status, latency, a dropped connection), and the waits.
// The Express middleware and the Fastify plugin (src/adapters/*/fault-injection.ts) answer with it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { enabledOption, latencyOf, latencyOption, type LatencySource, randomOption, rateOption } from '../chaos/options.js';
import { faultInjectedChannel } from '../core/diagnostics.js';
import { EventEmitter, type EventSubscriber } from '../core/events.js';
import { checkOptions, countOption, nameOption, show } from '../core/validate.js';
import { isServedPath } from '../health/served-paths.js';
import { type AddressedRequest, clientAddressResolver, type TrustProxy } from './client-address.js';
import { PROBLEM_TYPES, problem, type ProblemResponse } from './problem.js';

// Method-shaped, so that a function written for a framework's own request type is accepted.
type RequestPredicate<Req> = { fn(request: Req): boolean }['fn'];
type RequestErrorFunction<Req> = { fn(error: unknown, request: Req): void }['fn'];

/** A kind of inbound fault, as a request header names it. */
export type HttpFaultKind = 'status' | 'latency' | 'abort';

/**
 * Requests asking for faults with a header: off unless given, and then believed only from the
 * peers `trustProxy` names (the same forms as the adapters' `trustProxy`: a hop count, addresses or
 * ranges; `false` is refused). The header lists kinds (`status`, `latency`, `abort`, comma-separated);
 * only kinds the injector is configured with are injected, with its configured values.
 * @example
 * const header: FaultHeaderOptions = { trustProxy: 'loopback', name: 'x-chaos' };
 */
export interface FaultHeaderOptions {
  /** Peers whose header is believed: the socket's peer must be one. Required. */
  readonly trustProxy: TrustProxy;
  /** The header's name (any case). @default 'x-bulwark-fault' */
  readonly name?: string;
}

/**
 * Options of {@link HttpFaultInjector}: the faults (a `status`, `latencyMs` before it or before the
 * request goes on, or `abort`), how often (`rate`), and for which requests.
 * @example
 * const options: HttpFaultInjectionOptions<IncomingMessage> = { rate: 0.3, status: 503, when: (req) => req.url?.startsWith('/quote') === true };
 */
export interface HttpFaultInjectionOptions<Req> {
  /**
   * Share of the requests (those `when` admits) that get the faults, in (0, 1]; 0 only with
   * `header` (faults on request only). Settable later as `.rate`.
   */
  readonly rate: number;
  /** Answer with this status (400–599) and an `application/problem+json` body instead of handling the request. */
  readonly status?: number;
  /** Hold the request this long before it goes on (or gets its status or abort), in ms, or a function giving one. */
  readonly latencyMs?: LatencySource;
  /** Destroy the connection without answering (the client sees a reset or a hang-up). Not with `status`. */
  readonly abort?: boolean;
  /** Whether faults are injected at all; settable at run time as `.enabled`. @default true */
  readonly enabled?: boolean;
  /** Only requests for which it returns `true` may get a fault (it must return a boolean). @default every request */
  readonly when?: RequestPredicate<Req>;
  /** Source of numbers in [0, 1): a request gets the faults when it draws below `rate`. @default Math.random */
  readonly random?: () => number;
  /** Let requests ask for the configured faults with a header, from trusted peers only. @default false */
  readonly header?: FaultHeaderOptions | false;
  /** Never inject into bulwark's own routes: the health probes and `/metrics` (see `isServedPath`). @default true */
  readonly exemptProbes?: boolean;
  /**
   * Told when `when` or a `latencyMs` function throws or answers wrongly; the request then gets a
   * 500 problem+json answer. @default Express: `console.error`, at most one line per 10 s; Fastify: `request.log.error`
   */
  readonly onError?: RequestErrorFunction<Req>;
  /** Name used in events. @default 'fault-injection' */
  readonly name?: string;
}

/** Payload of {@link HttpFaultInjector.onInjected}. */
export interface HttpFaultInjectedEvent {
  readonly policy: string;
  /** What the request gets in the end (`'latency'`: held, then handled as usual). */
  readonly kind: HttpFaultKind;
  /** How long it is held first, in ms (0 for none). */
  readonly latencyMs: number;
  /** Whether a trusted header asked for it (else the draw chose it). */
  readonly requested: boolean;
}

/** What one request gets. */
export interface HttpFault {
  readonly latencyMs: number;
  /** The answer, when the fault is a status. */
  readonly answer: ProblemResponse | undefined;
  readonly abort: boolean;
}

const owner = 'faultInjection';
const keys = ['rate', 'status', 'latencyMs', 'abort', 'enabled', 'when', 'random', 'header', 'exemptProbes', 'onError', 'name'] as const;
const headerKeys = ['trustProxy', 'name'] as const;

/** 500 when `when` or a `latencyMs` function failed, so no fault could be decided. */
export const faultCheckFailedProblem = problem(
  500,
  PROBLEM_TYPES.faultInjectionCheckFailed,
  'Internal Server Error',
  'The request could not be checked for fault injection.',
);

/**
 * Decides, per request, whether and which faults it gets. Built from options by the Express
 * middleware and the Fastify plugin, or by you with {@link httpFaultInjector} to hold the switch:
 * `enabled` and `rate` can be changed at run time.
 * @example
 * const faults = httpFaultInjector({ rate: 0.3, status: 503 });
 * app.use(faultInjectionMiddleware(faults));
 * faults.enabled = false; // later: stop injecting
 */
export class HttpFaultInjector<Req = unknown> {
  readonly name: string;
  /** Subscribes to injections. */
  readonly onInjected: EventSubscriber<HttpFaultInjectedEvent>;
  /** The user's `onError`, when given. */
  readonly onError: RequestErrorFunction<Req> | undefined;

  private on: boolean;
  private share: number;
  private readonly zeroAllowed: boolean;
  private readonly answer: ProblemResponse | undefined;
  private readonly latency: LatencySource | undefined;
  private readonly abort: boolean;
  private readonly when: RequestPredicate<Req> | undefined;
  private readonly random: () => number;
  private readonly exemptProbes: boolean;
  private readonly headerName: string | undefined;
  private readonly trusted: ((request: AddressedRequest) => boolean) | undefined;
  private readonly injected = new EventEmitter<HttpFaultInjectedEvent>(() => this.name);

  constructor(options: HttpFaultInjectionOptions<Req>) {
    if (options === undefined) throw new TypeError(`${owner}: options must be an object with "rate" and a fault, got undefined`);
    const o = checkOptions(owner, options, keys);
    const header = o.header === undefined || o.header === false ? undefined : checkOptions(`${owner}: option "header"`, o.header, headerKeys);
    this.zeroAllowed = header !== undefined;
    this.share = rateOption(owner, o.rate, this.zeroAllowed);
    this.on = enabledOption(owner, o.enabled);
    const status = o.status === undefined ? undefined : countOption(owner, 'status', o.status, 0, { min: 400, max: 599 });
    this.answer =
      status === undefined
        ? undefined
        : problem(status, PROBLEM_TYPES.faultInjected, STATUS_CODES[status] ?? 'Error', 'A fault was injected into this request on purpose (fault injection is on).');
    this.latency = latencyOption(owner, o.latencyMs);
    if (o.abort !== undefined && typeof o.abort !== 'boolean') throw new TypeError(`${owner}: option "abort" must be a boolean, got ${show(o.abort)}`);
    this.abort = o.abort === true;
    if (this.answer !== undefined && this.abort) {
      throw new TypeError(`${owner}: options "status" and "abort" both end the request: give one`);
    }
    if (this.answer === undefined && !this.abort && this.latency === undefined) {
      throw new TypeError(`${owner}: give at least one of "status", "latencyMs" or "abort": an injector with none injects nothing`);
    }
    if (o.when !== undefined && typeof o.when !== 'function') {
      throw new TypeError(`${owner}: option "when" must be a function (request) => boolean, got ${show(o.when)}`);
    }
    this.when = o.when;
    this.random = randomOption(owner, o.random);
    if (o.exemptProbes !== undefined && typeof o.exemptProbes !== 'boolean') {
      throw new TypeError(`${owner}: option "exemptProbes" must be a boolean, got ${show(o.exemptProbes)}`);
    }
    this.exemptProbes = o.exemptProbes ?? true;
    if (o.onError !== undefined && typeof o.onError !== 'function') {
      throw new TypeError(`${owner}: option "onError" must be a function (error, request) => void, got ${show(o.onError)}`);
    }
    this.onError = o.onError;
    this.name = nameOption(owner, o.name, 'fault-injection');
    if (header !== undefined) {
      const name = header.name ?? 'x-bulwark-fault';
      if (typeof name !== 'string' || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(name)) {
        throw new TypeError(`${owner}: option "header.name" must be an HTTP header name, got ${show(name)}`);
      }
      this.headerName = name.toLowerCase();
      this.trusted = trustedPeer(header.trustProxy);
    } else {
      this.headerName = undefined;
      this.trusted = undefined;
    }
    this.onInjected = this.injected.subscribe;
  }

  /** Whether faults are injected; set it to switch injection on or off at run time. */
  get enabled(): boolean {
    return this.on;
  }

  set enabled(value: boolean) {
    this.on = enabledOption(owner, value);
  }

  /** Share of requests injected; settable at run time (0 only with `header`). */
  get rate(): number {
    return this.share;
  }

  set rate(value: number) {
    this.share = rateOption(owner, value, this.zeroAllowed);
  }

  /**
   * The faults `request` gets, or undefined (nearly always). `url` is the URL the client sent;
   * `raw` is node's request (its socket and headers). Throws when `when` or a `latencyMs`
   * function fails: the adapter answers 500.
   */
  decide(request: Req, url: string | undefined, raw: IncomingMessage): HttpFault | undefined {
    if (!this.on) return undefined;
    if (this.exemptProbes && isServedPath(url)) return undefined;
    const when = this.when;
    if (when !== undefined) {
      const eligible: unknown = when(request);
      if (typeof eligible !== 'boolean') throw new TypeError(`${owner}: option "when" must return a boolean, got ${show(eligible)}`);
      if (!eligible) return undefined;
    }
    let latency = this.latency !== undefined;
    let answer = this.answer;
    let abort = this.abort;
    const asked = this.asked(raw);
    if (asked !== undefined) {
      latency &&= asked.includes('latency');
      if (!asked.includes('status')) answer = undefined;
      abort &&= asked.includes('abort');
    } else if (!(this.share > 0 && this.random() < this.share)) {
      return undefined;
    }
    const latencyMs = latency ? latencyOf(owner, this.latency!) : 0;
    if (this.injected.active || faultInjectedChannel.hasSubscribers) {
      const kind: HttpFaultKind = answer !== undefined ? 'status' : abort ? 'abort' : 'latency';
      this.injected.emit({ policy: this.name, kind, latencyMs, requested: asked !== undefined });
      // The channel's message has the policy's shape: `requested` is for listeners of this injector.
      if (faultInjectedChannel.hasSubscribers) faultInjectedChannel.publish({ policy: this.name, kind, latencyMs });
    }
    return { latencyMs, answer, abort };
  }

  /**
   * The configured kinds a trusted request asks for by header, or undefined: no header option, no
   * header, an untrusted peer, or no configured kind named (then the request draws as any other).
   */
  private asked(raw: IncomingMessage): HttpFaultKind[] | undefined {
    const name = this.headerName;
    if (name === undefined) return undefined;
    const value = raw.headers[name];
    if (value === undefined || !this.trusted!(raw)) return undefined;
    const kinds: HttpFaultKind[] = [];
    // At most a few short names are read, whatever the header's length.
    const text = (Array.isArray(value) ? value.join(',') : value).slice(0, 64).toLowerCase();
    for (const part of text.split(',')) {
      const kind = part.trim();
      if (kind === 'status' ? this.answer !== undefined : kind === 'abort' ? this.abort : kind === 'latency' && this.latency !== undefined) {
        kinds.push(kind as HttpFaultKind);
      }
    }
    return kinds.length > 0 ? kinds : undefined;
  }
}

/**
 * Builds an {@link HttpFaultInjector} to hand to `faultInjectionMiddleware` (bulwark/express) or
 * `faultInjectionPlugin` (bulwark/fastify), keeping `enabled` and `rate` in your hands.
 * @example
 * const faults = httpFaultInjector({ rate: 0.05, latencyMs: 500, enabled: process.env.CHAOS === '1' });
 */
export function httpFaultInjector<Req = IncomingMessage>(options: HttpFaultInjectionOptions<Req>): HttpFaultInjector<Req> {
  return new HttpFaultInjector<Req>(options);
}

/**
 * Whether `value` is an injector, from this copy of bulwark or another build of it (the CommonJS
 * entries each carry their own copy of the class).
 */
export function isInjector(value: unknown): value is HttpFaultInjector<never> {
  const v = value as Partial<HttpFaultInjector> | null;
  return value instanceof HttpFaultInjector || (typeof v === 'object' && v !== null && typeof v.decide === 'function' && typeof v.enabled === 'boolean');
}

/** An injector given to an adapter, or the options of one, checked once. */
export function injectorFrom<Req>(value: unknown): HttpFaultInjector<Req> {
  if (isInjector(value)) return value as HttpFaultInjector<Req>;
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`${owner}: the argument must be an httpFaultInjector() or its options, got ${show(value)}`);
  }
  return new HttpFaultInjector<Req>(value as HttpFaultInjectionOptions<Req>);
}

/** An address no socket peer has: what the resolver below answers only when it believes the header. */
const PROBE = '0.0.0.0';

/**
 * Whether a request's socket peer is trusted, by exactly the rules of `trustProxy`: the client
 * address resolver, asked about a request from that peer whose `X-Forwarded-For` names
 * {@link PROBE}, answers PROBE only when it believes the peer's header, that is, trusts the peer.
 */
function trustedPeer(trustProxy: unknown): (request: AddressedRequest) => boolean {
  if (trustProxy === false || trustProxy === undefined || trustProxy === 0) {
    throw new TypeError(`${owner}: option "header.trustProxy" must name the peers whose fault header is believed (a hop count, addresses or ranges), got ${show(trustProxy)}`);
  }
  const resolve = clientAddressResolver({ trustProxy: trustProxy as TrustProxy }, `${owner}: option "header"`);
  const headers = { 'x-forwarded-for': PROBE };
  return (request) => resolve({ socket: request.socket, headers }) === PROBE;
}

/**
 * Holds a request for `ms`, then calls `then(false)`; if the client goes away first, clears the
 * timer at once and calls `then(true)`. Leaves no timer or listener behind either way.
 */
export function holdRequest(response: ServerResponse, ms: number, then: (gone: boolean) => void): void {
  if (response.destroyed || response.writableEnded) {
    then(true);
    return;
  }
  const gone = (): void => {
    clearTimeout(timer);
    then(true);
  };
  const timer = setTimeout(() => {
    response.off('close', gone);
    then(false);
  }, ms);
  response.once('close', gone);
}
