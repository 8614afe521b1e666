/**
 * Redis Cluster hash slots: CRC16 (the XMODEM variant: polynomial 0x1021, initial value 0) of the
 * key's hash tag, modulo 16384, as the Redis Cluster specification defines it. The store needs
 * the slot to batch only decisions that one node can run in one script call. And the Redis key of
 * a store key: the store key inside a hash tag, so that every key of a limiter's one caller lands
 * on one node.
 */

const table = new Uint16Array(256);
for (let byte = 0; byte < 256; byte++) {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  table[byte] = crc;
}

/** CRC16/XMODEM of a byte string. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) & 0xffff) ^ table[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

const encoder = new TextEncoder();

/**
 * The hash slot of `key`: only the part between the first `{` and the next `}` counts when that
 * part is not empty, so keys sharing a `{tag}` share a slot.
 */
export function hashSlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(encoder.encode(key.slice(open + 1, close))) & 16383;
  }
  return crc16(encoder.encode(key)) & 16383;
}

/** Escapes `%`, `{` and `}` (injectively), so a key can sit inside a `{hash tag}`. */
function escapeKey(key: string): string {
  // indexOf, not a regular expression: this runs for every decision.
  if (key.indexOf('%') < 0 && key.indexOf('{') < 0 && key.indexOf('}') < 0) return key;
  return key.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}

/** The Redis key holding the state of store key `key`, under `prefix`. */
export function redisKeyOf(prefix: string, key: string): string {
  return `${prefix}{${escapeKey(key)}}`;
}
