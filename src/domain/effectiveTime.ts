import { Type } from '@sinclair/typebox';
import { DomainError, invariant } from './errors.js';
import { InstantSchema, UuidSchema } from './schema.js';
import { parseInstant, requireUuid, toIso, validationFailed } from './validate.js';

/**
 * Bi-temporal time (docs/ledger-flows.md, "Backdated entries and closed periods"): an entry has an
 * effective time (when it happened: `effectiveAt`) beside its recorded position and time (when the
 * ledger learned it: the event's position and `metadata.occurredAt`). An event without `effectiveAt`
 * happened when it was recorded, so every event written before the field existed keeps its meaning
 * and its bytes. An entry is never effective after it was recorded (no future-dated entries).
 *
 * Periods are calendar months in UTC, written `yyyy-mm`.
 */

export const PERIOD_PATTERN = /^(\d{4})-(0[1-9]|1[0-2])$/;
export const PeriodSchema = Type.String({ pattern: PERIOD_PATTERN.source });

/** The optional fields of an entry that may be backdated or that corrects an earlier entry. */
export const EffectiveFields = {
  /** When the entry happened, if earlier than when it was recorded. */
  effectiveAt: Type.Optional(InstantSchema),
  /** The entry this one corrects (a correction of a closed period is booked in an open one). */
  corrects: Type.Optional(UuidSchema),
};

export interface EffectiveInput {
  effectiveAt?: string;
  corrects?: string;
}

export function requirePeriod(value: unknown, field = 'period'): string {
  if (typeof value !== 'string' || !PERIOD_PATTERN.test(value) || value < '0001-01') {
    validationFailed(`${field} must be a month as yyyy-mm, e.g. 2026-11`, { field });
  }
  return value;
}

/** The period (UTC month) an instant falls in. */
export function periodOf(instantMs: number): string {
  const d = new Date(instantMs);
  const year = d.getUTCFullYear();
  invariant(year >= 1 && year <= 9999, () => `instant ${toIso(instantMs)} is outside years 0001-9999`);
  return `${String(year).padStart(4, '0')}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** First instant of the period (inclusive). */
export function periodStartMs(period: string): number {
  const m = PERIOD_PATTERN.exec(period);
  invariant(m, () => `not a period: ${period}`);
  const d = new Date(0);
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, 1);
  return d.getTime();
}

/** First instant after the period (exclusive end). */
export function periodEndMs(period: string): number {
  return periodStartMs(nextPeriod(period));
}

export function nextPeriod(period: string): string {
  const m = PERIOD_PATTERN.exec(period);
  invariant(m, () => `not a period: ${period}`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  return month === 12
    ? `${String(year + 1).padStart(4, '0')}-01`
    : `${m[1]}-${String(month + 1).padStart(2, '0')}`;
}

/**
 * The effective fields a command carries into its event, validated: `effectiveAt` no later than
 * `recordedAt` and no earlier than `earliestMs` (when given: how far back this kind of entry may
 * reach), `corrects` an entry id. Absent fields stay absent, so the event's bytes are what they were.
 */
export function effectiveFieldsOf(
  input: EffectiveInput,
  recordedAt: string,
  options: { earliestMs?: number; earliestReason?: string } = {},
): EffectiveInput {
  const out: EffectiveInput = {};
  if (input.effectiveAt !== undefined) {
    const effectiveMs = parseInstant(input.effectiveAt, 'effectiveAt');
    const recordedMs = parseInstant(recordedAt, 'recordedAt');
    if (effectiveMs > recordedMs) {
      validationFailed(`effectiveAt ${toIso(effectiveMs)} is in the future: entries are never future-dated`, {
        field: 'effectiveAt',
        recordedAt: toIso(recordedMs),
      });
    }
    if (options.earliestMs !== undefined && effectiveMs < options.earliestMs) {
      throw new DomainError(
        'validation_failed',
        options.earliestReason ?? `effectiveAt may not be earlier than ${toIso(options.earliestMs)}`,
        { field: 'effectiveAt', earliest: toIso(options.earliestMs) },
      );
    }
    out.effectiveAt = toIso(effectiveMs);
  }
  if (input.corrects !== undefined) out.corrects = requireUuid(input.corrects, 'corrects');
  return out;
}

/** The effective time of an event: its `effectiveAt`, else when it was recorded. */
export function effectiveAtOf(event: { data: unknown; metadata: { occurredAt: string } }): string {
  const effectiveAt = (event.data as { effectiveAt?: unknown }).effectiveAt;
  return typeof effectiveAt === 'string' ? effectiveAt : event.metadata.occurredAt;
}

/**
 * The effective fields of an entry of a constrained account (a wallet, a tutor's earnings): those are
 * decided in their owning stream, which does not see the closed periods, so their effectiveAt stays
 * inside the month they are recorded in (that month cannot be closed yet: periods.ts).
 */
export function sameMonthEffectiveFields(input: EffectiveInput & { recordedAt?: string }): EffectiveInput {
  if (input.effectiveAt === undefined) return effectiveFieldsOf(input, input.recordedAt ?? '');
  if (input.recordedAt === undefined) validationFailed('recordedAt is required with effectiveAt');
  const recordedMs = parseInstant(input.recordedAt, 'recordedAt');
  return effectiveFieldsOf(input, input.recordedAt, {
    earliestMs: periodStartMs(periodOf(recordedMs)),
    earliestReason: `wallets and tutor earnings are backdated only within the month they are recorded in (from ${toIso(periodStartMs(periodOf(recordedMs)))}); book a correction dated now with "corrects" instead`,
  });
}
