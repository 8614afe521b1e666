import { describe, expect, it } from 'vitest';
import {
  type AddressedRequest,
  clientAddressResolver,
  parseAddress,
  subnetKey,
  UNKNOWN_CLIENT,
} from '../../../src/http/client-address.js';

function request(remoteAddress: string | undefined, forwardedFor?: string | string[]): AddressedRequest {
  return { socket: { remoteAddress }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } };
}

describe('parseAddress', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    [' 1.2.3.4 ', '1.2.3.4'],
    ['\t1.2.3.4', '1.2.3.4'],
    ['1.2.3.4:5678', '1.2.3.4'],
    ['1.2.3.4:0', '1.2.3.4'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:1.2.3.4', '1.2.3.4'],
    ['::ffff:0102:0304', '1.2.3.4'],
    ['[::ffff:10.0.0.1]:8080', '10.0.0.1'],
    ['0:0:0:0:0:ffff:7f00:1', '127.0.0.1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::1', '::1'],
    ['::', '::'],
    ['1::', '1::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['::1.2.3.4', '::102:304'],
  ])('reads %j as %j', (input, expected) => {
    expect(parseAddress(input)).toBe(expected);
  });

  it.each([
    [''],
    ['   '],
    ['garbage'],
    ['unknown'],
    ['1.2.3'],
    ['01.2.3.4'],
    ['256.1.1.1'],
    ['0x1.2.3.4'],
    ['1.2.3.4:'],
    ['1.2.3.4:123456'],
    ['1.2.3.4:80a'],
    ['1.2.3.4:80:80'],
    ['[1.2.3.4]'],
    ['[2001:db8::1'],
    ['[2001:db8::1]443'],
    ['2001:db8::1:443:1:1:1:1:1'],
    ['"1.2.3.4"'],
    ['1.2.3.4, 5.6.7.8'],
    ['a'.repeat(200)],
  ])('rejects %j', (input) => {
    expect(parseAddress(input)).toBeUndefined();
  });
});

describe('subnetKey', () => {
  it.each([
    ['1.2.3.4', 64, '1.2.3.4'],
    ['2001:db8:1:2:aaaa::1', 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:2:aaaa::1', 56, '2001:db8:1::/56'],
    ['2001:db8:1:2ff:aaaa::1', 56, '2001:db8:1:200::/56'],
    ['2001:db8:1:2:aaaa::1', 48, '2001:db8:1::/48'],
    ['2001:db8:1:2:aaaa::1', 1, '::/1'],
    ['ffff::1', 1, '8000::/1'],
    ['2001:db8::3', 127, '2001:db8::2/127'],
    ['2001:db8::3', 128, '2001:db8::3'],
  ])('keys %s with %i bits as %s', (address, bits, expected) => {
    expect(subnetKey(address, bits)).toBe(expected);
  });
});

describe('clientAddressResolver without trusted proxies', () => {
  const clientOf = clientAddressResolver();

  it('keys by the socket address and ignores X-Forwarded-For', () => {
    expect(clientOf(request('203.0.113.7', '198.51.100.1'))).toBe('203.0.113.7');
  });

  it('S1: a client rotating X-Forwarded-For keeps one key', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 50; i++) keys.add(clientOf(request('203.0.113.7', `10.0.0.${i}, 192.0.2.${i}`)));
    expect([...keys]).toEqual(['203.0.113.7']);
  });

  it('S2: a client rotating IPv6 addresses inside its /64 keeps one key', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 50; i++) keys.add(clientOf(request(`2001:db8:aa:bb:${i.toString(16)}:1:2:${(i * 7).toString(16)}`)));
    expect([...keys]).toEqual(['2001:db8:aa:bb::/64']);
    expect(clientOf(request('2001:db8:aa:bc::1'))).toBe('2001:db8:aa:bc::/64');
  });

  it('reads IPv4-mapped IPv6 socket addresses as IPv4', () => {
    expect(clientOf(request('::ffff:127.0.0.1'))).toBe('127.0.0.1');
  });

  it(`answers ${JSON.stringify(UNKNOWN_CLIENT)} when the socket has no address`, () => {
    expect(clientOf(request(undefined))).toBe(UNKNOWN_CLIENT);
    expect(clientOf({ socket: null, headers: {} })).toBe(UNKNOWN_CLIENT);
    expect(clientOf(request(''))).toBe(UNKNOWN_CLIENT);
  });

  it('keys IPv6 by the configured prefix', () => {
    expect(clientAddressResolver({ ipv6Subnet: 128 })(request('2001:db8::1'))).toBe('2001:db8::1');
    expect(clientAddressResolver({ ipv6Subnet: 48 })(request('2001:db8:1:2::1'))).toBe('2001:db8:1::/48');
  });
});

describe('clientAddressResolver with trusted proxies', () => {
  const clientOf = clientAddressResolver({ trustProxy: ['10.0.0.0/8', '2001:db8:ffff::/48'] });

  it.each<[string, string | string[] | undefined, string]>([
    // socket, X-Forwarded-For, client
    ['10.0.0.1', '203.0.113.7', '203.0.113.7'],
    ['10.0.0.1', '1.1.1.1, 203.0.113.7', '203.0.113.7'],
    ['10.0.0.1', '1.1.1.1, 203.0.113.7, 10.9.9.9', '203.0.113.7'],
    ['::ffff:10.0.0.1', '203.0.113.7:5555', '203.0.113.7'],
    ['10.0.0.1', '[2001:db8::1]:443', '2001:db8::/64'],
    ['10.0.0.1', '::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:ffff::1', '203.0.113.7', '203.0.113.7'],
    ['10.0.0.1', ['1.1.1.1', '203.0.113.7'], '203.0.113.7'],
    // every hop trusted: the farthest one
    ['10.0.0.1', '10.0.0.5, 10.0.0.6', '10.0.0.5'],
    // no header: the proxy itself
    ['10.0.0.1', undefined, '10.0.0.1'],
    ['10.0.0.1', '', '10.0.0.1'],
    // an unparsable entry ends the walk at the last good hop
    ['10.0.0.1', '1.1.1.1, garbage', '10.0.0.1'],
    ['10.0.0.1', '1.1.1.1, unknown, 10.0.0.9', '10.0.0.9'],
    ['10.0.0.1', '1.1.1.1,', '10.0.0.1'],
    // garbage left of the client is never read
    ['10.0.0.1', 'garbage, <script>, 203.0.113.7', '203.0.113.7'],
    // an untrusted socket: the header is ignored
    ['203.0.113.9', '1.1.1.1', '203.0.113.9'],
  ])('socket %s, X-Forwarded-For %j → %s', (socket, header, expected) => {
    expect(clientOf(request(socket, header))).toBe(expected);
  });

  it('S1: rotating X-Forwarded-For through a trusted proxy cannot escape the real client key', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 50; i++) keys.add(clientOf(request('10.0.0.1', `192.0.2.${i}, 203.0.113.7`)));
    expect([...keys]).toEqual(['203.0.113.7']);
  });

  it('handles an 8 KB hop list in linear time', () => {
    const long = `${Array.from({ length: 800 }, (_, i) => `10.${i % 250}.0.1`).join(', ')}`;
    expect(long.length).toBeGreaterThan(8_000);
    const started = performance.now();
    for (let i = 0; i < 100; i++) expect(clientOf(request('10.0.0.1', long))).toBe('10.0.0.1');
    const junk = `${'x'.repeat(8_192)}, 203.0.113.7`;
    expect(clientOf(request('10.0.0.1', junk))).toBe('203.0.113.7');
    const commas = ','.repeat(8_192);
    expect(clientOf(request('10.0.0.1', commas))).toBe('10.0.0.1');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('takes a hop count: the n nearest hops are trusted', () => {
    const one = clientAddressResolver({ trustProxy: 1 });
    expect(one(request('10.0.0.1', '1.1.1.1, 2.2.2.2'))).toBe('2.2.2.2');
    const two = clientAddressResolver({ trustProxy: 2 });
    expect(two(request('10.0.0.1', '1.1.1.1, 2.2.2.2'))).toBe('1.1.1.1');
    expect(two(request('10.0.0.1', '2.2.2.2'))).toBe('2.2.2.2');
    expect(two(request('10.0.0.1', 'junk, 2.2.2.2'))).toBe('2.2.2.2');
    expect(clientAddressResolver({ trustProxy: 0 })(request('10.0.0.1', '1.1.1.1'))).toBe('10.0.0.1');
  });

  it('with a hop count, reads X-Forwarded-For behind a proxy on a Unix socket (no socket address)', () => {
    const one = clientAddressResolver({ trustProxy: 1 });
    expect(one(request(undefined, '198.51.100.1, 203.0.113.7'))).toBe('203.0.113.7');
    expect(one(request('', '2001:db8:1:2::9'))).toBe('2001:db8:1:2::/64');
    expect(clientAddressResolver({ trustProxy: 2 })(request(undefined, '198.51.100.1, 203.0.113.7'))).toBe('198.51.100.1');
    // Nothing readable: still unknown.
    expect(one(request(undefined))).toBe(UNKNOWN_CLIENT);
    expect(one(request(undefined, 'garbage'))).toBe(UNKNOWN_CLIENT);
    // Named proxies cannot be matched without an address.
    expect(clientAddressResolver({ trustProxy: 'loopback' })(request(undefined, '203.0.113.7'))).toBe(UNKNOWN_CLIENT);
  });

  it('takes a comma-separated string and named ranges', () => {
    const r = clientAddressResolver({ trustProxy: 'loopback, 192.168.0.0/16' });
    expect(r(request('127.0.0.1', '192.168.1.1, 203.0.113.7, 192.168.5.5'))).toBe('203.0.113.7');
    expect(r(request('::1', '203.0.113.8'))).toBe('203.0.113.8');
    expect(clientAddressResolver({ trustProxy: 'uniquelocal' })(request('172.20.0.1', '203.0.113.9'))).toBe('203.0.113.9');
    expect(clientAddressResolver({ trustProxy: ['::ffff:10.0.0.0/104'] })(request('10.1.2.3', '203.0.113.9'))).toBe('203.0.113.9');
  });

  it('rejects bad options, naming them', () => {
    expect(() => clientAddressResolver({ trustProxy: true as never })).toThrow(/trustProxy/);
    expect(() => clientAddressResolver({ trustProxy: ['10.0.0.0/33'] })).toThrow(RangeError);
    expect(() => clientAddressResolver({ trustProxy: ['not-an-ip'] })).toThrow(/"not-an-ip"/);
    expect(() => clientAddressResolver({ trustProxy: ['10.0.0.1:80'] })).toThrow(TypeError);
    expect(() => clientAddressResolver({ trustProxy: [] })).toThrow(/at least one/);
    expect(() => clientAddressResolver({ trustProxy: -1 })).toThrow(RangeError);
    expect(() => clientAddressResolver({ trustProxy: 1.5 })).toThrow(RangeError);
    expect(() => clientAddressResolver({ trustProxy: { a: 1 } as never })).toThrow(TypeError);
    expect(() => clientAddressResolver({ ipv6Subnet: 0 })).toThrow(/ipv6Subnet/);
    expect(() => clientAddressResolver({ ipv6Subnet: 129 })).toThrow(RangeError);
    expect(() => clientAddressResolver({ ipv6Subnet: Number.NaN })).toThrow(RangeError);
    expect(() => clientAddressResolver({ trustproxy: 1 } as never)).toThrow(/unknown option "trustproxy"/);
  });
});
