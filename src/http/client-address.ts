import { isIP } from 'node:net';
import { checkOptions, countOption, show } from '../core/validate.js';

/**
 * Which proxies in front of the server may be believed about the client's address:
 * `false` (the default: nobody, the socket's peer is the client), a hop count (the `n` proxies
 * nearest the server are trusted, at most 16), or addresses and CIDR ranges (IPv4 or IPv6), given
 * as one string (comma-separated) or a list. The names `'loopback'`, `'linklocal'` and
 * `'uniquelocal'` stand for the usual ranges. At most 16 `X-Forwarded-For` entries are read per
 * request (see {@link clientAddressResolver}).
 * @example
 * const trustProxy: TrustProxy = ['loopback', '10.0.0.0/8', '2001:db8:ffff::/48'];
 */
export type TrustProxy = false | number | string | readonly string[];

/**
 * Options of {@link clientAddressResolver}.
 * @example
 * const options: ClientAddressOptions = { trustProxy: 1, ipv6Subnet: 64 };
 */
export interface ClientAddressOptions {
  /** Proxies whose `X-Forwarded-For` entries are believed. @default false */
  readonly trustProxy?: TrustProxy;
  /**
   * IPv6 clients are keyed by this many leading bits of their address (1–128): /56 is a common
   * allocation to one customer, so rotating the /64s inside it keeps one key. @default 56
   */
  readonly ipv6Subnet?: number;
}

/**
 * The parts of a request the resolver reads: node's `IncomingMessage` (and Express's request) has them.
 * @example
 * const request: AddressedRequest = { socket: { remoteAddress: '10.0.0.2' }, headers: { 'x-forwarded-for': '203.0.113.7' } };
 */
export interface AddressedRequest {
  readonly socket: { readonly remoteAddress?: string | undefined } | null | undefined;
  readonly headers: { readonly [name: string]: string | string[] | undefined };
}

/**
 * The key every request whose address cannot be known shares (its socket is already gone).
 * @example
 * if (clientOf(req) === UNKNOWN_CLIENT) console.log('client already gone');
 */
export const UNKNOWN_CLIENT = 'unknown';

const known = ['trustProxy', 'ipv6Subnet'] as const;

/** Named ranges accepted in `trustProxy`. */
const presets: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * Most `X-Forwarded-For` entries one request's walk reads, right to left. Real proxy chains have
 * fewer than 10 hops; when this many entries are all trusted proxies, the client is not looked for
 * further left and the request is keyed by the rightmost entry instead (see
 * {@link clientAddressResolver}).
 * @example
 * const limit = MAX_FORWARDED_HOPS; // 16
 */
export const MAX_FORWARDED_HOPS = 16;

/** IPv6 addresses whose keys each resolver remembers. */
const MAX_CACHED = 1_024;

/** Longest hop entry worth parsing: a bracketed IPv6 address with a zone and a port fits well within it. */
const MAX_ENTRY_LENGTH = 100;

/**
 * Reads one IP address as a client or proxy writes it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
 * `[2001:db8::1]`, `[2001:db8::1]:443`, with surrounding spaces. Returns it normalized (IPv4 as
 * dotted decimal, IPv4-mapped IPv6 as the IPv4 address, other IPv6 in its compressed lower-case
 * form without a zone), or undefined when it is not an address.
 * @example
 * parseAddress(' [::ffff:10.0.0.1]:8080 '); // '10.0.0.1'
 */
export function parseAddress(entry: string): string | undefined {
  const address = bareAddress(entry, 0, entry.length);
  return address === undefined || !address.includes(':') ? address : normalizeIPv6(address);
}

/**
 * The address written in `source` from `from` to `to`, read as {@link parseAddress} reads it, with
 * the spaces, brackets and port around it taken off but not normalized: IPv6 as written (any case,
 * a zone, an IPv4 tail). Undefined when it is not an address.
 */
function bareAddress(source: string, from: number, to: number): string | undefined {
  let start = from;
  let end = to;
  while (start < end && isBlank(source.charCodeAt(start))) start++;
  while (end > start && isBlank(source.charCodeAt(end - 1))) end--;
  if (end - start === 0 || end - start > MAX_ENTRY_LENGTH) return undefined;
  const text = start === 0 && end === source.length ? source : source.slice(start, end);
  if (text.charCodeAt(0) === 91 /* [ */) {
    const close = text.indexOf(']');
    if (close < 0 || !isPortSuffix(text, close + 1)) return undefined;
    const inner = text.slice(1, close);
    return isIP(inner) === 6 ? inner : undefined;
  }
  if (isIP(text) !== 0) return text;
  // IPv4 with a port: exactly one colon.
  const colon = text.indexOf(':');
  if (colon > 0 && text.indexOf(':', colon + 1) < 0 && isPortSuffix(text, colon)) {
    const host = text.slice(0, colon);
    if (isIP(host) === 4) return host;
  }
  return undefined;
}

function isBlank(code: number): boolean {
  return code === 32 || code === 9;
}

/** True when `text` from `at` is empty or `:` followed by a port number (1 to 5 digits, at most 65535). */
function isPortSuffix(text: string, at: number): boolean {
  if (at === text.length) return true;
  if (text.charCodeAt(at) !== 58 /* : */) return false;
  const digits = text.length - at - 1;
  if (digits < 1 || digits > 5) return false;
  let port = 0;
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    port = port * 10 + (c - 48);
  }
  return port <= 65_535;
}

/** The 32 bits of a dotted IPv4 address `isIP` accepts, as an unsigned number. */
function ipv4Bits(address: string, from = 0, to = address.length): number {
  let value = 0;
  let octet = 0;
  for (let i = from; i < to; i++) {
    const c = address.charCodeAt(i);
    if (c === 46 /* . */) {
      value = (value << 8) | octet;
      octet = 0;
    } else octet = octet * 10 + (c - 48);
  }
  return ((value << 8) | octet) >>> 0;
}

/** The eight 16-bit groups of an address `isIP` accepts as IPv6 (a zone is dropped). */
function ipv6Groups(address: string): number[] {
  // One pass over the characters, no substrings: this runs for every IPv6 hop a walk reads.
  const percent = address.indexOf('%');
  const end = percent < 0 ? address.length : percent;
  const groups = [0, 0, 0, 0, 0, 0, 0, 0];
  let count = 0;
  let gap = -1; // where `::` stands, in groups
  let value = 0;
  let digits = 0;
  for (let i = 0; i < end; i++) {
    const c = address.charCodeAt(i);
    if (c === 58 /* : */) {
      if (digits > 0) groups[count++] = value;
      value = 0;
      digits = 0;
      if (address.charCodeAt(i + 1) === 58) {
        gap = count;
        i++;
      }
    } else if (c === 46 /* . */) {
      // An embedded IPv4 tail (`::ffff:1.2.3.4`) is the last two groups.
      const v4 = ipv4Bits(address, address.lastIndexOf(':', i) + 1, end);
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      digits = 0;
      break;
    } else {
      value = (value << 4) | (c <= 57 ? c - 48 : (c | 32) - 87);
      digits++;
    }
  }
  if (digits > 0) groups[count++] = value;
  if (gap >= 0 && count < 8) {
    // Move the groups after `::` to the end; zeros fill the gap.
    const shift = 8 - count;
    for (let k = count - 1; k >= gap; k--) {
      groups[k + shift] = groups[k]!;
      groups[k] = 0;
    }
  }
  return groups;
}

const HEX = '0123456789abcdef';

/** A 16-bit group in lower-case hex without leading zeros. */
function hexGroup(g: number): string {
  if (g < 0x10) return HEX[g]!;
  if (g < 0x100) return HEX[g >> 4]! + HEX[g & 15]!;
  if (g < 0x1000) return HEX[g >> 8]! + HEX[(g >> 4) & 15]! + HEX[g & 15]!;
  return HEX[g >> 12]! + HEX[(g >> 8) & 15]! + HEX[(g >> 4) & 15]! + HEX[g & 15]!;
}

/** Formats eight groups in the RFC 5952 form: lower case, no leading zeros, longest zero run as `::`. */
function formatIPv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  // Built by concatenation, not slice/map/join: this runs for every IPv6 hop a walk reads.
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLength - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += hexGroup(groups[i]!);
  }
  return out;
}

function isMapped(groups: readonly number[]): boolean {
  return groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff;
}

/** The dotted IPv4 address held in two 16-bit groups. */
function ipv4Of(high: number, low: number): string {
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

function normalizeIPv6(address: string): string {
  const groups = ipv6Groups(address);
  if (isMapped(groups)) return ipv4Of(groups[6]!, groups[7]!);
  return formatIPv6(groups);
}

/**
 * The key for an address: IPv4 as it is; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) and 6to4
 * (`2002:aabb:ccdd::/48`, RFC 3056) as the IPv4 address they carry, whatever `bits` is, since every
 * address under one 6to4 prefix belongs to the site behind that one IPv4 address; other IPv6 as its
 * leading `bits` (`2001:db8:1::/56`), or the whole address when `bits` is 128.
 * @example
 * subnetKey('2001:db8:1:2:aaaa::1', 56); // '2001:db8:1::/56'
 * subnetKey('2002:cb00:7107:5::1', 56); // '203.0.113.7'
 */
export function subnetKey(address: string, bits: number): string {
  if (!address.includes(':')) return address;
  const groups = ipv6Groups(address);
  if (isMapped(groups)) return ipv4Of(groups[6]!, groups[7]!);
  if (groups[0] === 0x2002) return ipv4Of(groups[1]!, groups[2]!);
  if (bits >= 128) return formatIPv6(groups);
  for (let i = 0; i < 8; i++) {
    const keep = Math.min(16, Math.max(0, bits - i * 16));
    groups[i] = keep === 0 ? 0 : groups[i]! & ((0xffff << (16 - keep)) & 0xffff);
  }
  return `${formatIPv6(groups)}/${bits}`;
}

/**
 * The trusted proxies' ranges, matched against normalized addresses with integer masks (node's
 * `BlockList.check` builds an object per call and costs microseconds; this runs for every hop).
 * @internal
 */
export class TrustedRanges {
  /** IPv4 ranges: network bits and mask, in pairs. */
  private readonly v4: number[] = [];
  /** IPv6 ranges: eight network groups then eight group masks each. */
  private readonly v6: number[] = [];

  /** Adds `address/prefix`; `address` normalized (dotted IPv4, or IPv6). */
  add(address: string, prefix: number): void {
    if (!address.includes(':')) {
      const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
      this.v4.push((ipv4Bits(address) & mask) >>> 0, mask);
      return;
    }
    const groups = ipv6Groups(address);
    const masks = groups.map((_, i) => {
      const keep = Math.min(16, Math.max(0, prefix - i * 16));
      return (0xffff << (16 - keep)) & 0xffff;
    });
    this.v6.push(...groups.map((g, i) => g & masks[i]!), ...masks);
  }

  /** Whether `address` (IPv4, or IPv6 in any form `isIP` accepts; IPv4-mapped counts as IPv4) is in one of the ranges. */
  matches(address: string): boolean {
    if (!address.includes(':')) return this.matchesIPv4(ipv4Bits(address));
    const groups = ipv6Groups(address);
    if (isMapped(groups)) return this.matchesIPv4(((groups[6]! << 16) | groups[7]!) >>> 0);
    const v6 = this.v6;
    next: for (let r = 0; r < v6.length; r += 16) {
      for (let k = 0; k < 8; k++) if (((groups[k]! ^ v6[r + k]!) & v6[r + 8 + k]!) !== 0) continue next;
      return true;
    }
    return false;
  }

  private matchesIPv4(bits: number): boolean {
    const v4 = this.v4;
    for (let i = 0; i < v4.length; i += 2) if (((bits ^ v4[i]!) & v4[i + 1]!) === 0) return true;
    return false;
  }
}

/** Builds the trusted ranges from the option, naming the bad entry when one is wrong. */
function trustList(owner: string, value: string | readonly string[]): TrustedRanges {
  const entries = (typeof value === 'string' ? value.split(',') : value).flatMap((e) => {
    if (typeof e !== 'string') throw new TypeError(`${owner}: option "trustProxy" entries must be strings, got ${show(e)}`);
    const t = e.trim();
    return presets[t] ?? [t];
  });
  if (entries.length === 0) throw new TypeError(`${owner}: option "trustProxy" must name at least one address or range`);
  const list = new TrustedRanges();
  for (const entry of entries) {
    const slash = entry.indexOf('/');
    const host = slash < 0 ? entry : entry.slice(0, slash);
    const family = isIP(host);
    const address = family === 4 ? host : family === 6 ? normalizeIPv6(host) : undefined;
    if (address === undefined) {
      throw new TypeError(
        `${owner}: option "trustProxy" entry ${show(entry)} is not an IP address, a CIDR range, 'loopback', 'linklocal' or 'uniquelocal'`,
      );
    }
    const v4 = !address.includes(':');
    const max = v4 ? 32 : 128;
    let prefix = max;
    if (slash >= 0) {
      const text = entry.slice(slash + 1);
      prefix = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
      // A mapped IPv6 range given with its IPv6 prefix length is an IPv4 range 96 bits shorter.
      if (v4 && host.includes(':')) prefix -= 96;
      if (!(prefix >= 0 && prefix <= max)) {
        throw new RangeError(`${owner}: option "trustProxy" entry ${show(entry)} has a prefix length outside 0–${max}`);
      }
    }
    list.add(address, prefix);
  }
  return list;
}

/** The socket peer's address, normalized as the trusted ranges read it; undefined when there is none. */
function socketAddress(request: AddressedRequest): string | undefined {
  const raw = request.socket?.remoteAddress;
  if (typeof raw !== 'string' || raw.length === 0) return undefined;
  // Node reports plain dotted IPv4 for IPv4 sockets, and `::ffff:a.b.c.d` for IPv4 clients of a
  // dual-stack server (the default for listen(port)): both without parsing.
  if (!raw.includes(':')) return raw;
  if (raw.startsWith('::ffff:') && isIP(raw.slice(7)) === 4) return raw.slice(7);
  // IPv6 as node writes it is kept as it is: keyOf and the trusted ranges read any form.
  return isIP(raw) === 6 ? raw : parseAddress(raw);
}

/** A `trustProxy` other than false or 0, read: a hop count, or named ranges. */
function trustRule(owner: string, trust: TrustProxy): { readonly hops: number; readonly trusted: TrustedRanges | undefined } {
  if ((trust as unknown) === true) {
    throw new TypeError(
      `${owner}: option "trustProxy" must be false, a hop count, or the proxies' addresses or ranges; true would let any client choose its own address`,
    );
  }
  if (typeof trust === 'number') {
    return { hops: countOption(owner, 'trustProxy', trust, 0, { min: 0, max: MAX_FORWARDED_HOPS }), trusted: undefined };
  }
  if (typeof trust === 'string' || Array.isArray(trust)) {
    return { hops: Infinity, trusted: trustList(owner, trust as string | readonly string[]) };
  }
  throw new TypeError(`${owner}: option "trustProxy" must be false, a hop count, or addresses and ranges, got ${show(trust)}`);
}

/**
 * Builds a function that tells whether a request's socket peer is trusted by `trustProxy`, by the
 * rules {@link clientAddressResolver} applies to the nearest hop: with a hop count of at least 1
 * every peer is (a peer without an address too); with named ranges, a peer whose address is in
 * one. Returns `undefined` when `trustProxy` is false, 0 or missing: nobody is trusted. Used to
 * decide whose word is taken about more than its address (propagated priority and deadline).
 * @example
 * const trusted = trustedPeer('propagation', ['10.0.0.0/8']);
 * const believe = trusted !== undefined && trusted(req);
 */
export function trustedPeer(owner: string, trust: TrustProxy | undefined): ((request: AddressedRequest) => boolean) | undefined {
  if (trust === undefined || trust === false || trust === 0) return undefined;
  const { hops, trusted } = trustRule(owner, trust);
  if (trusted === undefined) return hops >= 1 ? () => true : undefined;
  return (request) => {
    const address = socketAddress(request);
    return address !== undefined && trusted.matches(address);
  };
}

/**
 * Builds a function that tells a request's client address, as a key for rate limiting: the
 * socket's peer unless `trustProxy` names the proxies in front of the server. With trusted
 * proxies, `X-Forwarded-For` is walked from the right (nearest hop) to the left, skipping trusted
 * proxies; the first untrusted address is the client. An entry that is not an address ends the
 * walk (nothing to its left can be believed), and the client is then the last good hop seen.
 * The walk reads at most 16 entries (`MAX_FORWARDED_HOPS`): when that many are all trusted and
 * more remain to their left, the request is keyed by the rightmost entry (the address the nearest
 * proxy saw), which a client cannot choose by padding the header. IPv4-mapped IPv6 is read as
 * IPv4; 6to4 addresses are keyed by their embedded IPv4 address, other IPv6 by their `ipv6Subnet`
 * prefix (see {@link subnetKey}); a request whose socket has no address (already closed, or a Unix
 * socket) gets {@link UNKNOWN_CLIENT}, unless a hop count is trusted and `X-Forwarded-For` names
 * the client.
 * @example
 * const clientOf = clientAddressResolver({ trustProxy: ['10.0.0.0/8'] });
 * const key = clientOf(req); // e.g. '203.0.113.7' or '2001:db8:aa00::/56'
 */
export function clientAddressResolver(
  options?: ClientAddressOptions,
  owner = 'clientAddressResolver',
): (request: AddressedRequest) => string {
  const o = checkOptions(owner, options, known);
  const bits = countOption(owner, 'ipv6Subnet', o.ipv6Subnet, 56, { min: 1, max: 128 });
  const trust = o.trustProxy;
  // IPv6 keys take some parsing; a small cache spares it for clients seen again. Cleared when full,
  // so a flood of distinct addresses costs memory for at most MAX_CACHED of them.
  const ipv6Keys = new Map<string, string>();
  const keyOf = (address: string): string => {
    if (!address.includes(':')) return address;
    let key = ipv6Keys.get(address);
    if (key === undefined) {
      key = subnetKey(address, bits);
      if (ipv6Keys.size >= MAX_CACHED) ipv6Keys.clear();
      ipv6Keys.set(address, key);
    }
    return key;
  };
  if (trust === undefined || trust === false || trust === 0) {
    return (request) => {
      const address = socketAddress(request);
      return address === undefined ? UNKNOWN_CLIENT : keyOf(address);
    };
  }
  const { hops, trusted } = trustRule(owner, trust);
  const isTrusted = (address: string, hop: number): boolean =>
    trusted === undefined ? hop < hops : trusted.matches(address);

  return (request) => {
    let current = socketAddress(request);
    if (current === undefined) {
      // No peer address (a proxy on a Unix socket, or a socket already closed): a hop count still
      // says the peer is a trusted proxy; named proxies cannot be matched.
      if (trusted !== undefined) return UNKNOWN_CLIENT;
    } else if (!isTrusted(current, 0)) return keyOf(current);
    const header = request.headers['x-forwarded-for'];
    // Each header line holds at least one entry, so the last MAX_FORWARDED_HOPS + 1 lines hold every
    // entry the walk can read and show whether any lies beyond them.
    const list =
      typeof header === 'string' ? header : Array.isArray(header) ? header.slice(-MAX_FORWARDED_HOPS - 1).join(',') : '';
    // Right to left, one entry at a time, never reading more than MAX_FORWARDED_HOPS entries of
    // MAX_ENTRY_LENGTH characters: the work per request is bounded whatever the header's size.
    let end = list.length;
    let rightmost: string | undefined;
    for (let hop = 1; end > 0; hop++) {
      // Every entry read so far is a trusted proxy, and there are more: an attacker inside a trusted
      // range could pad the header to put an address of its choice here, so take the nearest
      // proxy's word instead.
      if (hop > MAX_FORWARDED_HOPS) return keyOf(rightmost!);
      const floor = end > MAX_ENTRY_LENGTH ? end - MAX_ENTRY_LENGTH - 1 : 0;
      let start = end;
      while (start > floor && list.charCodeAt(start - 1) !== 44 /* , */) start--;
      // No comma within an address's length: the entry is too long to be one.
      if (start > 0 && list.charCodeAt(start - 1) !== 44) break;
      const entry = bareAddress(list, start, end);
      if (entry === undefined) break;
      current = entry;
      if (hop === 1) rightmost = entry;
      if (!isTrusted(entry, hop)) break;
      end = start - 1;
    }
    return current === undefined ? UNKNOWN_CLIENT : keyOf(current);
  };
}
