import { brandErrorClass, BulwarkError, fastFailError } from '../core/errors.js';

/**
 * Rejected by `adaptiveThrottle` when it turns a call away locally, before it reaches the
 * upstream: the upstream has lately accepted too few of the calls sent to it. Carries the
 * rejection probability the call drew against and the window's counts behind it.
 * @example
 * if (err instanceof ThrottledError) serveFromCache(); // the upstream is shedding: don't add to it
 */
export class ThrottledError extends BulwarkError {
  /** The probability of a local rejection at the moment of this one, in [0, maxRejectionProbability]. */
  readonly probability: number;
  /** Requests counted in the window before this one (local rejections included). */
  readonly requests: number;
  /** Requests the upstream accepted in the window. */
  readonly accepts: number;

  static {
    brandErrorClass(this, 'ERR_BULWARK_THROTTLED');
    fastFailError(this);
  }

  constructor(probability: number, requests: number, accepts: number, options?: ErrorOptions) {
    super(
      `Throttled locally (rejection probability ${Math.round(probability * 1000) / 10} %: ${accepts} of ${requests} recent requests accepted)`,
      'ERR_BULWARK_THROTTLED',
      options,
    );
    this.name = 'ThrottledError';
    this.probability = probability;
    this.requests = requests;
    this.accepts = accepts;
  }
}
