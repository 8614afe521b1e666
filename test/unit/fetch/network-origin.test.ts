// Where undici says a request failed (issue 12 §2): the origin is keyed by the very error object
// it published, and nothing else is guessed.
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { failedOrigin, watchNetworkErrors } from '../../../src/adapters/fetch/network-origin.js';
import { TimeoutError } from '../../../src/index.js';

const publish = (origin: unknown, error: unknown): void =>
  diagnosticsChannel.channel('undici:request:error').publish({ request: { origin, path: '/x' }, error });

describe('failedOrigin', () => {
  watchNetworkErrors();

  it("reads the origin of a fetch TypeError's cause, as undici published it (normalised)", () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    publish('HTTP://B.example:8080', cause);
    expect(failedOrigin(new TypeError('fetch failed', { cause }))).toBe('http://b.example:8080');
  });

  it('reads the origin of an abort reason that is a TimeoutError', () => {
    const reason = new TimeoutError(60);
    publish('http://b.example', reason);
    expect(failedOrigin(reason)).toBe('http://b.example');
  });

  it('knows nothing of errors undici did not publish, other error types, or messages without an origin', () => {
    const cause = new Error('reset');
    expect(failedOrigin(new TypeError('fetch failed', { cause }))).toBeUndefined();
    publish(undefined, cause);
    publish('not a url', cause);
    expect(failedOrigin(new TypeError('fetch failed', { cause }))).toBeUndefined();
    const other = new Error('x');
    publish('http://b.example', other);
    expect(failedOrigin(new RangeError('x', { cause: other }))).toBeUndefined();
    expect(failedOrigin(new TypeError('bad header'))).toBeUndefined();
    expect(failedOrigin(undefined)).toBeUndefined();
  });
});
