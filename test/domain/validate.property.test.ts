import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { parseInstant, toIso, validationFailed } from '../../src/domain/validate.js';

// ---------------------------------------------------------------------------------------------------
// The implementations before the arithmetic rewrite (regex + Date.UTC + Date.parse, Date#toISOString),
// kept verbatim as the reference: instants are persisted in events, and which inputs are refused (with
// which message) is API behaviour.

const OLD_ISO_INSTANT_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

const oldDaysInMonth = (year: number, month: number): number =>
  new Date(Date.UTC(year, month, 0)).getUTCDate();

function oldParseInstant(value: unknown, field: string): number {
  const match = typeof value === 'string' ? OLD_ISO_INSTANT_PATTERN.exec(value) : null;
  if (typeof value !== 'string' || !match) {
    validationFailed(`${field} must be an ISO-8601 instant with a zone, e.g. 2026-01-31T10:00:00Z`, {
      field,
    });
  }
  const [year, month, day, hour, minute, second, offsetHour, offsetMinute] = match
    .slice(1)
    .map((part) => (part === undefined ? 0 : Number(part)));
  if (
    month! < 1 ||
    month! > 12 ||
    day! < 1 ||
    day! > oldDaysInMonth(year!, month!) ||
    hour! > 23 ||
    minute! > 59 ||
    second! > 59 ||
    offsetHour! > 23 ||
    offsetMinute! > 59
  ) {
    validationFailed(`${field} is not a valid calendar date and time`, { field });
  }
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) validationFailed(`${field} is not a valid date`, { field });
  return ms;
}

function oldToIso(ms: number): string {
  return new Date(ms).toISOString();
}

// ---------------------------------------------------------------------------------------------------

type Outcome =
  | { value: unknown }
  | { error: string; message: string; code?: string; details?: Record<string, unknown> };

function outcome(run: () => unknown): Outcome {
  try {
    return { value: run() };
  } catch (error) {
    if (error instanceof DomainError) {
      return { error: error.name, message: error.message, code: error.code, details: error.details };
    }
    return { error: (error as Error).name, message: (error as Error).message };
  }
}

const sameParse = (input: unknown): void => {
  expect(outcome(() => parseInstant(input, 'at'))).toEqual(outcome(() => oldParseInstant(input, 'at')));
};

const digits = (length: number, max: number) =>
  fc.integer({ min: 0, max }).map((n) => String(n).padStart(length, '0'));

/** Instant-shaped strings, valid and not: out-of-range fields, 0-10 fraction digits, every zone form. */
const instantLike = fc
  .record({
    year: digits(4, 9999),
    month: digits(2, 19),
    day: digits(2, 39),
    hour: digits(2, 29),
    minute: digits(2, 69),
    second: fc.option(digits(2, 69), { nil: undefined }),
    fraction: fc.option(fc.stringMatching(/^\d{1,10}$/), { nil: undefined }),
    zone: fc.oneof(
      fc.constant('Z'),
      fc.constant(''),
      fc.tuple(fc.constantFrom('+', '-'), digits(2, 29), digits(2, 69)).map(([s, h, m]) => `${s}${h}:${m}`),
    ),
  })
  .map(
    ({ year, month, day, hour, minute, second, fraction, zone }) =>
      `${year}-${month}-${day}T${hour}:${minute}${second === undefined ? '' : `:${second}`}${
        second !== undefined && fraction !== undefined ? `.${fraction}` : ''
      }${zone}`,
  );

/** Mostly-valid instants (real calendar days), so the arithmetic is compared far more than the refusals. */
const validInstant = fc
  .record({
    ms: fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }),
    fraction: fc.stringMatching(/^\d{0,9}$/),
    offsetMinutes: fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
  })
  .map(({ ms, fraction, offsetMinutes }) => {
    const base = new Date(ms).toISOString().slice(0, 19);
    const sign = offsetMinutes < 0 ? '-' : '+';
    const abs = Math.abs(offsetMinutes);
    const zone =
      offsetMinutes === 0
        ? 'Z'
        : `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
    return `${base}${fraction === '' ? '' : `.${fraction}`}${zone}`;
  })
  .filter((s) => /^\d{4}-/.test(s));

describe('parseInstant equals the Date.parse implementation', () => {
  it('on instant-shaped strings (valid and invalid fields)', () => {
    fc.assert(fc.property(instantLike, sameParse), { numRuns: 20_000 });
  });

  it('on real calendar instants with fractions and offsets', () => {
    fc.assert(fc.property(validInstant, sameParse), { numRuns: 20_000 });
  });

  it('on instant-shaped strings with one character changed, and on anything at all', () => {
    const mutated = fc
      .tuple(instantLike, fc.nat(), fc.string({ unit: 'binary', maxLength: 2 }))
      .map(([s, at, insert]) => {
        const i = at % (s.length + 1);
        return s.slice(0, i) + insert + s.slice(i + 1);
      });
    fc.assert(fc.property(mutated, sameParse), { numRuns: 10_000 });
    fc.assert(fc.property(fc.anything(), sameParse), { numRuns: 2_000 });
  });

  it('on February 29 of every year 0000-9999 (Date.UTC reads 0-99 as 1900-1999)', () => {
    for (let year = 0; year <= 9999; year++) {
      sameParse(`${String(year).padStart(4, '0')}-02-29T12:00:00Z`);
    }
  });

  it('on the last days of every month in boundary years', () => {
    for (const year of [0, 1, 4, 99, 100, 400, 1582, 1900, 1970, 2000, 2024, 2026, 2100, 9999]) {
      for (let month = 1; month <= 12; month++) {
        for (let day = 27; day <= 32; day++) {
          const ymd = `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
          sameParse(`${ymd}T00:00:00Z`);
          sameParse(`${ymd}T23:59:59.999-23:59`);
          sameParse(`${ymd}T00:00+23:59`);
        }
      }
    }
  });
});

describe('toIso equals Date#toISOString', () => {
  const sameIso = (ms: number): void => {
    expect(outcome(() => toIso(ms))).toEqual(outcome(() => oldToIso(ms)));
  };

  it('on integers across and beyond the four-digit-year range', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: -62_167_219_200_000 - 1_000, max: 253_402_300_799_999 + 1_000 }),
          fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }),
          fc.integer({ min: -8_640_000_000_000_001, max: 8_640_000_000_000_001 }),
        ),
        sameIso,
      ),
      { numRuns: 30_000 },
    );
  });

  it('on any double (fractions, -0, NaN, infinities throw alike)', () => {
    fc.assert(fc.property(fc.double(), sameIso), { numRuns: 10_000 });
  });

  it('at the edges', () => {
    for (const ms of [
      0, -0, -1, 1, 999, -62_167_219_200_000, -62_167_219_200_001, 253_402_300_799_999, 253_402_300_800_000,
      951_782_400_000, 951_868_799_999, 4_107_542_400_000, -2_203_891_200_000,
    ]) {
      sameIso(ms);
    }
  });
});
