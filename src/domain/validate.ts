import { DomainError } from './errors.js';

/**
 * Edge validation shared by the deciders. Every failure is a DomainError('validation_failed') naming
 * the field, so a client can point at the bad input. Deciders call these on every command field they
 * use, because commands arrive from HTTP, webhooks and process managers alike.
 */

import { ENTITY_ID_PATTERN, UUID_PATTERN } from './validation-patterns.js';

export { ENTITY_ID_PATTERN, UUID_PATTERN };

/**
 * ISO-8601 instant with a zone (`Z` or an offset): local times are ambiguous for money deadlines.
 * Groups: year, month, day, hour, minute, second, fraction digits, offset sign, offset hour, minute.
 */
const ISO_INSTANT_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):(\d{2}))$/;

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/**
 * Days in `month` (1-12) of `year` (0-9999), as `new Date(Date.UTC(year, month, 0)).getUTCDate()` answered
 * before (kept byte-identical: which instants are refused must not change): Date.UTC reads years 0-99 as
 * 1900-1999, so 0000-02-29 is refused although year 0 is a leap year.
 */
function daysInMonth(year: number, month: number): number {
  if (month !== 2) return DAYS_IN_MONTH[month]!;
  const y = year <= 99 ? 1900 + year : year;
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil; any year). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const shiftedMonth = month > 2 ? month - 3 : month + 9;
  const dayOfYear = Math.floor((153 * shiftedMonth + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

export const MAX_TEXT_LENGTH = 500;

export function validationFailed(message: string, details: Record<string, unknown> = {}): never {
  throw new DomainError('validation_failed', message, details);
}

export function requireEntityId(value: unknown, field: string): string {
  if (typeof value !== 'string' || !ENTITY_ID_PATTERN.test(value)) {
    validationFailed(`${field} must be 1-64 characters of [A-Za-z0-9_-]`, { field });
  }
  return value;
}

export function requireUuid(value: unknown, field: string): string {
  if (typeof value !== 'string' || !UUID_PATTERN.test(value)) {
    validationFailed(`${field} must be a lowercase UUID`, { field });
  }
  return value;
}

/** Non-blank free text (reasons, descriptions), trimmed, at most maxLength characters. */
export function requireText(value: unknown, field: string, maxLength = MAX_TEXT_LENGTH): string {
  if (typeof value !== 'string' || value.trim().length === 0) {
    validationFailed(`${field} is required`, { field });
  }
  const trimmed = value.trim();
  if (trimmed.length > maxLength) {
    validationFailed(`${field} must be at most ${maxLength} characters`, { field, maxLength });
  }
  return trimmed;
}

/**
 * Parses an ISO-8601 instant to epoch milliseconds. The arithmetic gives what Date.parse gives for every
 * string the pattern and the calendar check accept (fraction truncated to milliseconds, proleptic
 * Gregorian, year 0 literal); test/domain/validate.property.test.ts compares it with the Date.parse version.
 */
export function parseInstant(value: unknown, field: string): number {
  const match = typeof value === 'string' ? ISO_INSTANT_PATTERN.exec(value) : null;
  if (match === null) {
    validationFailed(`${field} must be an ISO-8601 instant with a zone, e.g. 2026-01-31T10:00:00Z`, {
      field,
    });
  }
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  const hour = Number(match[4]);
  const minute = Number(match[5]);
  const second = match[6] === undefined ? 0 : Number(match[6]);
  const fraction = match[7];
  const offsetHour = match[9] === undefined ? 0 : Number(match[9]);
  const offsetMinute = match[10] === undefined ? 0 : Number(match[10]);
  // Date.parse would roll 2026-02-30 over into March; a deadline must name a real calendar time.
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    hour > 23 ||
    minute > 59 ||
    second > 59 ||
    offsetHour > 23 ||
    offsetMinute > 59
  ) {
    validationFailed(`${field} is not a valid calendar date and time`, { field });
  }
  const fractionMs = fraction === undefined ? 0 : Number(`${fraction}00`.slice(0, 3));
  const offsetMs = (offsetHour * 60 + offsetMinute) * 60_000 * (match[8] === '-' ? -1 : 1);
  const ms =
    daysFromCivil(year, month, day) * DAY_MS +
    ((hour * 60 + minute) * 60 + second) * 1000 +
    fractionMs -
    offsetMs;
  if (!Number.isFinite(ms)) validationFailed(`${field} is not a valid date`, { field });
  return ms;
}

/** Epoch milliseconds of 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: four-digit years. */
const MIN_FOUR_DIGIT_YEAR_MS = -62_167_219_200_000;
const MAX_FOUR_DIGIT_YEAR_MS = 253_402_300_799_999;

const TWO_DIGITS: readonly string[] = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'));

/**
 * Canonical form of an instant in events: UTC, millisecond precision; exactly Date#toISOString, which
 * still formats what is not an integer in the four-digit-year range (and throws for invalid times).
 */
export function toIso(ms: number): string {
  if (!Number.isInteger(ms) || ms < MIN_FOUR_DIGIT_YEAR_MS || ms > MAX_FOUR_DIGIT_YEAR_MS) {
    return new Date(ms).toISOString();
  }
  const days = Math.floor(ms / DAY_MS);
  const msOfDay = ms - days * DAY_MS;
  // H. Hinnant's civil_from_days.
  const shifted = days + 719_468;
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1;
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(msOfDay / 3_600_000);
  const minute = Math.floor(msOfDay / 60_000) % 60;
  const second = Math.floor(msOfDay / 1000) % 60;
  const milli = msOfDay % 1000;
  const d = TWO_DIGITS;
  return `${d[Math.floor(year / 100)]}${d[year % 100]}-${d[month]}-${d[day]}T${d[hour]}:${d[minute]}:${d[second]}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

export function requireIntegerInRange(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    validationFailed(`${field} must be an integer from ${min} to ${max}`, { field, min, max });
  }
  return value;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** Manual adjustments are finance-admin only (DESIGN.md); the API checks too, the domain refuses anyway. */
export function requireFinanceAdmin(value: unknown): { id: string; role: string } {
  if (value === null || typeof value !== 'object') validationFailed('actor is required', { field: 'actor' });
  const actor = value as { id?: unknown; role?: unknown };
  if (typeof actor.id !== 'string' || actor.id.length === 0 || actor.id.length > 200) {
    validationFailed('actor.id is required', { field: 'actor.id' });
  }
  if (actor.role !== 'finance_admin') {
    throw new DomainError('forbidden', 'manual adjustments require the finance_admin role', {
      role: String(actor.role),
    });
  }
  return { id: actor.id, role: actor.role };
}

export function requireDirection(value: unknown, field = 'direction'): 'debit' | 'credit' {
  if (value !== 'debit' && value !== 'credit')
    validationFailed(`${field} must be 'debit' or 'credit'`, { field });
  return value;
}
