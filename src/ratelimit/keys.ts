import { createHash } from 'node:crypto';
import { show } from '../core/validate.js';

/** Keys longer than this are replaced by their SHA-256, so a client cannot make us store megabytes. */
export const MAX_KEY_LENGTH = 256;

/**
 * Checks a user-supplied key and turns it into the key a store uses for one limiter. The
 * encoding is injective: the limiter's name is length-prefixed, and a short key and a hashed one
 * carry different markers, so no key of one limiter can address another's counter.
 */
export function storeKey(owner: string, limiterName: string, key: unknown): string {
  if (typeof key !== 'string') {
    throw new TypeError(`${owner}: key must be a string, got ${show(key)}`);
  }
  if (key.length === 0) throw new RangeError(`${owner}: key must not be empty`);
  const body = key.length <= MAX_KEY_LENGTH ? `k:${key}` : `h:${createHash('sha256').update(key).digest('hex')}`;
  return `${limiterName.length}:${limiterName}:${body}`;
}
