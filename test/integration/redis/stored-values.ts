// What the Redis store's windowed scripts keep in a key, read back for the tests' checks. Version 3
// stores one integer (src/ratelimit/redis/lua/fixed-window.lua and sliding-window.lua say how);
// version 2 stored text ("windowStart count", "windowStart current previous"), which the
// sliding window still writes for counts of 2^24 and more.

/** The two counts `pair` (see sliding-window.lua) maps to one integer, found again. */
export function unpair(z: number): [current: number, previous: number] {
  let r = Math.floor(Math.sqrt(z));
  while (r * r > z) r--;
  while ((r + 1) * (r + 1) <= z) r++;
  const rest = z - r * r;
  return rest < r ? [rest, r] : [r, rest - r];
}

/** Whether `value` is in the integer format of version 3. */
export function isInteger(value: string): boolean {
  return /^\d+$/.test(value);
}

/** The count a fixed window's value holds (0 for no value), whichever window it belongs to. */
export function fixedWindowCount(value: string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  if (isInteger(value)) return Math.floor(Number(value) / 8);
  return Number(value.split(' ')[1]);
}

/** The current and previous counts a sliding window's value holds ([0, 0] for no value). */
export function slidingWindowCounts(value: string | null | undefined): [current: number, previous: number] {
  if (value === null || value === undefined) return [0, 0];
  if (isInteger(value)) return unpair(Math.floor(Number(value) / 8));
  const [, current, previous] = value.split(' ').map(Number);
  return [current!, previous!];
}

/** The window tag of a version-3 value: (windowStart / W) mod 8. */
export function windowTag(value: string): number {
  return Number(value) % 8;
}
