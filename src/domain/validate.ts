import { DomainError } from './errors.js';

/**
 * Edge validation shared by the deciders. Every failure is a DomainError('validation_failed') naming
 * the field, so a client can point at the bad input. Deciders call these on every command field they
 * use, because commands arrive from HTTP, webhooks and process managers alike.
 */

import { ENTITY_ID_PATTERN, UUID_PATTERN } from './ids.js';

/**
 * ISO-8601 instant with a zone (`Z` or an offset): local times are ambiguous for money deadlines.
 * Groups: year, month, day, hour, minute, second, offset hour, offset minute.
 */
const ISO_INSTANT_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/**
 * Days in `month` (1-12) of `year`. Date.UTC reads years 0-99 as 1900-1999, so 0000-02-29 is refused
 * although year 0 is a leap year: kept, because which stored or requested instants are refused must not
 * change (test/domain/validate.property.unit.test.ts pins it).
 */
const daysInMonth = (year: number, month: number): number => new Date(Date.UTC(year, month, 0)).getUTCDate();

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
 * Parses an ISO-8601 instant to epoch milliseconds (Date.parse: fraction truncated to milliseconds,
 * proleptic Gregorian), after checking the fields name a real calendar time: Date.parse would roll
 * 2026-02-30 over into March and read a leap second as the next minute.
 */
export function parseInstant(value: unknown, field: string): number {
  const match = typeof value === 'string' ? ISO_INSTANT_PATTERN.exec(value) : null;
  if (typeof value !== 'string' || match === null) {
    validationFailed(`${field} must be an ISO-8601 instant with a zone, e.g. 2026-01-31T10:00:00Z`, {
      field,
    });
  }
  const [year, month, day, hour, minute, second, offsetHour, offsetMinute] = match
    .slice(1)
    .map((part) => (part === undefined ? 0 : Number(part))) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
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
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) validationFailed(`${field} is not a valid date`, { field });
  return ms;
}

/** Canonical form of an instant in events: UTC, millisecond precision (Date#toISOString). */
export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}

export function requireIntegerInRange(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    validationFailed(`${field} must be an integer from ${min} to ${max}`, { field, min, max });
  }
  return value;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** Who asks for a command: an id and a role, as ActorSchema stores them. */
export function requireActor(value: unknown): { id: string; role: string } {
  if (value === null || typeof value !== 'object') validationFailed('actor is required', { field: 'actor' });
  const actor = value as { id?: unknown; role?: unknown };
  if (typeof actor.id !== 'string' || actor.id.length === 0 || actor.id.length > 200) {
    validationFailed('actor.id is required', { field: 'actor.id' });
  }
  if (typeof actor.role !== 'string' || actor.role.length === 0 || actor.role.length > 64) {
    validationFailed('actor.role is required', { field: 'actor.role' });
  }
  return { id: actor.id, role: actor.role };
}

/** Manual adjustments are finance-admin only (docs/ledger-flows.md); the API checks too, the domain refuses anyway. */
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
