import { describe, expect, it } from 'vitest';
import { delayHint, parseHttpDate, parseRateLimit, parseRetryAfter } from '../../../src/adapters/fetch/retry-after.js';

const MAX_MS = 2 ** 31 - 1;
const now = Date.UTC(2026, 10, 29, 12, 0, 0);

describe('parseRetryAfter (row F12)', () => {
  it('reads delta seconds as milliseconds', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
  });

  it('reads an IMF-fixdate as the time left until then', () => {
    expect(parseRetryAfter('Sun, 29 Nov 2026 12:00:05 GMT', now)).toBe(5_000);
  });

  it('reads the obsolete RFC 850 and asctime dates too', () => {
    expect(parseRetryAfter('Sunday, 29-Nov-26 12:00:07 GMT', now)).toBe(7_000);
    expect(parseRetryAfter('Sun Nov 29 12:00:09 2026', now)).toBe(9_000);
    expect(parseRetryAfter('Sun Nov  1 12:00:00 2026', Date.UTC(2026, 10, 1, 11, 59, 59))).toBe(1_000);
  });

  it('makes a date in the past a delay of 0', () => {
    expect(parseRetryAfter('Sun, 29 Nov 2026 11:00:00 GMT', now)).toBe(0);
  });

  it.each(['soon', '', '   ', '-5', '1.5', '5 seconds', '0x10', 'Sun, 31 Feb 2026 12:00:00 GMT', 'Sun, 29 Nov 2026 25:00:00 GMT', '2026-11-29T12:00:05Z', 'soon 2030'])(
    'ignores garbage %j',
    (value) => {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    },
  );

  it('gives undefined without a header', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('clamps huge values to the longest timer instead of ignoring them', () => {
    expect(parseRetryAfter('99999999999', now)).toBe(MAX_MS);
    expect(parseRetryAfter('9'.repeat(400), now)).toBe(MAX_MS); // Infinity as a number
    expect(parseRetryAfter('Fri, 01 Jan 9999 00:00:00 GMT', now)).toBe(MAX_MS);
  });
});

describe('parseHttpDate', () => {
  it('reads the three RFC 9110 forms as the same instant', () => {
    const at = Date.UTC(1994, 10, 6, 8, 49, 37);
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(at);
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(at);
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(at);
  });

  it('refuses an unknown month or a local-time date', () => {
    expect(parseHttpDate('Sun, 06 Foo 1994 08:49:37 GMT')).toBeUndefined();
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 CET')).toBeUndefined();
  });
});

describe('parseRateLimit (IETF RateLimit header)', () => {
  it('takes t of a policy with nothing remaining as the delay', () => {
    expect(parseRateLimit('"policy";r=0;t=5')).toBe(5_000);
  });

  it('takes the longest t among exhausted policies and skips those with quota left', () => {
    expect(parseRateLimit('"burst";r=0;t=1, "day";r=0;t=30, "hour";r=7;t=60')).toBe(30_000);
    expect(parseRateLimit('"hour";r=7;t=60')).toBeUndefined();
  });

  it('accepts tokens as policy names, spaces, and a t without r', () => {
    expect(parseRateLimit('default ; t=2')).toBe(2_000);
    expect(parseRateLimit('  default;r=0;t=3  ')).toBe(3_000);
  });

  it('drops invalid parameters and rejects a malformed list', () => {
    expect(parseRateLimit('"p";r=0;t=-1')).toBeUndefined();
    expect(parseRateLimit('"p";r=0;t=soon')).toBeUndefined();
    expect(parseRateLimit('"p";r=0;t=5 garbage')).toBeUndefined();
    expect(parseRateLimit('"unterminated;r=0;t=5')).toBeUndefined();
    expect(parseRateLimit(',,')).toBeUndefined();
    expect(parseRateLimit('')).toBeUndefined();
    expect(parseRateLimit(null)).toBeUndefined();
  });

  it('reads quoted names with commas and escapes', () => {
    expect(parseRateLimit('"a, \\"b\\"";r=0;t=4')).toBe(4_000);
  });
});

describe('delayHint', () => {
  it('prefers Retry-After over the RateLimit headers', () => {
    const headers = new Headers({ 'retry-after': '2', ratelimit: '"p";r=0;t=9' });
    expect(delayHint(headers, now)).toBe(2_000);
  });

  it('falls back to RateLimit when Retry-After is garbage, then to RateLimit-Reset', () => {
    expect(delayHint(new Headers({ 'retry-after': 'soon', ratelimit: '"p";r=0;t=9' }), now)).toBe(9_000);
    expect(delayHint(new Headers({ 'ratelimit-reset': '4' }), now)).toBe(4_000);
    expect(delayHint(new Headers({ 'ratelimit-reset': 'x' }), now)).toBeUndefined();
    expect(delayHint(new Headers(), now)).toBeUndefined();
  });

  it("measures a Retry-After date against the response's own Date header (no clock skew)", () => {
    const headers = new Headers({ date: 'Sun, 29 Nov 2026 10:00:00 GMT', 'retry-after': 'Sun, 29 Nov 2026 10:00:03 GMT' });
    expect(delayHint(headers, now)).toBe(3_000); // our clock is two hours ahead; still 3 s
    const badDate = new Headers({ date: 'yesterday', 'retry-after': 'Sun, 29 Nov 2026 12:00:03 GMT' });
    expect(delayHint(badDate, now)).toBe(3_000);
  });
});
