import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { calendarPeriods, monthBoundsMs } from '../../src/domain/calendar.js';

/** Month bounds in a zone (monthly commission invoices are due at their end): checked against calendarPeriods. */
const ZONES = [
  'UTC',
  'Europe/Berlin',
  'America/New_York',
  'Asia/Kolkata',
  'Pacific/Auckland',
  'America/St_Johns',
];

describe('monthBoundsMs', () => {
  it('a month is [local midnight of its first day, local midnight of the next month): the instant just inside is in it, the end is not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.parse('1990-01-01T00:00:00Z'), max: Date.parse('2060-01-01T00:00:00Z') }),
        fc.constantFrom(...ZONES),
        (ms, zone) => {
          const month = calendarPeriods(ms, zone).month;
          const { startMs, endMs } = monthBoundsMs(month, zone);
          expect(startMs).toBeLessThanOrEqual(ms);
          expect(ms).toBeLessThan(endMs);
          expect(calendarPeriods(startMs, zone).month).toBe(month);
          expect(calendarPeriods(startMs - 1, zone).month).not.toBe(month);
          expect(calendarPeriods(endMs - 1, zone).month).toBe(month);
          expect(calendarPeriods(endMs, zone).month).not.toBe(month);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('knows summer time', () => {
    expect(monthBoundsMs('2026-03', 'Europe/Berlin')).toEqual({
      startMs: Date.parse('2026-02-28T23:00:00Z'),
      endMs: Date.parse('2026-03-31T22:00:00Z'),
    });
    expect(monthBoundsMs('2026-12', 'UTC').endMs).toBe(Date.parse('2027-01-01T00:00:00Z'));
  });
});
