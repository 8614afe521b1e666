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
  if (key.length === 0) throw new RangeError(`${owner}: key must be a non-empty string, got ""`);
  if (!isWellFormed(key)) {
    // UTF-8 (Redis keys, SHA-256 input) turns every lone surrogate into U+FFFD, so such keys would
    // share counters; no real client identifier holds one.
    throw new RangeError(`${owner}: key must be well-formed Unicode (it holds a lone UTF-16 surrogate), got ${show(key)}`);
  }
  const body = key.length <= MAX_KEY_LENGTH ? `k:${key}` : `h:${createHash('sha256').update(key).digest('hex')}`;
  return `${limiterName.length}:${limiterName}:${body}`;
}

/**
 * What {@link storeKey} puts before a short key (a string of 1 to {@link MAX_KEY_LENGTH}
 * characters, see {@link isShortKey}): `storeKey(owner, name, key) === shortKeyPrefix(name) + key`
 * for every such key.
 */
export function shortKeyPrefix(limiterName: string): string {
  return `${limiterName.length}:${limiterName}:k:`;
}

/** Whether `key` is valid and kept as it is (not hashed) by {@link storeKey}. */
export function isShortKey(key: unknown): key is string {
  return typeof key === 'string' && key.length !== 0 && key.length <= MAX_KEY_LENGTH && isWellFormed(key);
}

/** `String.prototype.isWellFormed` (ES2024, in every Node this package supports). */
function isWellFormed(key: string): boolean {
  return (key as unknown as { isWellFormed(): boolean }).isWellFormed();
}
