import { checkOptions, countOption, enumOption, show } from '../../core/validate.js';

/**
 * Calendar periods in an IANA time zone, for quotas that reset at the top of the hour, at local
 * midnight, at the start of the week or on the first of the month.
 *
 * Only `Intl.DateTimeFormat` is used, and only to learn the zone's UTC offset at an instant; all
 * calendar arithmetic (dates, weekdays, ISO weeks) is done here on plain integers in the proleptic
 * Gregorian calendar, so it works the same for any year and needs no `Date` range tricks.
 *
 * How boundaries are placed, so that periods tile time with no gaps or overlaps even when the
 * zone's clock jumps:
 *
 * - A day, week or month starts at the first instant whose local wall-clock time is at or after
 *   local midnight of its first date. When midnight is skipped (America/Santiago, Asia/Beirut and
 *   America/Havana move their clocks at midnight) the day starts when the clock jumps, e.g. at
 *   01:00. When midnight happens twice (Havana falls back from 01:00 to 00:00) the day starts at
 *   the first one. A day that never appears on the wall clock (Pacific/Apia skipped 30 Dec 2011)
 *   has no period: the day before ends where the day after starts. So a local day lasts 23, 23.5,
 *   24, 24.5 or 25 hours of elapsed time, depending on the zone and the date.
 * - An hour runs from an instant where the wall clock reads hh:00 to the next such instant. A
 *   change of offset by whole hours does not move those instants, so hours stay one hour of
 *   elapsed time across every such change, wherever it falls: an hour repeated by a fall-back
 *   is two periods, told apart by the offset in their id, and in Pacific/Chatham (which changes
 *   at 02:45 or 03:45) the hour from 02:00 runs to 04:00 on the wall clock. A change by a part of
 *   an hour (Australia/Lord_Howe moves by 30 minutes) does move them, so it also ends an hour
 *   there, and the hour next to it lasts 30 minutes.
 * - Ids name a period by the wall-clock time where it starts.
 *
 * The one assumption: a zone's offset never changes twice within 9 hours. tzdb has no such
 * case in modern times.
 */

/** The calendar periods a quota can reset on. */
export type QuotaPeriod = 'hour' | 'day' | 'week' | 'month';

/** Every {@link QuotaPeriod}, in order of length. */
export const quotaPeriods: readonly QuotaPeriod[] = Object.freeze(['hour', 'day', 'week', 'month'] as const);

/** A day of the week as JavaScript numbers it: 0 = Sunday, 1 = Monday … 6 = Saturday. */
export type Weekday = 0 | 1 | 2 | 3 | 4 | 5 | 6;

/** Options for {@link periodBounds}. */
export interface PeriodBoundsOptions {
  /** The first day of a week, 0 = Sunday … 6 = Saturday; only used for `'week'`. @default 1 (Monday, as in ISO 8601) */
  readonly weekStartsOn?: Weekday;
}

/**
 * One calendar period as the half-open range of instants `[start, end)`, in epoch milliseconds.
 * Callers may keep it and reuse it for every instant before `end`: `end` is exactly when the next
 * period starts, so it is when to call {@link periodBounds} again.
 */
export interface PeriodBounds {
  /** The first instant of the period (epoch ms, inclusive). */
  readonly start: number;
  /** The first instant after the period, where the next one starts (epoch ms, exclusive). */
  readonly end: number;
  /**
   * A stable name for the period, safe to put into a store key (ASCII letters, digits, `-`, `+`
   * and `:`; no spaces). Different consecutive periods always have different ids:
   * - hour: local date, hour and UTC offset, e.g. `2026-11-22T14+01:00` (the offset keeps the two
   *   runs of a repeated hour apart: `2026-10-25T02+02:00`, then `2026-10-25T02+01:00`);
   * - day: the local date, e.g. `2026-11-22`;
   * - week starting Monday: the ISO 8601 week, e.g. `2026-W47` (its year is the ISO week-year,
   *   so 1 January 2027 is in `2026-W53`); week starting on another day: the ISO week date of
   *   its first day, e.g. `2026-W47-7` for the week from Sunday 22 November 2026;
   * - month: the local year and month, e.g. `2026-11`.
   *
   * Years outside 0000–9999 are written with a sign and six digits, as `Date#toISOString` does.
   */
  readonly id: string;
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Instants `Intl` can format: the `Date` range. */
const MAX_INSTANT = 8.64e15;
/**
 * Half the width of the window searched for the instant a local wall time is reached. It must
 * exceed the largest UTC offset any zone ever had (Asia/Manila's −15:56:08 local mean time).
 */
const SEARCH_SPAN = 18 * HOUR;
/** Spacing of the offset samples in that window (see the assumption in the module comment). */
const SAMPLE_STEP = 9 * HOUR;
/** The offset as `Intl` names it: `GMT`, `GMT+05:45`, `GMT-03:06:28` (minus may be U+2212). */
const OFFSET_TEXT = /GMT(?:([+\-\u2212])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?)?/;
/** Formatters kept before the cache starts over; zone names are few, spellings could be many. */
const MAX_ZONES = 256;

/** What is kept per time zone: its formatter and the last bounds handed out per period kind. */
interface Zone {
  readonly format: Intl.DateTimeFormat;
  /** Indexed by {@link slotOf}: hour, day, month, then week for each possible first weekday. */
  readonly last: (PeriodBounds | undefined)[];
}

const zones = new Map<string, Zone>();

/**
 * Checks a time zone option: a string naming an IANA time zone that this runtime knows (such as
 * `'Europe/Berlin'`, `'America/New_York'` or `'UTC'`; names are matched without regard to case,
 * as `Intl` does). Returns the value as given. A non-string is a `TypeError`; an unknown zone, or
 * a bare offset such as `'+01:00'` (which only some Node versions accept), is a `RangeError`.
 */
export function validateTimeZone(owner: string, name: string, value: unknown): string {
  zoneFor(owner, name, value);
  return value as string;
}

/**
 * Checks a period option: one of `'hour'`, `'day'`, `'week'`, `'month'`. Anything else, including
 * undefined, is a `TypeError` naming the option and the value.
 */
export function validateQuotaPeriod(owner: string, name: string, value: unknown): QuotaPeriod {
  if (value === undefined) throw periodError(owner, name, value);
  return enumOption(owner, name, value, quotaPeriods, 'day');
}

function periodError(owner: string, name: string, value: unknown): TypeError {
  const allowed = quotaPeriods.map((p) => JSON.stringify(p)).join(', ');
  return new TypeError(`${owner}: option "${name}" must be one of ${allowed}, got ${show(value)}`);
}

/**
 * Checks a first-day-of-week option: a whole number from 0 (Sunday) to 6 (Saturday), or the
 * default 1 (Monday) when undefined.
 */
export function validateWeekStartsOn(owner: string, name: string, value: unknown): Weekday {
  return countOption(owner, name, value, 1, { min: 0, max: 6 }) as Weekday;
}

/**
 * The calendar period of kind `period` that contains the instant `epochMs` in `timeZone`.
 *
 * Cheap to call for every decision: each zone's `Intl.DateTimeFormat` is made once and kept, and
 * the last result per zone and period kind is kept too, so calls within the same period cost a
 * map lookup and two comparisons. Working out a new period takes roughly 5 µs for an hour and
 * 20 µs for a day, week or month (about a dozen offset lookups). Callers that keep a result can
 * skip even the lookup until `epochMs >= end`.
 *
 * @param period `'hour' | 'day' | 'week' | 'month'`.
 * @param timeZone an IANA zone name such as `'Europe/Berlin'`, or `'UTC'`.
 * @param epochMs the instant, in milliseconds since 1970-01-01T00:00:00Z (any finite `Date` time).
 * @returns the period's bounds `[start, end)` (with `start <= epochMs < end`) and its id. The
 *   object is frozen and may be shared with other callers.
 * @example
 * const { start, end, id } = periodBounds('day', 'Europe/Berlin', Date.now());
 * // id '2026-11-22', start/end at local midnights; reuse it until Date.now() >= end
 */
export function periodBounds(
  period: QuotaPeriod,
  timeZone: string,
  epochMs: number,
  options?: PeriodBoundsOptions,
): PeriodBounds {
  const owner = 'periodBounds';
  let weekStartsOn = 1;
  if (options !== undefined) {
    const opts = checkOptions(owner, options, ['weekStartsOn']);
    weekStartsOn = validateWeekStartsOn(owner, 'weekStartsOn', opts.weekStartsOn);
  }
  const slot = slotOf(owner, period, weekStartsOn);
  const zone = zones.get(timeZone) ?? zoneFor(owner, 'timeZone', timeZone);
  if (typeof epochMs !== 'number') {
    throw new TypeError(`${owner}: argument "epochMs" must be a number of milliseconds, got ${show(epochMs)}`);
  }
  // The negated test also catches NaN.
  if (!(epochMs >= -MAX_INSTANT && epochMs <= MAX_INSTANT)) {
    throw new RangeError(`${owner}: argument "epochMs" must be a finite time within the Date range, got ${show(epochMs)}`);
  }

  const cached = zone.last[slot];
  if (cached !== undefined && cached.start <= epochMs && epochMs < cached.end) return cached;

  let bounds: PeriodBounds;
  if (period === 'hour') {
    bounds = hourBounds(zone.format, epochMs);
  } else {
    bounds = dateBounds(zone.format, period, epochMs, weekStartsOn);
  }
  zone.last[slot] = bounds;
  return bounds;
}

/** Where the last result for a period kind is kept, after checking the period. */
function slotOf(owner: string, period: unknown, weekStartsOn: number): number {
  switch (period) {
    case 'hour':
      return 0;
    case 'day':
      return 1;
    case 'month':
      return 2;
    case 'week':
      return 3 + weekStartsOn;
    default:
      throw periodError(owner, 'period', period);
  }
}

/** The cached zone record, making (and checking) it on first use. */
function zoneFor(owner: string, name: string, value: unknown): Zone {
  if (typeof value !== 'string') {
    throw new TypeError(`${owner}: option "${name}" must be an IANA time zone name (a string), got ${show(value)}`);
  }
  const known = zones.get(value);
  if (known !== undefined) return known;
  const rejection = new RangeError(
    `${owner}: option "${name}" must be an IANA time zone name such as "Europe/Berlin" or "UTC", got ${show(value)}`,
  );
  // Newer runtimes accept bare offsets ("+01:00") as zones and older ones do not; refuse them
  // everywhere so that a configuration behaves the same on every supported Node version.
  if (value.length === 0 || value[0] === '+' || value[0] === '-' || /^[0-9]/.test(value)) throw rejection;
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: value,
      hour: 'numeric',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
    });
  } catch {
    throw rejection;
  }
  if (zones.size >= MAX_ZONES) zones.clear();
  const zone: Zone = { format, last: new Array<PeriodBounds | undefined>(10).fill(undefined) };
  zones.set(value, zone);
  return zone;
}

/**
 * The zone's UTC offset at `instant`, in ms (local wall time = instant + offset). Read from the
 * `GMT±hh:mm[:ss]` name, which involves no calendar at all. Instants outside the `Date` range
 * take the offset at its edge.
 */
function offsetAt(format: Intl.DateTimeFormat, instant: number): number {
  const clamped = instant > MAX_INSTANT ? MAX_INSTANT : instant < -MAX_INSTANT ? -MAX_INSTANT : instant;
  const text = format.format(clamped);
  const match = OFFSET_TEXT.exec(text);
  if (match === null) throw new Error(`bulwark: unexpected time zone offset text ${JSON.stringify(text)}`);
  if (match[1] === undefined) return 0; // plain "GMT"
  const magnitude = Number(match[2]) * HOUR + Number(match[3] ?? 0) * MINUTE + Number(match[4] ?? 0) * SECOND;
  return match[1] === '+' ? magnitude : -magnitude;
}


/** A stretch of time from `from` (inclusive) during which the zone keeps one offset. */
interface Segment {
  readonly from: number;
  readonly offset: number;
}

/**
 * Appends to `out` every offset change in `(a, b]`, given the offsets at both ends (which differ).
 * `a` and `b` are whole seconds, as are all offset changes in tzdb, so bisection over whole
 * seconds finds each change exactly.
 */
function findChanges(format: Intl.DateTimeFormat, a: number, offsetA: number, b: number, offsetB: number, out: Segment[]): void {
  if (b - a <= SECOND) {
    out.push({ from: b, offset: offsetB });
    return;
  }
  const mid = a + Math.floor((b - a) / (2 * SECOND)) * SECOND;
  const offsetMid = offsetAt(format, mid);
  if (offsetMid !== offsetA) findChanges(format, a, offsetA, mid, offsetMid, out);
  if (offsetMid !== offsetB) findChanges(format, mid, offsetMid, b, offsetB, out);
}

/**
 * The first instant at which the local wall time is `wall` or later (`wall` in ms on the local
 * clock, counted from 1970-01-01T00:00 local). Usually `wall - offset`; in a skipped stretch it is
 * the instant the clock jumps; where a wall time repeats it is the first occurrence.
 */
function firstInstantAtWall(format: Intl.DateTimeFormat, wall: number): number {
  // The answer lies within SEARCH_SPAN of `wall`: no offset is that large. Map out the offsets in
  // that window, then take the first stretch in which the wall clock reaches `wall`.
  const segments: Segment[] = [];
  let a = wall - SEARCH_SPAN;
  let offsetA = offsetAt(format, a);
  segments.push({ from: -Infinity, offset: offsetA });
  for (let b = a + SAMPLE_STEP; b <= wall + SEARCH_SPAN; b += SAMPLE_STEP) {
    const offsetB = offsetAt(format, b);
    if (offsetB !== offsetA) findChanges(format, a, offsetA, b, offsetB, segments);
    a = b;
    offsetA = offsetB;
  }
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const until = i + 1 < segments.length ? segments[i + 1]!.from : Infinity;
    const candidate = Math.max(segment.from, wall - segment.offset);
    if (candidate < until) return candidate;
  }
  /* c8 ignore next */
  throw new Error('bulwark: unreachable: the last stretch of constant offset is unbounded');
}

function hourBounds(format: Intl.DateTimeFormat, t: number): PeriodBounds {
  const offset = offsetAt(format, t);
  // Where the wall clock reads hh:00 and (hh+1):00 around `t`, at the offset `t` has. A change of
  // offset by whole hours leaves these instants where they are, so it needs no further thought.
  let start = floorTo(t + offset, HOUR) - offset;
  let end = start + HOUR;
  let startOffset = offsetAt(format, start);
  // Offset changes lie at whole seconds, so `t` can be rounded down to one without passing one.
  const tSecond = floorTo(t, SECOND);
  if (!wholeHours(startOffset - offset)) {
    // The hh:00 instants moved between `start` and `t` (a 30-minute shift): the hour starts
    // where they moved.
    const stretches: Segment[] = [{ from: start, offset: startOffset }];
    findChanges(format, start, startOffset, tSecond, offset, stretches);
    for (let i = stretches.length - 1; i > 0; i--) {
      const stretch = stretches[i]!;
      if (!wholeHours(stretch.offset - stretches[i - 1]!.offset)) {
        start = stretch.from;
        startOffset = stretch.offset;
        break;
      }
    }
  }
  const lastSecond = end - SECOND;
  if (lastSecond > tSecond) {
    const endOffset = offsetAt(format, lastSecond);
    if (!wholeHours(endOffset - offset)) {
      const stretches: Segment[] = [{ from: tSecond, offset }];
      findChanges(format, tSecond, offset, lastSecond, endOffset, stretches);
      for (let i = 1; i < stretches.length; i++) {
        const stretch = stretches[i]!;
        if (!wholeHours(stretch.offset - stretches[i - 1]!.offset)) {
          end = stretch.from;
          break;
        }
      }
    }
  }
  // Named after the wall clock where the hour starts, with the offset there.
  const wallHour = floorTo(start + startOffset, HOUR);
  const dayNumber = Math.floor(wallHour / DAY);
  const [year, month, day] = civilFromDays(dayNumber);
  const id = `${dateId(year, month, day)}T${pad2((wallHour - dayNumber * DAY) / HOUR)}${offsetId(startOffset)}`;
  return Object.freeze({ start, end, id });
}

/** Whether an offset change keeps the wall clock's hh:00 at the same instants. */
function wholeHours(offsetChange: number): boolean {
  return offsetChange % HOUR === 0;
}

function dateBounds(format: Intl.DateTimeFormat, period: 'day' | 'week' | 'month', t: number, weekStartsOn: number): PeriodBounds {
  const today = Math.floor((t + offsetAt(format, t)) / DAY);
  let first: number;
  if (period === 'day') {
    first = today;
  } else if (period === 'week') {
    first = today - ((weekdayOf(today) - weekStartsOn + 7) % 7);
  } else {
    const [year, month] = civilFromDays(today);
    first = daysFromCivil(year, month, 1);
  }
  let start = firstInstantAtWall(format, first * DAY);
  let next = following(period, first);
  let end = firstInstantAtWall(format, next * DAY);
  // If the clock has already reached a later period's first midnight (after a skipped day, or a
  // fall-back that took the date backwards), `t` belongs to that later period.
  while (end <= t) {
    first = next;
    start = end;
    next = following(period, first);
    end = firstInstantAtWall(format, next * DAY);
  }
  return Object.freeze({ start, end, id: periodId(period, first, weekStartsOn) });
}

/** The first day of the period after the one starting on day `first`. */
function following(period: 'day' | 'week' | 'month', first: number): number {
  if (period === 'day') return first + 1;
  if (period === 'week') return first + 7;
  const [year, month] = civilFromDays(first);
  return month === 12 ? daysFromCivil(year + 1, 1, 1) : daysFromCivil(year, month + 1, 1);
}

function periodId(period: 'day' | 'week' | 'month', first: number, weekStartsOn: number): string {
  if (period === 'week') {
    const weekday = weekdayOf(first);
    const thursday = first - ((weekday + 6) % 7) + 3; // the Thursday of first's ISO week
    const [isoYear] = civilFromDays(thursday);
    const week = Math.floor((thursday - daysFromCivil(isoYear, 1, 1)) / 7) + 1;
    const base = `${yearId(isoYear)}-W${pad2(week)}`;
    return weekStartsOn === 1 ? base : `${base}-${weekday === 0 ? 7 : weekday}`;
  }
  const [year, month, day] = civilFromDays(first);
  return period === 'day' ? dateId(year, month, day) : `${yearId(year)}-${pad2(month)}`;
}

// Proleptic Gregorian calendar on day numbers (days since 1970-01-01), after Howard Hinnant's
// "chrono-compatible low-level date algorithms".

/** Day number of a civil date (`month` 1–12). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** Civil date `[year, month 1–12, day]` of a day number. */
function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1_460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/** 0 = Sunday … 6 = Saturday; day 0 (1970-01-01) was a Thursday. */
function weekdayOf(days: number): number {
  return (((days + 4) % 7) + 7) % 7;
}

function floorTo(value: number, unit: number): number {
  return Math.floor(value / unit) * unit;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function yearId(year: number): string {
  if (year >= 0 && year <= 9999) return String(year).padStart(4, '0');
  return `${year < 0 ? '-' : '+'}${String(Math.abs(year)).padStart(6, '0')}`;
}

function dateId(year: number, month: number, day: number): string {
  return `${yearId(year)}-${pad2(month)}-${pad2(day)}`;
}

/** `+hh:mm`, or `+hh:mm:ss` for the odd local-mean-time offset with seconds. */
function offsetId(offset: number): string {
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const hours = Math.floor(abs / HOUR);
  const minutes = Math.floor((abs % HOUR) / MINUTE);
  const seconds = Math.floor((abs % MINUTE) / SECOND);
  return `${sign}${pad2(hours)}:${pad2(minutes)}${seconds === 0 ? '' : `:${pad2(seconds)}`}`;
}
