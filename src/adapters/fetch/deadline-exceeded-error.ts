import { brandErrorClass, BulwarkError, fastFailError } from '../../core/errors.js';

/**
 * Rejected by a fetch from {@link createFetch} with `propagate` on when the caller's deadline (the
 * `deadline` of the current admission scope) has passed: at once, before anything is sent, when it
 * had passed already; or when it passes while the call runs (retries and waits included), which
 * then ends the way a caller's abort does (no breaker counts it). Nobody waits for the answer.
 * @example
 * try { await api('/v1/prices'); }
 * catch (err) { if (err instanceof DeadlineExceededError) return; } // the caller has gone
 */
export class DeadlineExceededError extends BulwarkError {
  declare readonly code: 'ERR_BULWARK_DEADLINE_EXCEEDED';
  /** The deadline that passed, as epoch ms. */
  readonly deadline: number;

  static {
    brandErrorClass(this, 'ERR_BULWARK_DEADLINE_EXCEEDED');
    fastFailError(this);
  }

  constructor(deadline: number, options?: ErrorOptions) {
    super("The caller's deadline has passed", 'ERR_BULWARK_DEADLINE_EXCEEDED', options);
    this.name = 'DeadlineExceededError';
    this.deadline = deadline;
  }
}
