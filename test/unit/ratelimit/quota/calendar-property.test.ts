import { describe, expect, it } from 'vitest';
import { periodBounds, type PeriodBoundsOptions, type QuotaPeriod } from '../../../../src/ratelimit/quota/index.js';

// Random instants from 2020 to 2030 in zones with every kind of clock change, each checked for
// tiling (start <= t < end, the next period starts exactly at end, the previous one ends exactly
// at start, ids change at every boundary) and against the wall clock as Intl itself shows it.

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const FROM = Date.UTC(2020, 0, 1);
const TO = Date.UTC(2031, 0, 1);

/** mulberry32: a small, fast 32-bit PRNG, seeded so that every run checks the same instants. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Wall {
  /** YYYY-MM-DD on the local calendar. */
  readonly date: string;
  readonly hour: string;
  readonly minute: number;
  readonly second: number;
  readonly weekday: string;
  /** Local wall time minus UTC, in ms. */
  readonly offset: number;
}

/** The local wall clock at an instant, read field by field from Intl (independently of the code under test). */
function wallClock(zone: string): (t: number) => Wall {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  return (t) => {
    const parts: Record<string, string> = {};
    for (const part of format.formatToParts(t)) parts[part.type] = part.value;
    const [y, mo, d, h, mi, s] = ['year', 'month', 'day', 'hour', 'minute', 'second'].map((k) => Number(parts[k]));
    const wallMs = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
    return {
      date: `${parts.year}-${parts.month}-${parts.day}`,
      hour: parts.hour!,
      minute: mi!,
      second: s!,
      weekday: parts.weekday!,
      offset: wallMs - Math.floor(t / SECOND) * SECOND,
    };
  };
}

function offsetText(offset: number): string {
  const abs = Math.abs(offset);
  const hh = String(Math.floor(abs / HOUR)).padStart(2, '0');
  const mm = String(Math.floor((abs % HOUR) / MINUTE)).padStart(2, '0');
  return `${offset < 0 ? '-' : '+'}${hh}:${mm}`;
}

/** ISO 8601 week of a YYYY-MM-DD date, the textbook way (move to the Thursday of its week). */
function isoWeek(date: string): string {
  const [y, m, d] = date.split('-').map(Number);
  const day = Date.UTC(y!, m! - 1, d!);
  const thursday = day + (3 - ((new Date(day).getUTCDay() + 6) % 7)) * DAY;
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * DAY));
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/** Every instant in [FROM, TO) where the zone's offset changes, found by daily sampling and bisection. */
function offsetChanges(wall: (t: number) => Wall): number[] {
  const changes: number[] = [];
  let before = FROM;
  let offsetBefore = wall(before).offset;
  for (let after = FROM + DAY; after < TO; after += DAY) {
    const offsetAfter = wall(after).offset;
    if (offsetAfter !== offsetBefore) {
      let lo = before;
      let hi = after;
      while (hi - lo > SECOND) {
        const mid = lo + Math.floor((hi - lo) / (2 * SECOND)) * SECOND;
        if (wall(mid).offset === offsetBefore) lo = mid;
        else hi = mid;
      }
      changes.push(hi);
    }
    before = after;
    offsetBefore = offsetAfter;
  }
  return changes;
}

const zones = [
  'UTC',
  'Europe/Berlin',
  'America/New_York',
  'Australia/Lord_Howe', // 30-minute daylight saving
  'Asia/Kolkata', // +05:30
  'Asia/Kathmandu', // +05:45
  'Pacific/Chatham', // +12:45 / +13:45, changing at 02:45
  'America/Santiago', // changes at midnight
  'America/Havana', // skips midnight, then has it twice
  'Asia/Beirut', // changes at midnight
  'America/St_Johns', // -03:30 / -02:30
  'Africa/Casablanca', // leaves daylight time for Ramadan
  'Asia/Tehran', // +03:30 with daylight saving until 2022
  'Pacific/Apia', // daylight saving until 2021
] as const;

/** Zones whose offset only ever changes by whole hours in 2020–2030, so every hour is 60 minutes. */
const partHourChanges = new Set<string>(['Australia/Lord_Howe']);

const kinds: { period: QuotaPeriod; options?: PeriodBoundsOptions; label: string }[] = [
  { period: 'hour', label: 'hour' },
  { period: 'day', label: 'day' },
  { period: 'week', label: 'week' },
  { period: 'week', options: { weekStartsOn: 0 }, label: 'week from Sunday' },
  { period: 'month', label: 'month' },
];

const UNIFORM = 200;
const NEAR_CHANGES = 200;

describe('periodBounds over random instants, 2020–2030', () => {
  it.each(zones.map((zone, i) => ({ zone, seed: 0x5eed + i })))(
    'tiles time and matches the wall clock in $zone',
    ({ zone, seed }) => {
      const random = prng(seed);
      const wall = wallClock(zone);
      const changes = offsetChanges(wall);
      if (zone !== 'UTC' && zone !== 'Asia/Kolkata' && zone !== 'Asia/Kathmandu') {
        expect(changes.length, 'the zone should change its offset in 2020–2030').toBeGreaterThan(0);
      }
      const instants: number[] = [];
      for (let i = 0; i < UNIFORM; i++) instants.push(FROM + Math.floor(random() * (TO - FROM)));
      for (let i = 0; changes.length > 0 && i < NEAR_CHANGES; i++) {
        // Within two days of an offset change, where the interesting periods are.
        const change = changes[Math.floor(random() * changes.length)]!;
        instants.push(change + Math.floor((random() * 2 - 1) * 2 * DAY));
      }

      const changedAt = (t: number) => wall(t - 1).offset !== wall(t).offset;

      for (const t of instants) {
        for (const { period, options, label } of kinds) {
          const context = `${label} in ${zone} at ${new Date(t).toISOString()}`;
          const b = periodBounds(period, zone, t, options);
          expect(b.start, context).toBeLessThanOrEqual(t);
          expect(b.end, context).toBeGreaterThan(t);

          // Tiling: the neighbours meet this period exactly, under other names.
          const next = periodBounds(period, zone, b.end, options);
          expect(next.start, `${context}: next starts at end`).toBe(b.end);
          expect(next.id, `${context}: next id`).not.toBe(b.id);
          const previous = periodBounds(period, zone, b.start - 1, options);
          expect(previous.end, `${context}: previous ends at start`).toBe(b.start);
          expect(previous.id, `${context}: previous id`).not.toBe(b.id);

          const first = wall(b.start);
          const last = wall(b.end - 1);
          const length = b.end - b.start;
          // A period starts at hh:00 / midnight on the wall clock unless the clock jumped there.
          const startsOnTheHour = first.minute === 0 && first.second === 0;
          if (period === 'hour') {
            expect(b.id, context).toBe(`${first.date}T${first.hour}${offsetText(first.offset)}`);
            if (partHourChanges.has(zone)) {
              expect([HOUR, 30 * MINUTE], context).toContain(length);
              if (length !== HOUR) expect(changedAt(b.start) || changedAt(b.end), context).toBe(true);
              expect(startsOnTheHour || changedAt(b.start), context).toBe(true);
            } else {
              // Every hour is an hour of elapsed time, daylight-saving changes included.
              expect(length, context).toBe(HOUR);
              expect(startsOnTheHour, context).toBe(true);
            }
            continue;
          }
          const startsAtMidnight = startsOnTheHour && first.hour === '00';
          expect(startsAtMidnight || changedAt(b.start), `${context}: starts at midnight or a jump`).toBe(true);
          expect(wall(b.start - 1).date < first.date, `${context}: the day before is earlier`).toBe(true);
          if (period === 'day') {
            expect(b.id, context).toBe(first.date);
            expect(last.date, context).toBe(b.id);
            expect([23, 23.5, 24, 24.5, 25], context).toContain(length / HOUR);
          } else if (period === 'week') {
            const sunday = options?.weekStartsOn === 0;
            expect(first.weekday, context).toBe(sunday ? 'Sun' : 'Mon');
            expect(last.weekday, context).toBe(sunday ? 'Sat' : 'Sun');
            expect(b.id, context).toBe(sunday ? `${isoWeek(first.date)}-7` : isoWeek(first.date));
            expect(Math.abs(length - 7 * DAY), context).toBeLessThanOrEqual(HOUR);
          } else {
            expect(first.date, context).toBe(`${b.id}-01`);
            expect(last.date.slice(0, 7), context).toBe(b.id);
            const days = Math.round(length / DAY);
            expect([28, 29, 30, 31], context).toContain(days);
            expect(Math.abs(length - days * DAY), context).toBeLessThanOrEqual(HOUR);
          }
        }
      }
    },
    30_000,
  );
});
