import { BlockList, isIP } from 'node:net';
import { checkOptions, countOption, show } from '../core/validate.js';

/**
 * Which proxies in front of the server may be believed about the client's address:
 * `false` (the default: nobody, the socket's peer is the client), a hop count (the `n` proxies
 * nearest the server are trusted), or addresses and CIDR ranges (IPv4 or IPv6), given as one
 * string (comma-separated) or a list. The names `'loopback'`, `'linklocal'` and `'uniquelocal'`
 * stand for the usual ranges.
 * @example
 * const trustProxy: TrustProxy = ['loopback', '10.0.0.0/8', '2001:db8:ffff::/48'];
 */
export type TrustProxy = false | number | string | readonly string[];

/**
 * Options of {@link clientAddressResolver}.
 * @example
 * const options: ClientAddressOptions = { trustProxy: 1, ipv6Subnet: 56 };
 */
export interface ClientAddressOptions {
  /** Proxies whose `X-Forwarded-For` entries are believed. @default false */
  readonly trustProxy?: TrustProxy;
  /** IPv6 clients are keyed by this many leading bits of their address (1–128). @default 64 */
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
  let start = 0;
  let end = entry.length;
  while (start < end && isBlank(entry.charCodeAt(start))) start++;
  while (end > start && isBlank(entry.charCodeAt(end - 1))) end--;
  if (end - start === 0 || end - start > MAX_ENTRY_LENGTH) return undefined;
  let text = start === 0 && end === entry.length ? entry : entry.slice(start, end);
  if (text.charCodeAt(0) === 91 /* [ */) {
    const close = text.indexOf(']');
    if (close < 0 || !isPortSuffix(text, close + 1)) return undefined;
    text = text.slice(1, close);
    return isIP(text) === 6 ? normalizeIPv6(text) : undefined;
  }
  const family = isIP(text);
  if (family === 4) return text;
  if (family === 6) return normalizeIPv6(text);
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

/** True when `text` from `at` is empty or `:` followed by 1 to 5 digits. */
function isPortSuffix(text: string, at: number): boolean {
  if (at === text.length) return true;
  if (text.charCodeAt(at) !== 58 /* : */) return false;
  const digits = text.length - at - 1;
  if (digits < 1 || digits > 5) return false;
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** The eight 16-bit groups of an address `isIP` accepts as IPv6 (a zone is dropped). */
function ipv6Groups(address: string): number[] {
  const percent = address.indexOf('%');
  let text = percent < 0 ? address : address.slice(0, percent);
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) > 0) {
    // An embedded IPv4 tail (`::ffff:1.2.3.4`) is two more groups.
    const o = text.slice(lastColon + 1).split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const gap = text.indexOf('::');
  if (gap < 0) return parse(text);
  const head = parse(text.slice(0, gap));
  const tail = parse(text.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
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
  const hex = (from: number, to: number): string =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

function isMapped(groups: readonly number[]): boolean {
  return groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff;
}

function normalizeIPv6(address: string): string {
  const groups = ipv6Groups(address);
  if (isMapped(groups)) return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  return formatIPv6(groups);
}

/**
 * The key for a normalized address: IPv4 as it is, IPv6 as its leading `bits` (`2001:db8:1:2::/64`),
 * or the whole address when `bits` is 128.
 * @example
 * subnetKey('2001:db8:1:2:aaaa::1', 64); // '2001:db8:1:2::/64'
 */
export function subnetKey(address: string, bits: number): string {
  if (!address.includes(':')) return address;
  if (bits >= 128) return address;
  const groups = ipv6Groups(address);
  for (let i = 0; i < 8; i++) {
    const keep = Math.min(16, Math.max(0, bits - i * 16));
    groups[i] = keep === 0 ? 0 : groups[i]! & ((0xffff << (16 - keep)) & 0xffff);
  }
  return `${formatIPv6(groups)}/${bits}`;
}

/** Builds the BlockList of trusted ranges from the option, naming the bad entry when one is wrong. */
function trustList(owner: string, value: string | readonly string[]): BlockList {
  const entries = (typeof value === 'string' ? value.split(',') : value).flatMap((e) => {
    if (typeof e !== 'string') throw new TypeError(`${owner}: option "trustProxy" entries must be strings, got ${show(e)}`);
    const t = e.trim();
    return presets[t] ?? [t];
  });
  if (entries.length === 0) throw new TypeError(`${owner}: option "trustProxy" must name at least one address or range`);
  const list = new BlockList();
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
    list.addSubnet(address, prefix, v4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/**
 * Builds a function that tells a request's client address, as a key for rate limiting: the
 * socket's peer unless `trustProxy` names the proxies in front of the server. With trusted
 * proxies, `X-Forwarded-For` is walked from the right (nearest hop) to the left, skipping trusted
 * proxies; the first untrusted address is the client. An entry that is not an address ends the
 * walk (nothing to its left can be believed), and the client is then the last good hop seen.
 * IPv4-mapped IPv6 is read as IPv4; IPv6 is keyed by its `ipv6Subnet` prefix; a request whose
 * socket has no address (already closed, or a Unix socket) gets {@link UNKNOWN_CLIENT}, unless a
 * hop count is trusted and `X-Forwarded-For` names the client.
 * @example
 * const clientOf = clientAddressResolver({ trustProxy: ['10.0.0.0/8'], ipv6Subnet: 56 });
 * const key = clientOf(req); // e.g. '203.0.113.7' or '2001:db8:aa00::/56'
 */
export function clientAddressResolver(
  options?: ClientAddressOptions,
  owner = 'clientAddressResolver',
): (request: AddressedRequest) => string {
  const o = checkOptions(owner, options, known);
  const bits = countOption(owner, 'ipv6Subnet', o.ipv6Subnet, 64, { min: 1, max: 128 });
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
  const socketAddress = (request: AddressedRequest): string | undefined => {
    const raw = request.socket?.remoteAddress;
    if (typeof raw !== 'string' || raw.length === 0) return undefined;
    // Node reports plain dotted IPv4 for IPv4 sockets, and `::ffff:a.b.c.d` for IPv4 clients of a
    // dual-stack server (the default for listen(port)): both without parsing.
    if (!raw.includes(':')) return raw;
    if (raw.startsWith('::ffff:') && isIP(raw.slice(7)) === 4) return raw.slice(7);
    return parseAddress(raw);
  };

  if (trust === undefined || trust === false || trust === 0) {
    return (request) => {
      const address = socketAddress(request);
      return address === undefined ? UNKNOWN_CLIENT : keyOf(address);
    };
  }
  if ((trust as unknown) === true) {
    throw new TypeError(
      `${owner}: option "trustProxy" must be false, a hop count, or the proxies' addresses or ranges; true would let any client choose its own address`,
    );
  }
  let hops = Infinity;
  let trusted: BlockList | undefined;
  if (typeof trust === 'number') {
    hops = countOption(owner, 'trustProxy', trust, 0, { min: 0, max: 1_000 });
  } else if (typeof trust === 'string' || Array.isArray(trust)) {
    trusted = trustList(owner, trust as string | readonly string[]);
  } else {
    throw new TypeError(`${owner}: option "trustProxy" must be false, a hop count, or addresses and ranges, got ${show(trust)}`);
  }
  const isTrusted = (address: string, hop: number): boolean =>
    trusted === undefined ? hop < hops : trusted.check(address, address.includes(':') ? 'ipv6' : 'ipv4');

  return (request) => {
    let current = socketAddress(request);
    if (current === undefined) {
      // No peer address (a proxy on a Unix socket, or a socket already closed): a hop count still
      // says the peer is a trusted proxy; named proxies cannot be matched.
      if (trusted !== undefined) return UNKNOWN_CLIENT;
    } else if (!isTrusted(current, 0)) return keyOf(current);
    const header = request.headers['x-forwarded-for'];
    const list = typeof header === 'string' ? header : Array.isArray(header) ? header.join(',') : '';
    // Right to left, one entry at a time: no split of the whole list, work bounded by the entries read.
    let end = list.length;
    let hop = 1;
    while (end > 0) {
      const comma = list.lastIndexOf(',', end - 1);
      const entry = parseAddress(list.slice(comma + 1, end));
      if (entry === undefined) break;
      current = entry;
      if (!isTrusted(entry, hop)) break;
      end = comma < 0 ? 0 : comma;
      hop++;
    }
    return current === undefined ? UNKNOWN_CLIENT : keyOf(current);
  };
}
