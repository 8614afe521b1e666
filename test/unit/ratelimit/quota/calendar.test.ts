import { describe, expect, it } from 'vitest';
import { periodBounds, type PeriodBoundsOptions, type QuotaPeriod } from '../../../../src/ratelimit/quota/index.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const ms = (iso: string): number => {
  const n = Date.parse(iso);
  if (Number.isNaN(n)) throw new Error(`bad test instant ${iso}`);
  return n;
};

/** Bounds as ISO strings, so a failure reads as dates rather than as epoch numbers. */
function bounds(period: QuotaPeriod, zone: string, at: string, options?: PeriodBoundsOptions) {
  const b = periodBounds(period, zone, ms(at), options);
  return { start: new Date(b.start).toISOString(), end: new Date(b.end).toISOString(), id: b.id };
}

type Row = [period: QuotaPeriod, zone: string, at: string, start: string, end: string, id: string];

const row = ([period, zone, at, start, end, id]: Row) => ({ period, zone, at, start, end, id });

// One instant, 2026-11-22T14:05:09.123Z (a Sunday), seen in each zone. Expected values worked out
// by hand from each zone's offset on that date.
const sunday = '2026-11-22T14:05:09.123Z';
const sameInstant: Row[] = [
  ['hour', 'UTC', sunday, '2026-11-22T14:00:00.000Z', '2026-11-22T15:00:00.000Z', '2026-11-22T14+00:00'],
  ['day', 'UTC', sunday, '2026-11-22T00:00:00.000Z', '2026-11-23T00:00:00.000Z', '2026-11-22'],
  ['week', 'UTC', sunday, '2026-11-16T00:00:00.000Z', '2026-11-23T00:00:00.000Z', '2026-W47'],
  ['month', 'UTC', sunday, '2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z', '2026-11'],
  // Berlin is at +01:00 in November: 15:05 local.
  ['hour', 'Europe/Berlin', sunday, '2026-11-22T14:00:00.000Z', '2026-11-22T15:00:00.000Z', '2026-11-22T15+01:00'],
  ['day', 'Europe/Berlin', sunday, '2026-11-21T23:00:00.000Z', '2026-11-22T23:00:00.000Z', '2026-11-22'],
  ['week', 'Europe/Berlin', sunday, '2026-11-15T23:00:00.000Z', '2026-11-22T23:00:00.000Z', '2026-W47'],
  ['month', 'Europe/Berlin', sunday, '2026-10-31T23:00:00.000Z', '2026-11-30T23:00:00.000Z', '2026-11'],
  // New York is at -05:00: 09:05 local. November began on EDT (-04:00), until 1 Nov 02:00.
  ['hour', 'America/New_York', sunday, '2026-11-22T14:00:00.000Z', '2026-11-22T15:00:00.000Z', '2026-11-22T09-05:00'],
  ['day', 'America/New_York', sunday, '2026-11-22T05:00:00.000Z', '2026-11-23T05:00:00.000Z', '2026-11-22'],
  ['week', 'America/New_York', sunday, '2026-11-16T05:00:00.000Z', '2026-11-23T05:00:00.000Z', '2026-W47'],
  ['month', 'America/New_York', sunday, '2026-11-01T04:00:00.000Z', '2026-12-01T05:00:00.000Z', '2026-11'],
  // Lord Howe is on daylight time (+11:00) in November: already 01:05 on Monday 23rd.
  ['hour', 'Australia/Lord_Howe', sunday, '2026-11-22T14:00:00.000Z', '2026-11-22T15:00:00.000Z', '2026-11-23T01+11:00'],
  ['day', 'Australia/Lord_Howe', sunday, '2026-11-22T13:00:00.000Z', '2026-11-23T13:00:00.000Z', '2026-11-23'],
  ['week', 'Australia/Lord_Howe', sunday, '2026-11-22T13:00:00.000Z', '2026-11-29T13:00:00.000Z', '2026-W48'],
  ['month', 'Australia/Lord_Howe', sunday, '2026-10-31T13:00:00.000Z', '2026-11-30T13:00:00.000Z', '2026-11'],
  // Kolkata, +05:30 all year: 19:35 local.
  ['hour', 'Asia/Kolkata', sunday, '2026-11-22T13:30:00.000Z', '2026-11-22T14:30:00.000Z', '2026-11-22T19+05:30'],
  ['day', 'Asia/Kolkata', sunday, '2026-11-21T18:30:00.000Z', '2026-11-22T18:30:00.000Z', '2026-11-22'],
  ['week', 'Asia/Kolkata', sunday, '2026-11-15T18:30:00.000Z', '2026-11-22T18:30:00.000Z', '2026-W47'],
  ['month', 'Asia/Kolkata', sunday, '2026-10-31T18:30:00.000Z', '2026-11-30T18:30:00.000Z', '2026-11'],
  // Kathmandu, +05:45 all year: 19:50 local.
  ['hour', 'Asia/Kathmandu', sunday, '2026-11-22T13:15:00.000Z', '2026-11-22T14:15:00.000Z', '2026-11-22T19+05:45'],
  ['day', 'Asia/Kathmandu', sunday, '2026-11-21T18:15:00.000Z', '2026-11-22T18:15:00.000Z', '2026-11-22'],
  ['month', 'Asia/Kathmandu', sunday, '2026-10-31T18:15:00.000Z', '2026-11-30T18:15:00.000Z', '2026-11'],
  // Chatham is on daylight time (+13:45) in November: 03:50 on Monday 23rd.
  ['hour', 'Pacific/Chatham', sunday, '2026-11-22T13:15:00.000Z', '2026-11-22T14:15:00.000Z', '2026-11-23T03+13:45'],
  ['day', 'Pacific/Chatham', sunday, '2026-11-22T10:15:00.000Z', '2026-11-23T10:15:00.000Z', '2026-11-23'],
  ['week', 'Pacific/Chatham', sunday, '2026-11-22T10:15:00.000Z', '2026-11-29T10:15:00.000Z', '2026-W48'],
  ['month', 'Pacific/Chatham', sunday, '2026-10-31T10:15:00.000Z', '2026-11-30T10:15:00.000Z', '2026-11'],
];

describe('periodBounds at a known instant', () => {
  it.each(sameInstant.map(row))('$period in $zone is [$start, $end) named $id', ({ period, zone, at, start, end, id }) => {
    expect(bounds(period, zone, at)).toEqual({ start, end, id });
  });
});

describe('periodBounds at the edges of a period', () => {
  it('puts the first millisecond of a period in that period', () => {
    expect(bounds('day', 'UTC', '2026-11-22T00:00:00.000Z')).toMatchObject({ start: '2026-11-22T00:00:00.000Z', id: '2026-11-22' });
    expect(bounds('hour', 'Europe/Berlin', '2026-11-22T14:00:00.000Z')).toMatchObject({ id: '2026-11-22T15+01:00' });
  });

  it('puts the last millisecond before a boundary in the earlier period', () => {
    expect(bounds('day', 'UTC', '2026-11-22T23:59:59.999Z')).toMatchObject({ end: '2026-11-23T00:00:00.000Z', id: '2026-11-22' });
    expect(bounds('month', 'Europe/Berlin', '2026-11-30T22:59:59.999Z')).toMatchObject({ id: '2026-11' });
    expect(bounds('month', 'Europe/Berlin', '2026-11-30T23:00:00.000Z')).toMatchObject({ id: '2026-12' });
  });

  it('handles instants with a fraction of a millisecond', () => {
    const b = periodBounds('hour', 'Asia/Kathmandu', ms('2026-11-22T14:14:59.999Z') + 0.5);
    expect(b.id).toBe('2026-11-22T19+05:45');
    expect(b.end).toBe(ms('2026-11-22T14:15:00.000Z'));
  });

  it('returns the same frozen object for instants in the same period', () => {
    const a = periodBounds('day', 'Europe/Berlin', ms('2026-11-22T01:00:00Z'));
    const b = periodBounds('day', 'Europe/Berlin', ms('2026-11-22T20:00:00Z'));
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('does not mix up periods of different kinds or week starts in one zone', () => {
    const t = ms(sunday);
    expect(periodBounds('week', 'UTC', t).id).toBe('2026-W47');
    expect(periodBounds('week', 'UTC', t, { weekStartsOn: 0 }).id).toBe('2026-W47-7');
    expect(periodBounds('week', 'UTC', t).id).toBe('2026-W47');
    expect(periodBounds('day', 'UTC', t).id).toBe('2026-11-22');
  });
});

describe('days across daylight-saving changes', () => {
  it.each([
    // Berlin: clocks go 02:00 → 03:00 on 29 March 2026 and 03:00 → 02:00 on 25 October 2026.
    ['Europe/Berlin', '2026-03-29T12:00:00Z', '2026-03-28T23:00:00.000Z', '2026-03-29T22:00:00.000Z', '2026-03-29', 23],
    ['Europe/Berlin', '2026-10-25T12:00:00Z', '2026-10-24T22:00:00.000Z', '2026-10-25T23:00:00.000Z', '2026-10-25', 25],
    ['Europe/Berlin', '2026-10-26T12:00:00Z', '2026-10-25T23:00:00.000Z', '2026-10-26T23:00:00.000Z', '2026-10-26', 24],
    // New York: 02:00 → 03:00 on 8 March 2026, 02:00 → 01:00 on 1 November 2026.
    ['America/New_York', '2026-03-08T12:00:00Z', '2026-03-08T05:00:00.000Z', '2026-03-09T04:00:00.000Z', '2026-03-08', 23],
    ['America/New_York', '2026-11-01T12:00:00Z', '2026-11-01T04:00:00.000Z', '2026-11-02T05:00:00.000Z', '2026-11-01', 25],
    // Lord Howe moves by half an hour: 02:00 → 02:30 on 4 October 2026, 02:00 → 01:30 on 5 April 2026.
    ['Australia/Lord_Howe', '2026-10-04T00:00:00Z', '2026-10-03T13:30:00.000Z', '2026-10-04T13:00:00.000Z', '2026-10-04', 23.5],
    ['Australia/Lord_Howe', '2026-04-05T00:00:00Z', '2026-04-04T13:00:00.000Z', '2026-04-05T13:30:00.000Z', '2026-04-05', 24.5],
    // Chatham: 02:45 → 03:45 on 27 September 2026.
    ['Pacific/Chatham', '2026-09-27T00:00:00Z', '2026-09-26T11:15:00.000Z', '2026-09-27T10:15:00.000Z', '2026-09-27', 23],
    // Santiago skips midnight (00:00 → 01:00 on 6 September 2026): the day starts at 01:00 local.
    ['America/Santiago', '2026-09-06T12:00:00Z', '2026-09-06T04:00:00.000Z', '2026-09-07T03:00:00.000Z', '2026-09-06', 23],
    ['America/Santiago', '2026-09-05T12:00:00Z', '2026-09-05T04:00:00.000Z', '2026-09-06T04:00:00.000Z', '2026-09-05', 24],
    // ... and goes 00:00 → 23:00 on 5 April 2026, so 4 April lasts 25 hours.
    ['America/Santiago', '2026-04-04T12:00:00Z', '2026-04-04T03:00:00.000Z', '2026-04-05T04:00:00.000Z', '2026-04-04', 25],
    // Havana skips midnight on 8 March 2026 and has two midnights on 1 November 2026 (01:00 → 00:00):
    // the day starts at the first.
    ['America/Havana', '2026-03-08T12:00:00Z', '2026-03-08T05:00:00.000Z', '2026-03-09T04:00:00.000Z', '2026-03-08', 23],
    ['America/Havana', '2026-11-01T12:00:00Z', '2026-11-01T04:00:00.000Z', '2026-11-02T05:00:00.000Z', '2026-11-01', 25],
    // Beirut skips midnight on 29 March 2026 and goes 00:00 → 23:00 on 25 October 2026.
    ['Asia/Beirut', '2026-03-29T12:00:00Z', '2026-03-28T22:00:00.000Z', '2026-03-29T21:00:00.000Z', '2026-03-29', 23],
    ['Asia/Beirut', '2026-10-24T12:00:00Z', '2026-10-23T21:00:00.000Z', '2026-10-24T22:00:00.000Z', '2026-10-24', 25],
    ['Asia/Beirut', '2026-10-25T12:00:00Z', '2026-10-24T22:00:00.000Z', '2026-10-25T22:00:00.000Z', '2026-10-25', 24],
  ] as const)('%s at %s: [%s, %s) named %s, %d hours long', (zone, at, start, end, id, hours) => {
    expect(bounds('day', zone, at)).toEqual({ start, end, id });
    expect((ms(end) - ms(start)) / HOUR).toBe(hours);
  });

  it('skips a calendar day the zone never had (Samoa went from 29 to 31 December 2011)', () => {
    const before = bounds('day', 'Pacific/Apia', '2011-12-30T09:59:59.999Z');
    const after = bounds('day', 'Pacific/Apia', '2011-12-30T10:00:00.000Z');
    expect(before).toEqual({ start: '2011-12-29T10:00:00.000Z', end: '2011-12-30T10:00:00.000Z', id: '2011-12-29' });
    expect(after).toEqual({ start: '2011-12-30T10:00:00.000Z', end: '2011-12-31T10:00:00.000Z', id: '2011-12-31' });
  });
});

describe('hours across daylight-saving changes', () => {
  it.each([
    // Berlin, 25 October 2026: 02:00–03:00 happens twice, once at +02:00 and once at +01:00.
    ['Europe/Berlin', '2026-10-25T00:59:59.999Z', '2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T02+02:00'],
    ['Europe/Berlin', '2026-10-25T01:00:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-25T02+01:00'],
    // Berlin, 29 March 2026: 01:00 +01:00 is followed straight by 03:00 +02:00.
    ['Europe/Berlin', '2026-03-29T00:30:00Z', '2026-03-29T00:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T01+01:00'],
    ['Europe/Berlin', '2026-03-29T01:30:00Z', '2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z', '2026-03-29T03+02:00'],
    // New York, 1 November 2026: 01:00–02:00 twice.
    ['America/New_York', '2026-11-01T05:30:00Z', '2026-11-01T05:00:00.000Z', '2026-11-01T06:00:00.000Z', '2026-11-01T01-04:00'],
    ['America/New_York', '2026-11-01T06:30:00Z', '2026-11-01T06:00:00.000Z', '2026-11-01T07:00:00.000Z', '2026-11-01T01-05:00'],
    ['America/New_York', '2026-03-08T07:30:00Z', '2026-03-08T07:00:00.000Z', '2026-03-08T08:00:00.000Z', '2026-03-08T03-04:00'],
    // Havana, 1 November 2026: midnight happens twice, so the hour from 00:00 does too.
    ['America/Havana', '2026-11-01T04:30:00Z', '2026-11-01T04:00:00.000Z', '2026-11-01T05:00:00.000Z', '2026-11-01T00-04:00'],
    ['America/Havana', '2026-11-01T05:30:00Z', '2026-11-01T05:00:00.000Z', '2026-11-01T06:00:00.000Z', '2026-11-01T00-05:00'],
    // Chatham changes at 02:45 local by a whole hour: hours stay an hour of elapsed time.
    ['Pacific/Chatham', '2026-09-26T14:05:00Z', '2026-09-26T13:15:00.000Z', '2026-09-26T14:15:00.000Z', '2026-09-27T02+12:45'],
    ['Pacific/Chatham', '2026-09-26T14:20:00Z', '2026-09-26T14:15:00.000Z', '2026-09-26T15:15:00.000Z', '2026-09-27T04+13:45'],
    ['Pacific/Chatham', '2026-04-04T14:05:00Z', '2026-04-04T13:15:00.000Z', '2026-04-04T14:15:00.000Z', '2026-04-05T03+13:45'],
    ['Pacific/Chatham', '2026-04-04T14:20:00Z', '2026-04-04T14:15:00.000Z', '2026-04-04T15:15:00.000Z', '2026-04-05T03+12:45'],
    // Lord Howe moves its hh:00 instants by 30 minutes, so the hour next to the change is 30 minutes.
    ['Australia/Lord_Howe', '2026-10-03T15:20:00Z', '2026-10-03T14:30:00.000Z', '2026-10-03T15:30:00.000Z', '2026-10-04T01+10:30'],
    ['Australia/Lord_Howe', '2026-10-03T15:40:00Z', '2026-10-03T15:30:00.000Z', '2026-10-03T16:00:00.000Z', '2026-10-04T02+11:00'],
    ['Australia/Lord_Howe', '2026-10-03T16:00:00Z', '2026-10-03T16:00:00.000Z', '2026-10-03T17:00:00.000Z', '2026-10-04T03+11:00'],
    ['Australia/Lord_Howe', '2026-04-04T14:50:00Z', '2026-04-04T14:00:00.000Z', '2026-04-04T15:00:00.000Z', '2026-04-05T01+11:00'],
    ['Australia/Lord_Howe', '2026-04-04T15:10:00Z', '2026-04-04T15:00:00.000Z', '2026-04-04T15:30:00.000Z', '2026-04-05T01+10:30'],
    ['Australia/Lord_Howe', '2026-04-04T15:30:00Z', '2026-04-04T15:30:00.000Z', '2026-04-04T16:30:00.000Z', '2026-04-05T02+10:30'],
  ] as const)('%s at %s: [%s, %s) named %s', (zone, at, start, end, id) => {
    expect(bounds('hour', zone, at)).toEqual({ start, end, id });
  });

  it('gives the repeated hour of a fall-back two distinct ids, each an hour long', () => {
    for (const [zone, firstAt] of [
      ['Europe/Berlin', '2026-10-25T00:00:00Z'],
      ['America/New_York', '2026-11-01T05:00:00Z'],
    ] as const) {
      const first = periodBounds('hour', zone, ms(firstAt));
      const second = periodBounds('hour', zone, first.end);
      expect(second.start).toBe(first.end);
      expect(first.end - first.start).toBe(HOUR);
      expect(second.end - second.start).toBe(HOUR);
      expect(second.id).not.toBe(first.id);
      // Same wall-clock hour, different offset.
      expect(second.id.slice(0, 13)).toBe(first.id.slice(0, 13));
    }
  });
});

describe('months', () => {
  it.each([
    ['2026-01-15T00:00:00Z', '2026-01', 31],
    ['2026-02-15T00:00:00Z', '2026-02', 28],
    ['2024-02-29T23:59:59.999Z', '2024-02', 29],
    ['2000-02-15T00:00:00Z', '2000-02', 29],
    ['2100-02-15T00:00:00Z', '2100-02', 28],
    ['2026-04-15T00:00:00Z', '2026-04', 30],
    ['2026-12-31T23:59:59.999Z', '2026-12', 31],
  ])('in UTC, %s is in %s, %d days long', (at, id, days) => {
    const b = periodBounds('month', 'UTC', ms(at));
    expect(b.id).toBe(id);
    expect((b.end - b.start) / DAY).toBe(days);
    expect(new Date(b.start).toISOString()).toBe(`${id}-01T00:00:00.000Z`);
  });

  it('has months an hour short or long where they contain a daylight-saving change', () => {
    const march = periodBounds('month', 'Europe/Berlin', ms('2026-03-15T00:00:00Z'));
    expect(march).toMatchObject({ start: ms('2026-02-28T23:00:00Z'), end: ms('2026-03-31T22:00:00Z'), id: '2026-03' });
    expect(march.end - march.start).toBe(31 * DAY - HOUR);
    const october = periodBounds('month', 'Europe/Berlin', ms('2026-10-15T00:00:00Z'));
    expect(october.end - october.start).toBe(31 * DAY + HOUR);
    const leapFebruary = periodBounds('month', 'America/New_York', ms('2028-02-29T12:00:00Z'));
    expect(leapFebruary).toMatchObject({ start: ms('2028-02-01T05:00:00Z'), end: ms('2028-03-01T05:00:00Z'), id: '2028-02' });
  });
});

describe('weeks', () => {
  it.each([
    // weekStartsOn, instant, start, end, id
    [undefined, '2026-11-22T14:05:09.123Z', '2026-11-16T00:00:00.000Z', '2026-11-23T00:00:00.000Z', '2026-W47'],
    [1, '2026-11-23T00:00:00.000Z', '2026-11-23T00:00:00.000Z', '2026-11-30T00:00:00.000Z', '2026-W48'],
    [0, '2026-11-22T14:05:09.123Z', '2026-11-22T00:00:00.000Z', '2026-11-29T00:00:00.000Z', '2026-W47-7'],
    [0, '2026-11-21T23:59:59.999Z', '2026-11-15T00:00:00.000Z', '2026-11-22T00:00:00.000Z', '2026-W46-7'],
    [6, '2026-11-22T14:05:09.123Z', '2026-11-21T00:00:00.000Z', '2026-11-28T00:00:00.000Z', '2026-W47-6'],
    [3, '2026-11-22T14:05:09.123Z', '2026-11-18T00:00:00.000Z', '2026-11-25T00:00:00.000Z', '2026-W47-3'],
    // Year boundaries: 1 January 2027 (a Friday) belongs to ISO week 53 of 2026, and Monday
    // 30 December 2024 starts week 1 of 2025.
    [undefined, '2027-01-01T12:00:00.000Z', '2026-12-28T00:00:00.000Z', '2027-01-04T00:00:00.000Z', '2026-W53'],
    [undefined, '2024-12-31T12:00:00.000Z', '2024-12-30T00:00:00.000Z', '2025-01-06T00:00:00.000Z', '2025-W01'],
    [0, '2027-01-01T12:00:00.000Z', '2026-12-27T00:00:00.000Z', '2027-01-03T00:00:00.000Z', '2026-W52-7'],
    [0, '2024-12-31T12:00:00.000Z', '2024-12-29T00:00:00.000Z', '2025-01-05T00:00:00.000Z', '2024-W52-7'],
    [undefined, '2021-01-03T12:00:00.000Z', '2020-12-28T00:00:00.000Z', '2021-01-04T00:00:00.000Z', '2020-W53'],
  ] as const)('weekStartsOn %s: %s is in [%s, %s) named %s', (weekStartsOn, at, start, end, id) => {
    const options = weekStartsOn === undefined ? undefined : { weekStartsOn };
    expect(bounds('week', 'UTC', at, options)).toEqual({ start, end, id });
  });

  it('has a week an hour short where it contains the spring change', () => {
    const b = periodBounds('week', 'Europe/Berlin', ms('2026-03-27T12:00:00Z'));
    expect(b).toMatchObject({ start: ms('2026-03-22T23:00:00Z'), end: ms('2026-03-29T22:00:00Z'), id: '2026-W13' });
    expect(b.end - b.start).toBe(7 * DAY - HOUR);
  });
});

describe('year boundaries', () => {
  it('moves to the new year at local midnight, which differs between zones', () => {
    const t = ms('2026-12-31T23:30:00Z');
    expect(bounds('day', 'Europe/Berlin', '2026-12-31T23:30:00Z')).toEqual({
      start: '2026-12-31T23:00:00.000Z',
      end: '2027-01-01T23:00:00.000Z',
      id: '2027-01-01',
    });
    expect(periodBounds('month', 'Europe/Berlin', t).id).toBe('2027-01');
    expect(periodBounds('month', 'America/New_York', t).id).toBe('2026-12');
    expect(periodBounds('day', 'America/New_York', t).id).toBe('2026-12-31');
    expect(periodBounds('hour', 'Asia/Kathmandu', t).id).toBe('2027-01-01T05+05:45');
    expect(bounds('month', 'America/New_York', '2026-12-31T23:30:00Z')).toEqual({
      start: '2026-12-01T05:00:00.000Z',
      end: '2027-01-01T05:00:00.000Z',
      id: '2026-12',
    });
  });

  it('names far years with a sign and six digits, as Date#toISOString does', () => {
    expect(periodBounds('day', 'UTC', ms('+012026-03-04T05:00:00Z')).id).toBe('+012026-03-04');
    expect(periodBounds('month', 'UTC', ms('-000005-07-01T00:00:00Z')).id).toBe('-000005-07');
    expect(periodBounds('day', 'UTC', ms('0001-01-01T00:00:00Z')).id).toBe('0001-01-01');
  });

  it('works at the ends of the Date range', () => {
    for (const t of [8.64e15, -8.64e15]) {
      for (const period of ['hour', 'day', 'week', 'month'] as const) {
        const b = periodBounds(period, 'America/New_York', t);
        expect(b.start).toBeLessThanOrEqual(t);
        expect(b.end).toBeGreaterThan(t);
      }
    }
  });
});
