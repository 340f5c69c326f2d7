import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { parseInstant, toIso } from '../../src/domain/validate.js';

/**
 * Which instants parseInstant accepts and what it reads them as is persisted behaviour (instants are
 * stored in events, and the refusals and their messages are API behaviour), so it is pinned here from
 * the outside: against Date.parse where the string names a real calendar time, and by the calendar rules
 * where it does not.
 */

const FIRST_MS = Date.parse('0100-01-01T00:00:00.000Z');
const LAST_MS = Date.parse('9999-12-31T23:59:59.999Z');

function refusal(input: unknown): string | null {
  try {
    parseInstant(input, 'at');
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe('validation_failed');
    expect((error as DomainError).details).toEqual({ field: 'at' });
    return (error as DomainError).message;
  }
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** A real instant written with a fraction of 0-9 digits and any offset of -23:59..+23:59. */
const writtenInstant = fc
  .record({
    ms: fc.integer({ min: FIRST_MS + 86_400_000, max: LAST_MS - 86_400_000 }),
    fraction: fc.stringMatching(/^\d{0,9}$/),
    offsetMinutes: fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
  })
  .map(({ ms, fraction, offsetMinutes }) => {
    // The wall-clock time at that offset, written with the offset: the same instant.
    const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 19);
    const abs = Math.abs(offsetMinutes);
    const zone =
      offsetMinutes === 0
        ? 'Z'
        : `${offsetMinutes < 0 ? '-' : '+'}${pad(Math.floor(abs / 60), 2)}:${pad(abs % 60, 2)}`;
    const fractionMs = fraction === '' ? 0 : Number(`${fraction}00`.slice(0, 3));
    return {
      text: `${local}${fraction === '' ? '' : `.${fraction}`}${zone}`,
      ms: Math.floor(ms / 1000) * 1000 + fractionMs,
    };
  });

describe('parseInstant', () => {
  it('reads a real instant written with any fraction and offset as that instant', () => {
    fc.assert(
      fc.property(writtenInstant, ({ text, ms }) => {
        expect(parseInstant(text, 'at')).toBe(ms);
        expect(parseInstant(text, 'at')).toBe(Date.parse(text));
      }),
      { numRuns: 5_000 },
    );
  });

  it('reads back what toIso writes', () => {
    fc.assert(
      fc.property(fc.integer({ min: FIRST_MS, max: LAST_MS }), (ms) => {
        expect(parseInstant(toIso(ms), 'at')).toBe(ms);
      }),
      { numRuns: 5_000 },
    );
  });

  it('refuses fields that name no calendar time (the day past its month, hour 24, a leap second, offset hour 24)', () => {
    const calendar = 'at is not a valid calendar date and time';
    for (const text of [
      '2026-02-29T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-00-10T00:00:00Z',
      '2026-01-00T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T00:60:00Z',
      '2030-06-30T23:59:60Z',
      '2026-01-01T00:00:00+24:00',
      '2026-01-01T00:00:00+00:60',
      '1900-02-29T00:00:00Z',
      // Year 0 is a leap year, but years 0-99 are read as 1900-1999 for the calendar check (pinned).
      '0000-02-29T00:00:00Z',
    ]) {
      expect(refusal(text), text).toBe(calendar);
    }
    for (const text of ['2024-02-29T00:00:00Z', '2000-02-29T00:00:00Z', '0004-02-29T12:00:00Z']) {
      expect(refusal(text), text).toBeNull();
    }
  });

  it('refuses anything that is not an instant with a zone', () => {
    const shape = 'at must be an ISO-8601 instant with a zone, e.g. 2026-01-31T10:00:00Z';
    for (const input of [
      '2026-01-01T00:00:00',
      '2026-01-01',
      '2026-01-01 00:00:00Z',
      '2026-01-01T00:00:00.1234567890Z',
      '+02026-01-01T00:00:00Z',
      '2026-01-01T00:00:00z',
      '',
      1_767_225_600_000,
      null,
      undefined,
      {},
    ]) {
      expect(refusal(input), String(input)).toBe(shape);
    }
    fc.assert(
      fc.property(fc.anything(), (input) => {
        if (typeof input === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(input)) return;
        expect(refusal(input)).toBe(shape);
      }),
      { numRuns: 1_000 },
    );
  });

  it('February 29 is accepted exactly in Gregorian leap years (years 0-99 read as 1900-1999)', () => {
    for (let year = 0; year <= 9999; year++) {
      const y = year <= 99 ? 1900 + year : year;
      const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
      expect(refusal(`${pad(year, 4)}-02-29T12:00:00Z`) === null, String(year)).toBe(leap);
    }
  });
});
