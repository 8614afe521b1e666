// The propagation headers (issue 15 §2): how a class and a remaining deadline are written and read,
// and that only a trusted peer's headers are believed (DESIGN decision 12). Malformed values are
// ignored one by one, never an error: they come from the network.
import { describe, expect, it } from 'vitest';
import { trustedPeer, type AddressedRequest } from '../../../src/http/client-address.js';
import {
  DEADLINE_HEADER,
  deadlineHeaderValue,
  MAX_PROPAGATED_DEADLINE_MS,
  parseDeadlineHeader,
  parsePriorityHeader,
  priorityHeaderValue,
  PRIORITY_HEADER,
  propagatedScopeReader,
} from '../../../src/http/propagation.js';

const now = 1_000_000;

function from(remoteAddress: string | undefined, headers: Record<string, string | string[]>): AddressedRequest {
  return { socket: { remoteAddress }, headers };
}

describe('propagation headers: writing', () => {
  it('names the class of a level or a class, and nothing for a value that is not a priority', () => {
    expect([3, 2, 1, 0].map((l) => priorityHeaderValue(l as 0))).toEqual(['critical', 'degraded', 'best-effort', 'sheddable']);
    expect(priorityHeaderValue('best-effort')).toBe('best-effort');
    expect(priorityHeaderValue(undefined)).toBeUndefined();
    expect(priorityHeaderValue('urgent' as never)).toBeUndefined();
    expect(priorityHeaderValue(7 as never)).toBeUndefined();
  });

  it('writes the whole ms left, rounded down, never negative, never above the cap', () => {
    expect(deadlineHeaderValue(now + 1_500.9, now)).toBe('1500');
    expect(deadlineHeaderValue(now + 0.5, now)).toBe('0');
    expect(deadlineHeaderValue(now - 20, now)).toBe('0');
    expect(deadlineHeaderValue(now + 1e12, now)).toBe(String(MAX_PROPAGATED_DEADLINE_MS));
    expect(deadlineHeaderValue(NaN, now)).toBe('0');
  });
});

describe('propagation headers: reading', () => {
  it('reads a class name or a level 0–3, spaces around it allowed', () => {
    expect(parsePriorityHeader('critical')).toBe('critical');
    expect(parsePriorityHeader(' sheddable\t')).toBe('sheddable');
    expect(parsePriorityHeader('3')).toBe('critical');
    expect(parsePriorityHeader('0')).toBe('sheddable');
  });

  it.each([['Critical'], ['critical, sheddable'], ['4'], ['-1'], [''], ['urgent'], ['x'.repeat(10_000)], [['critical']], [undefined]])(
    'ignores the priority %j',
    (value) => {
      expect(parsePriorityHeader(value as string)).toBeUndefined();
    },
  );

  it('reads whole ms as a deadline from now; 0 is a deadline that has passed', () => {
    expect(parseDeadlineHeader('250', now)).toBe(now + 250);
    expect(parseDeadlineHeader(' 007 ', now)).toBe(now + 7);
    expect(parseDeadlineHeader('0', now)).toBe(now);
    expect(parseDeadlineHeader(String(MAX_PROPAGATED_DEADLINE_MS), now)).toBe(now + MAX_PROPAGATED_DEADLINE_MS);
  });

  it.each([['-5'], ['1.5'], ['10s'], ['1e3'], [''], ['  '], ['2147483648'], ['99999999999'], ['0x10'], ['Infinity'], ['NaN'], [['5']], [undefined]])(
    'ignores the deadline %j',
    (value) => {
      expect(parseDeadlineHeader(value as string, now)).toBeUndefined();
    },
  );
});

describe('propagation headers: any bytes', () => {
  it('never throw, and read only values in range (10,000 random headers, fixed seed)', () => {
    let seed = 15;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const alphabet = '0123456789 \t-+.,eExX:;critalsheddbofgyNI\u0000\u00ff\u2028';
    for (let i = 0; i < 10_000; i++) {
      let value = '';
      const length = Math.floor(random() * (i % 100 === 0 ? 5_000 : 14));
      for (let k = 0; k < length; k++) value += alphabet[Math.floor(random() * alphabet.length)];
      const deadline = parseDeadlineHeader(value, now);
      if (deadline !== undefined) {
        expect(Number.isInteger(deadline), value).toBe(true);
        expect(deadline - now, value).toBeGreaterThanOrEqual(0);
        expect(deadline - now, value).toBeLessThanOrEqual(MAX_PROPAGATED_DEADLINE_MS);
      }
      const priority = parsePriorityHeader(value);
      if (priority !== undefined) expect(['critical', 'degraded', 'best-effort', 'sheddable'], value).toContain(priority);
    }
  });
});

describe('trustedPeer', () => {
  it('trusts nobody with trustProxy false, 0 or missing', () => {
    expect(trustedPeer('t', false)).toBeUndefined();
    expect(trustedPeer('t', 0)).toBeUndefined();
    expect(trustedPeer('t', undefined)).toBeUndefined();
  });

  it('trusts every peer with a hop count of 1 or more, and only peers in the ranges named', () => {
    expect(trustedPeer('t', 1)!(from('203.0.113.9', {}))).toBe(true);
    const ranges = trustedPeer('t', ['10.0.0.0/8', 'loopback'])!;
    expect(ranges(from('10.1.2.3', {}))).toBe(true);
    expect(ranges(from('::ffff:10.1.2.3', {}))).toBe(true);
    expect(ranges(from('::1', {}))).toBe(true);
    expect(ranges(from('11.0.0.1', {}))).toBe(false);
    expect(ranges(from(undefined, {}))).toBe(false);
  });

  it('refuses a bad trustProxy as clientAddressResolver does, naming the owner', () => {
    expect(() => trustedPeer('propagationMiddleware', true as never)).toThrow(/propagationMiddleware: option "trustProxy"/);
    expect(() => trustedPeer('propagationMiddleware', ['10.0.0.0/33'])).toThrow(RangeError);
    expect(() => trustedPeer('propagationMiddleware', 'nonsense')).toThrow(TypeError);
  });
});

describe('propagatedScopeReader', () => {
  const headers = { [PRIORITY_HEADER]: 'critical', [DEADLINE_HEADER]: '300' };

  it('reads nothing at all when nobody is trusted', () => {
    expect(propagatedScopeReader('t', false)).toBeUndefined();
  });

  it("reads a trusted peer's class and deadline into a scope", () => {
    const read = propagatedScopeReader('t', ['10.0.0.0/8'])!;
    expect(read(from('10.0.0.7', headers), now)).toEqual({ priority: 'critical', deadline: now + 300 });
    expect(read(from('10.0.0.7', { [PRIORITY_HEADER]: '1' }), now)).toEqual({ priority: 'best-effort' });
    expect(read(from('10.0.0.7', { [DEADLINE_HEADER]: '0' }), now)).toEqual({ deadline: now });
  });

  it("ignores an untrusted peer's headers: a spoofed class from loopback when only 10/8 is trusted", () => {
    const read = propagatedScopeReader('t', ['10.0.0.0/8'])!;
    expect(read(from('127.0.0.1', headers), now)).toBeUndefined();
    // X-Forwarded-For does not make a peer trusted: the socket peer must be.
    expect(read(from('127.0.0.1', { ...headers, 'x-forwarded-for': '10.0.0.7' }), now)).toBeUndefined();
  });

  it('ignores each malformed header alone, keeping the other', () => {
    const read = propagatedScopeReader('t', 1)!;
    expect(read(from('10.0.0.7', { [PRIORITY_HEADER]: 'URGENT', [DEADLINE_HEADER]: '300' }), now)).toEqual({ deadline: now + 300 });
    expect(read(from('10.0.0.7', { [PRIORITY_HEADER]: 'critical', [DEADLINE_HEADER]: '-3' }), now)).toEqual({ priority: 'critical' });
    expect(read(from('10.0.0.7', { [PRIORITY_HEADER]: 'URGENT', [DEADLINE_HEADER]: 'soon' }), now)).toBeUndefined();
    expect(read(from('10.0.0.7', {}), now)).toBeUndefined();
  });
});
