import { BlockList } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type AddressedRequest,
  clientAddressResolver,
  MAX_FORWARDED_HOPS,
  parseAddress,
  subnetKey,
  TrustedRanges,
  UNKNOWN_CLIENT,
} from '../../../src/http/client-address.js';
import { checkHttpOptions } from '../../../src/http/rate-limit-options.js';

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
    ['1.2.3.4:65535', '1.2.3.4'],
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
    ['1.2.3.4:65536'],
    ['[2001:db8::1]:99999'],
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
    ['2001:DB8:0::3', 128, '2001:db8::3'],
    // IPv4-mapped and 6to4 (2002:aabb:ccdd::/48 carries a.b.c.d): the IPv4 address, at any width.
    ['::ffff:1.2.3.4', 56, '1.2.3.4'],
    ['::ffff:102:304', 128, '1.2.3.4'],
    ['2002:cb00:7107::1', 56, '203.0.113.7'],
    ['2002:cb00:7107:ffff:1:2:3:4', 128, '203.0.113.7'],
    ['2002:c000:0201::', 16, '192.0.2.1'],
    ['2002::', 56, '0.0.0.0'],
    // Neighbours of 2002::/16 are ordinary IPv6.
    ['2003:cb00:7107::1', 56, '2003:cb00:7107::/56'],
    ['2001:2002::1', 56, '2001:2002::/56'],
  ])('keys %s with %i bits as %s', (address, bits, expected) => {
    expect(subnetKey(address, bits)).toBe(expected);
  });
});

describe('TrustedRanges', () => {
  it("matches exactly the addresses node's BlockList matches", () => {
    // A fixed pseudo-random walk over ranges of every prefix length and addresses near them.
    let seed = 12_345;
    const next = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed;
    };
    const v4 = (): string => [next() >> 23, next() >> 23, next() >> 23, next() >> 23].join('.');
    const v6 = (): string => Array.from({ length: 8 }, () => ((next() >> 15) & 0xffff).toString(16)).join(':');
    for (let round = 0; round < 40; round++) {
      const ranges = new TrustedRanges();
      const reference = new BlockList();
      const bases = [v4(), v6()];
      for (const base of bases) {
        const family = base.includes(':') ? 'ipv6' : 'ipv4';
        const prefix = next() % (family === 'ipv6' ? 129 : 33);
        const address = parseAddress(base)!;
        ranges.add(address, prefix);
        reference.addSubnet(address, prefix, family);
      }
      for (let k = 0; k < 50; k++) {
        // Addresses sharing a random number of leading characters with a base: near and far.
        const base = bases[k % 2]!;
        const fresh = k % 2 === 0 ? v4() : v6();
        const candidate = parseAddress(base.slice(0, next() % base.length) + fresh.slice(next() % base.length));
        for (const address of [candidate, parseAddress(base)].filter((a): a is string => a !== undefined)) {
          const family = address.includes(':') ? 'ipv6' : 'ipv4';
          expect(ranges.matches(address), `${address} in ${bases.join(' / ')}`).toBe(reference.check(address, family));
        }
      }
    }
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
    expect([...keys]).toEqual(['2001:db8:aa::/56']);
  });

  it('S2: a client rotating the 256 /64s of its /56 keeps one key (regression: the default was /64, 256 buckets)', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 256; i++) keys.add(clientOf(request(`2001:db8:aa:${(0x3400 + i).toString(16)}:${i.toString(16)}::1`)));
    expect([...keys]).toEqual(['2001:db8:aa:3400::/56']);
    // The next /56 is another client.
    expect(clientOf(request('2001:db8:aa:3500::1'))).toBe('2001:db8:aa:3500::/56');
  });

  it('keys a 6to4 client by its embedded IPv4 address, however it rotates below its /48', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 50; i++) keys.add(clientOf(request(`2002:cb00:7107:${i.toString(16)}::${(i * 13).toString(16)}`)));
    expect([...keys]).toEqual(['203.0.113.7']);
    expect(clientOf(request('2002:cb00:7108::1'))).toBe('203.0.113.8');
    expect(clientAddressResolver({ ipv6Subnet: 128 })(request('2002:cb00:7107:1:2:3:4:5'))).toBe('203.0.113.7');
  });

  it('reads IPv4-mapped IPv6 socket addresses as IPv4', () => {
    expect(clientOf(request('::ffff:127.0.0.1'))).toBe('127.0.0.1');
    expect(clientOf(request('::FFFF:7f00:1'))).toBe('127.0.0.1');
    expect(clientOf(request('0:0:0:0:0:ffff:203.0.113.7'))).toBe('203.0.113.7');
  });

  it(`answers ${JSON.stringify(UNKNOWN_CLIENT)} when the socket has no address`, () => {
    expect(clientOf(request(undefined))).toBe(UNKNOWN_CLIENT);
    expect(clientOf({ socket: null, headers: {} })).toBe(UNKNOWN_CLIENT);
    expect(clientOf(request(''))).toBe(UNKNOWN_CLIENT);
  });

  it('keys IPv6 by the configured prefix', () => {
    expect(clientAddressResolver({ ipv6Subnet: 128 })(request('2001:db8::1'))).toBe('2001:db8::1');
    expect(clientAddressResolver({ ipv6Subnet: 48 })(request('2001:db8:1:2::1'))).toBe('2001:db8:1::/48');
    expect(clientAddressResolver({ ipv6Subnet: 128 })(request('FE80::1%eth0'))).toBe('fe80::1');
    expect(clientOf(request('fe80::1:2:3:4%2'))).toBe('fe80::/56');
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
    ['10.0.0.1', '[2001:db8::1]:443', '2001:db8::/56'],
    ['10.0.0.1', '[2002:cb00:7107::5]:443', '203.0.113.7'],
    // any spelling of an address: trusted proxies recognized, one key per client
    ['10.0.0.1', '203.0.113.7, [2001:DB8:FFFF::9]:443', '203.0.113.7'],
    ['10.0.0.1', '203.0.113.7, 2001:db8:ffff:0:0:0:0:9', '203.0.113.7'],
    ['10.0.0.1', '203.0.113.7, ::ffff:10.1.2.3', '203.0.113.7'],
    ['10.0.0.1', '203.0.113.7, [::FFFF:A01:203]:80', '203.0.113.7'],
    ['10.0.0.1', '2001:DB8:0:0:AB::1', '2001:db8::/56'],
    ['10.0.0.1', '2001:db8:0:ff:1:2:3:4', '2001:db8::/56'],
    ['10.0.0.1', 'fe80::1%eth0', 'fe80::/56'],
    ['2001:DB8:FFFF::1', '203.0.113.7', '203.0.113.7'],
    ['10.0.0.1', '1.1.1.1, 203.0.113.7:65535', '203.0.113.7'],
    ['10.0.0.1', '1.1.1.1, [::ffff:203.0.113.7]:80, 10.1.1.1:8080', '203.0.113.7'],
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
    ['10.0.0.1', '1.1.1.1, 203.0.113.7:99999', '10.0.0.1'],
    ['10.0.0.1', '1.1.1.1, [2001:db8::1]:', '10.0.0.1'],
    ['10.0.0.1', '1.1.1.1, "203.0.113.7"', '10.0.0.1'],
    ['10.0.0.1', '1.1.1.1, 203.0.113.7 10.0.0.2', '10.0.0.1'],
    ['10.0.0.1', '1.1.1.1;for=203.0.113.7', '10.0.0.1'],
    ['10.0.0.1', `1.1.1.1, ${'9'.repeat(200)}`, '10.0.0.1'],
    // garbage left of the client is never read
    ['10.0.0.1', 'garbage, <script>, 203.0.113.7', '203.0.113.7'],
    // a spoofed trusted-looking entry left of the client is never reached
    ['10.0.0.1', '10.0.0.7, 203.0.113.7', '203.0.113.7'],
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

  it(`finds a client behind up to ${MAX_FORWARDED_HOPS - 1} trusted hops`, () => {
    const proxies = Array.from({ length: MAX_FORWARDED_HOPS - 1 }, (_, i) => `10.0.${i}.1`);
    expect(clientOf(request('10.0.0.1', ['198.51.100.1', '203.0.113.7', ...proxies].join(', ')))).toBe('203.0.113.7');
    // Exactly MAX_FORWARDED_HOPS entries, all trusted, nothing beyond: the farthest, as for short lists.
    expect(clientOf(request('10.0.0.1', ['10.9.9.9', ...proxies].join(', ')))).toBe('10.9.9.9');
  });

  it(`past ${MAX_FORWARDED_HOPS} trusted hops, keys by the rightmost entry, so padding cannot pick the key`, () => {
    // Regression: the walk went on to the left end, so a client inside a trusted range could pad the
    // header with trusted-looking hops and name any address it liked there.
    const padding = Array.from({ length: MAX_FORWARDED_HOPS }, (_, i) => `10.1.${i}.1`);
    for (const chosen of ['203.0.113.99', '198.51.100.4', '10.200.0.1']) {
      expect(clientOf(request('10.0.0.1', [chosen, ...padding, '10.0.0.42'].join(', ')))).toBe('10.0.0.42');
    }
    expect(clientOf(request('10.0.0.1', ['203.0.113.7', ...padding].join(', ')))).toBe('10.1.15.1');
  });

  describe('bounded work on long headers (regression: 8 KB of trusted hops cost 0.8–2 ms per request)', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    it(`checks at most ${MAX_FORWARDED_HOPS} entries of an 8 KB list of trusted hops, and keys by the rightmost`, () => {
      const check = vi.spyOn(TrustedRanges.prototype, 'matches');
      const long = `203.0.113.7, ${Array.from({ length: 800 }, (_, i) => `10.${i % 250}.${i >> 8}.1`).join(', ')}`;
      expect(long.length).toBeGreaterThan(8_000);
      expect(clientOf(request('10.0.0.1', long))).toBe('10.49.3.1'); // i = 799
      // One check for the socket, then one per entry read.
      expect(check).toHaveBeenCalledTimes(1 + MAX_FORWARDED_HOPS);
    });

    it('reads only the last lines of a header given as many lines', () => {
      const check = vi.spyOn(TrustedRanges.prototype, 'matches');
      const lines = ['203.0.113.7', ...Array.from({ length: 2_000 }, (_, i) => `10.2.${i % 250}.1`)];
      expect(clientOf(request('10.0.0.1', lines))).toBe('10.2.249.1');
      expect(check).toHaveBeenCalledTimes(1 + MAX_FORWARDED_HOPS);
      expect(clientOf(request('10.0.0.1', ['203.0.113.7', ...lines.slice(-MAX_FORWARDED_HOPS + 1)]))).toBe('203.0.113.7');
    });

    it('stops at an entry longer than any address without reading the rest of it', () => {
      expect(clientOf(request('10.0.0.1', `${'x'.repeat(8_192)}, 203.0.113.7`))).toBe('203.0.113.7');
      expect(clientOf(request('10.0.0.1', `203.0.113.7, ${'1'.repeat(8_192)}`))).toBe('10.0.0.1');
      expect(clientOf(request('10.0.0.1', ','.repeat(8_192)))).toBe('10.0.0.1');
      expect(clientOf(request('10.0.0.1', ' '.repeat(8_192)))).toBe('10.0.0.1');
    });
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
    expect(one(request('', '2001:db8:1:2::9'))).toBe('2001:db8:1::/56');
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
    expect(() => clientAddressResolver({ trustProxy: MAX_FORWARDED_HOPS + 1 })).toThrow(/"trustProxy".*between 0 and 16, got 17/);
    expect(() => clientAddressResolver({ trustProxy: 1.5 })).toThrow(RangeError);
    expect(() => clientAddressResolver({ trustProxy: { a: 1 } as never })).toThrow(TypeError);
    expect(() => clientAddressResolver({ ipv6Subnet: 0 })).toThrow(/ipv6Subnet/);
    expect(() => clientAddressResolver({ ipv6Subnet: 129 })).toThrow(RangeError);
    expect(() => clientAddressResolver({ ipv6Subnet: Number.NaN })).toThrow(RangeError);
    expect(() => clientAddressResolver({ trustproxy: 1 } as never)).toThrow(/unknown option "trustproxy"/);
  });

  it('refuses null for trustProxy and ipv6Subnet, naming the option and the value (regression: null meant the default)', () => {
    expect(() => clientAddressResolver({ trustProxy: null as never })).toThrow(TypeError);
    expect(() => clientAddressResolver({ trustProxy: null as never })).toThrow(/"trustProxy".*got null/);
    expect(() => clientAddressResolver({ ipv6Subnet: null as never })).toThrow(TypeError);
    expect(() => clientAddressResolver({ ipv6Subnet: null as never })).toThrow(/"ipv6Subnet".*got null/);
    // The adapters' shared options pass both through unchanged.
    expect(() => checkHttpOptions('rateLimitMiddleware', { trustProxy: null as never })).toThrow(
      /rateLimitMiddleware: option "trustProxy".*got null/,
    );
    expect(() => checkHttpOptions('rateLimitPlugin', { ipv6Subnet: null as never })).toThrow(
      /rateLimitPlugin: option "ipv6Subnet".*got null/,
    );
  });
});
