import { type Static, Type } from '@sinclair/typebox';
import {
  type CalendarPeriods,
  DAY_KEY_PATTERN,
  MONTH_KEY_PATTERN,
  PERIOD_KINDS,
  type PeriodKind,
  WEEK_KEY_PATTERN,
} from './calendar.js';
import { DomainError, invariant } from './errors.js';
import { formatMoney } from './money.js';
import { Nullable, PositiveAmountSchema, strictObject } from './schema.js';
import { validationFailed } from './validate.js';

/**
 * Spending limits of a wallet (docs/ledger-flows.md, "Spending limits"): at most so much per booking,
 * per calendar day, ISO week and month in the tenant's time zone. They live in the wallet's own stream
 * (wallet.ts), so the check and the hold it admits are one append under the wallet's expected revision:
 * two concurrent bookings can never both fit into the same room.
 *
 * What counts: a booking hold counts in full, in the periods of the moment it was placed. When the
 * hold resolves, what the student was not charged comes back: all of it when released without a fee
 * (cancelled in time, expired, declined), `held - fee` for a late cancellation, `held - captured` for a
 * capture of less than the hold. A refund after a capture gives nothing back (the limit caps what the
 * student committed to; a refund is the platform's decision, not new room to spend). Room given back
 * only matters while its period is the current one: a hold from an earlier day gives back to the week
 * and month it shares with today, not to today.
 */

export const LIMIT_NAMES = ['perBooking', 'perDay', 'perWeek', 'perMonth'] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

const PERIOD_OF: Record<Exclude<LimitName, 'perBooking'>, PeriodKind> = {
  perDay: 'day',
  perWeek: 'week',
  perMonth: 'month',
};

/** Each limit in the wallet's minor units; null: no limit of that kind. */
export const SpendingLimitsSchema = strictObject({
  perBooking: Nullable(PositiveAmountSchema),
  perDay: Nullable(PositiveAmountSchema),
  perWeek: Nullable(PositiveAmountSchema),
  perMonth: Nullable(PositiveAmountSchema),
});
export type SpendingLimits = Static<typeof SpendingLimitsSchema>;

export const NO_LIMITS: Readonly<SpendingLimits> = Object.freeze({
  perBooking: null,
  perDay: null,
  perWeek: null,
  perMonth: null,
});

/** The periods a hold was counted under (stored in WalletHoldPlaced). */
export const SpendingPeriodsSchema = strictObject({
  day: Type.String({ pattern: DAY_KEY_PATTERN.source }),
  week: Type.String({ pattern: WEEK_KEY_PATTERN.source }),
  month: Type.String({ pattern: MONTH_KEY_PATTERN.source }),
});

/** What was spent in the latest period of one kind the wallet has seen. */
export interface SpendCounter {
  key: string;
  amount: number;
}

export interface SpendingState {
  limits: SpendingLimits;
  counters: Record<PeriodKind, SpendCounter | null>;
}

export const initialSpendingState = (): SpendingState => ({
  limits: { ...NO_LIMITS },
  counters: { day: null, week: null, month: null },
});

export const hasLimits = (limits: SpendingLimits): boolean => LIMIT_NAMES.some((n) => limits[n] !== null);

/** Limits from a command: every name present, each null or a positive safe integer. */
export function requireLimits(value: unknown, field = 'limits'): SpendingLimits {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    validationFailed(`${field} must be an object of ${LIMIT_NAMES.join(', ')}`, { field });
  }
  const v = value as Record<string, unknown>;
  const unknownKeys = Object.keys(v).filter((k) => !(LIMIT_NAMES as readonly string[]).includes(k));
  if (unknownKeys.length > 0) {
    validationFailed(`unknown limits: ${unknownKeys.join(', ')}`, { fields: unknownKeys });
  }
  const limits = { ...NO_LIMITS };
  for (const name of LIMIT_NAMES) {
    const amount = v[name] ?? null;
    if (amount !== null && !(Number.isSafeInteger(amount) && (amount as number) > 0)) {
      validationFailed(`${field}.${name} must be null or a positive integer of minor units`, {
        field: `${field}.${name}`,
      });
    }
    limits[name] = amount as number | null;
  }
  return limits;
}

/**
 * The periods a new hold counts under: the current ones, except where the wallet already counted a
 * later period (a process whose clock runs behind): then that later one, so spending is never counted
 * into a period the counters have moved past, and a lagging clock cannot open fresh room.
 */
export function periodsForHold(state: SpendingState, now: CalendarPeriods): CalendarPeriods {
  const pick = (kind: PeriodKind): string => {
    const counter = state.counters[kind];
    return counter !== null && counter.key > now[kind] ? counter.key : now[kind];
  };
  return { day: pick('day'), week: pick('week'), month: pick('month') };
}

/** Spent so far in each of the given periods. */
export function spentIn(state: SpendingState, periods: CalendarPeriods): Record<PeriodKind, number> {
  const spent = (kind: PeriodKind): number => {
    const counter = state.counters[kind];
    return counter !== null && counter.key === periods[kind] ? counter.amount : 0;
  };
  return { day: spent('day'), week: spent('week'), month: spent('month') };
}

export interface LimitStanding {
  limit: number;
  /** null for perBooking (a booking's own amount is the only thing measured against it). */
  spent: number | null;
  remaining: number;
  /** The period key for perDay/perWeek/perMonth. */
  period: string | null;
}

/** Each limit that is set, with what is left of it in the given periods. */
export function limitStandings(
  state: SpendingState,
  periods: CalendarPeriods,
): Record<LimitName, LimitStanding | null> {
  const spent = spentIn(state, periods);
  const standing = (name: LimitName): LimitStanding | null => {
    const limit = state.limits[name];
    if (limit === null) return null;
    if (name === 'perBooking') return { limit, spent: null, remaining: limit, period: null };
    const kind = PERIOD_OF[name];
    return { limit, spent: spent[kind], remaining: Math.max(0, limit - spent[kind]), period: periods[kind] };
  };
  return {
    perBooking: standing('perBooking'),
    perDay: standing('perDay'),
    perWeek: standing('perWeek'),
    perMonth: standing('perMonth'),
  };
}

/**
 * Refuses a hold of `amount` that any limit cannot take, naming the first such limit (per booking,
 * then day, week, month) with what is left of it, and listing every limit it exceeds.
 */
export function checkSpendingLimits(
  state: SpendingState,
  amount: number,
  periods: CalendarPeriods,
  currency: string,
): void {
  const standings = limitStandings(state, periods);
  const exceeded = LIMIT_NAMES.filter((name) => {
    const s = standings[name];
    return s !== null && amount > s.remaining;
  });
  if (exceeded.length === 0) return;
  const name = exceeded[0]!;
  const s = standings[name]!;
  const money = (n: number) => formatMoney({ amount: n, currency });
  const what =
    name === 'perBooking'
      ? `the limit per booking is ${money(s.limit)}`
      : `the limit ${name} is ${money(s.limit)}, ${money(s.remaining)} left in ${s.period}`;
  throw new DomainError(
    'spending_limit_exceeded',
    `a booking of ${money(amount)} is over the spending limit: ${what}`,
    {
      limit: name,
      limitAmount: s.limit,
      remaining: s.remaining,
      ...(s.spent === null ? {} : { spent: s.spent, period: s.period }),
      requested: amount,
      currency,
      exceeded,
    },
  );
}

/** A hold of `amount` placed in `periods`. */
export function countHold(state: SpendingState, amount: number, periods: CalendarPeriods): SpendingState {
  const counters = { ...state.counters };
  for (const kind of PERIOD_KINDS) {
    const counter = counters[kind];
    const key = periods[kind];
    if (counter === null || key > counter.key) counters[kind] = { key, amount };
    else if (key === counter.key) {
      const total = counter.amount + amount;
      invariant(Number.isSafeInteger(total), `spending in ${key} past the safe integers`);
      counters[kind] = { key, amount: total };
    }
    // An earlier period than the counter's: periodsForHold never picks one, and a stored event that
    // has one counted there, in a period no longer tracked.
  }
  return { ...state, counters };
}

/** `amount` of a hold counted in `periods` that the student was not charged comes back. */
export function giveBack(state: SpendingState, amount: number, periods: CalendarPeriods): SpendingState {
  if (amount === 0) return state;
  const counters = { ...state.counters };
  for (const kind of PERIOD_KINDS) {
    const counter = counters[kind];
    if (counter === null || counter.key !== periods[kind]) continue;
    invariant(counter.amount >= amount, `spending in ${counter.key} would go below 0`);
    counters[kind] = { key: counter.key, amount: counter.amount - amount };
  }
  return { ...state, counters };
}

/** The limits `next` raises above `current` (a limit removed is raised without bound). */
export const raisedLimits = (current: SpendingLimits, next: SpendingLimits): LimitName[] =>
  LIMIT_NAMES.filter((name) => {
    const was = current[name];
    const now = next[name];
    return was !== null && (now === null || now > was);
  });

export const sameLimits = (a: SpendingLimits, b: SpendingLimits): boolean =>
  LIMIT_NAMES.every((name) => a[name] === b[name]);
