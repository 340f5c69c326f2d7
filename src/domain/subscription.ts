import { Type } from '@sinclair/typebox';
import { PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS, PLATFORM_REVENUE_SUBSCRIPTIONS } from './accounts.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { type JournalEntry, JournalEntrySchema, postEntry } from './journal.js';
import { assertCurrency, formatMoney, mulDivFloor } from './money.js';
import {
  AmountSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  strictObject,
} from './schema.js';
import {
  type Plan,
  PlanBenefitsSchema,
  type PlanInterval,
  PlanIntervalSchema,
  type SubscriptionPolicy,
} from './subscriptionPlans.js';
import { DAY_MS, parseInstant, requireEntityId, requireUuid, toIso, validationFailed } from './validate.js';

/**
 * A student's VIP subscription: stream `subscription-{t}.{subscriptionId}` (docs/ledger-flows.md,
 * "VIP subscriptions"). It owns no constrained account: every payment is a wallet event
 * (WalletSubscriptionCharged: Dr wallet, Cr platform:deferred-revenue:subscriptions) that this stream
 * then records as a period (or a plan change) with the terms it runs on. This stream books the
 * recognition of that deferred revenue into platform:revenue:subscriptions, day by day.
 *
 * Periods: period n runs from anchor + n intervals to anchor + n + 1 intervals (UTC; a month from the
 * 31st ends on the last day of a shorter month), so a late renewal (dunning) never shifts the calendar.
 * A period has N = (end - start) / 1 day whole days (start and end share the time of day in UTC).
 *
 * Each payment of a period is a tranche covering days [startDay, N) of it: the period's price from day 0,
 * an upgrade's prorated charge from the day after the one in progress. **Rounding rule**: after d days of
 * a tranche of amount A and length L = N - startDay, floor(A * d / L) of it is recognised; a day's part is
 * the difference of two such floors, so the parts add up to A exactly when d reaches L. A refund (cancel
 * now, prorated) returns what is not recognised once the day in progress counts as used.
 *
 * Invariant, asserted by evolve at every event: what this subscription was paid, minus what it
 * recognised, minus what it refunded, equals the unrecognised part of the current period's tranches
 * (older periods are always fully recognised when the next starts), and is never negative.
 */

export const MAX_PERIOD = 100_000;
const MAX_TRANCHES_PER_PERIOD = 64;

export const SubscriptionTermsSchema = strictObject({
  planId: EntityIdSchema,
  name: Type.String({ minLength: 1, maxLength: 100 }),
  tier: Type.String({ minLength: 1, maxLength: 32 }),
  interval: PlanIntervalSchema,
  price: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  currency: CurrencySchema,
  benefits: PlanBenefitsSchema,
  /** The plan catalog version these terms were taken from. */
  catalogVersion: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
});
export type SubscriptionTerms = {
  planId: string;
  name: string;
  tier: string;
  interval: PlanInterval;
  price: number;
  currency: string;
  benefits: Plan['benefits'];
  catalogVersion: number;
};

export const termsOf = (plan: Plan, catalogVersion: number): SubscriptionTerms => ({
  planId: plan.planId,
  name: plan.name,
  tier: plan.tier,
  interval: plan.interval,
  price: plan.price,
  currency: plan.currency,
  benefits: { ...plan.benefits },
  catalogVersion,
});

// ---------------------------------------------------------------------------------------------------
// Calendar and proration (pure; the service uses the same functions to build commands)

const daysInMonth = (year: number, monthIndex: number): number =>
  new Date(Date.UTC(year, monthIndex + 1, 0)).getUTCDate();

/** anchor + n intervals, in UTC; the anchor's day of month is clamped to the target month's length. */
export function addIntervals(anchorMs: number, interval: PlanInterval, n: number): number {
  const d = new Date(anchorMs);
  const months = d.getUTCMonth() + (interval === 'month' ? n : 12 * n);
  const year = d.getUTCFullYear() + Math.floor(months / 12);
  const month = ((months % 12) + 12) % 12;
  const day = Math.min(d.getUTCDate(), daysInMonth(year, month));
  return Date.UTC(
    year,
    month,
    day,
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    d.getUTCMilliseconds(),
  );
}

export interface PeriodBounds {
  startMs: number;
  endMs: number;
  days: number;
}

export function periodBounds(anchorMs: number, interval: PlanInterval, period: number): PeriodBounds {
  const startMs = addIntervals(anchorMs, interval, period);
  const endMs = addIntervals(anchorMs, interval, period + 1);
  const days = (endMs - startMs) / DAY_MS;
  invariant(Number.isInteger(days) && days >= 28, `period ${period} of ${interval}s is ${days} days`);
  return { startMs, endMs, days };
}

/** Whole days of the period elapsed at `atMs` (what daily recognition has earned), 0..N. */
export const elapsedDays = (bounds: PeriodBounds, atMs: number): number =>
  Math.max(0, Math.min(bounds.days, Math.floor((atMs - bounds.startMs) / DAY_MS)));

/** Days used at `atMs` when the day in progress counts as used (cancel now, upgrades), 0..N. */
export const usedDays = (bounds: PeriodBounds, atMs: number): number =>
  Math.max(0, Math.min(bounds.days, Math.ceil((atMs - bounds.startMs) / DAY_MS)));

/** The upgrade's charge: the price difference for the days left, floored (the student's favour). */
export function upgradeCharge(fromPrice: number, toPrice: number, startDay: number, days: number): number {
  if (toPrice <= fromPrice || startDay >= days) return 0;
  return mulDivFloor(toPrice - fromPrice, days - startDay, days);
}

// ---------------------------------------------------------------------------------------------------
// Commands

export interface StartSubscription {
  type: 'StartSubscription';
  subscriptionId: string;
  studentId: string;
  terms: SubscriptionTerms;
  chargeId: string;
  amount: number;
  startedAt: string;
}

export interface RecognizeSubscriptionRevenue {
  type: 'RecognizeSubscriptionRevenue';
  asOf: string;
  entryId: string;
}

export interface RenewSubscription {
  type: 'RenewSubscription';
  period: number;
  terms: SubscriptionTerms;
  chargeId: string;
  amount: number;
  renewedAt: string;
  entryId: string;
}

export interface RecordRenewalFailure {
  type: 'RecordRenewalFailure';
  period: number;
  attempt: number;
  reason: string;
  failedAt: string;
  policy: SubscriptionPolicy;
  entryId: string;
}

export interface UpgradeSubscription {
  type: 'UpgradeSubscription';
  terms: SubscriptionTerms;
  /** The wallet charge paying for it; null when nothing is left to charge (the last day). */
  chargeId: string | null;
  amount: number;
  startDay: number;
  upgradedAt: string;
}

export interface ScheduleDowngrade {
  type: 'ScheduleDowngrade';
  toPlanId: string;
  toPrice: number;
  scheduledAt: string;
}

export interface CancelSubscription {
  type: 'CancelSubscription';
  /** now: ends at once (prorated refund per policy); period_end: scheduled; the scheduler's end. */
  mode: 'now' | 'at_period_end' | 'period_end_reached';
  refund: SubscriptionPolicy['cancelNowRefund'];
  refundId: string;
  at: string;
  entryId: string;
}

export type SubscriptionCommand =
  | StartSubscription
  | RecognizeSubscriptionRevenue
  | RenewSubscription
  | RecordRenewalFailure
  | UpgradeSubscription
  | ScheduleDowngrade
  | CancelSubscription;

// ---------------------------------------------------------------------------------------------------
// Events

const ref = { subscriptionId: EntityIdSchema, studentId: EntityIdSchema, currency: CurrencySchema };
/** Revenue of the closed period recognised by this event (0: nothing was left), with its entry. */
const closing = { recognized: AmountSchema, entry: Type.Optional(JournalEntrySchema) };

export const SUBSCRIPTION_EVENTS = {
  SubscriptionStarted: strictObject({
    ...ref,
    terms: SubscriptionTermsSchema,
    anchorAt: InstantSchema,
    period: Type.Literal(0),
    periodStart: InstantSchema,
    periodEnd: InstantSchema,
    chargeId: EntityIdSchema,
    amount: AmountSchema,
    startedAt: InstantSchema,
  }),
  SubscriptionRevenueRecognized: strictObject({
    ...ref,
    period: Type.Integer({ minimum: 0, maximum: MAX_PERIOD }),
    /** Days of the period recognised after this event (cumulative). */
    throughDay: Type.Integer({ minimum: 1, maximum: 366 }),
    amount: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    asOf: InstantSchema,
    entry: Type.Optional(JournalEntrySchema),
  }),
  SubscriptionRenewed: strictObject({
    ...ref,
    period: Type.Integer({ minimum: 1, maximum: MAX_PERIOD }),
    periodStart: InstantSchema,
    periodEnd: InstantSchema,
    terms: SubscriptionTermsSchema,
    chargeId: EntityIdSchema,
    amount: AmountSchema,
    renewedAt: InstantSchema,
    ...closing,
  }),
  SubscriptionPastDue: strictObject({
    ...ref,
    /** The period that could not be paid. */
    period: Type.Integer({ minimum: 1, maximum: MAX_PERIOD }),
    attempt: Type.Integer({ minimum: 0, maximum: 10 }),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
    failedAt: InstantSchema,
    nextAttemptAt: InstantSchema,
    ...closing,
  }),
  SubscriptionUpgraded: strictObject({
    ...ref,
    period: Type.Integer({ minimum: 0, maximum: MAX_PERIOD }),
    fromPlanId: EntityIdSchema,
    terms: SubscriptionTermsSchema,
    chargeId: Nullable(EntityIdSchema),
    amount: AmountSchema,
    startDay: Type.Integer({ minimum: 0, maximum: 366 }),
    upgradedAt: InstantSchema,
  }),
  SubscriptionDowngradeScheduled: strictObject({
    ...ref,
    fromPlanId: EntityIdSchema,
    toPlanId: EntityIdSchema,
    effectiveAt: InstantSchema,
    scheduledAt: InstantSchema,
  }),
  SubscriptionCancelScheduled: strictObject({
    ...ref,
    effectiveAt: InstantSchema,
    scheduledAt: InstantSchema,
  }),
  SubscriptionCanceled: strictObject({
    ...ref,
    reason: Type.Union([
      Type.Literal('canceled_now'),
      Type.Literal('period_end'),
      Type.Literal('payment_failed'),
    ]),
    canceledAt: InstantSchema,
    /** Unused deferred revenue returned to the wallet (by WalletSubscriptionRefunded, refundId). */
    refund: AmountSchema,
    refundId: Nullable(EntityIdSchema),
    ...closing,
  }),
} as const satisfies EventSchemas;

export type SubscriptionEvent = EventsOf<typeof SUBSCRIPTION_EVENTS>;
export type SubscriptionStarted = EventOf<typeof SUBSCRIPTION_EVENTS, 'SubscriptionStarted'>;
export type SubscriptionCanceled = EventOf<typeof SUBSCRIPTION_EVENTS, 'SubscriptionCanceled'>;

// ---------------------------------------------------------------------------------------------------
// State

export type SubscriptionStatus = 'none' | 'active' | 'past_due' | 'canceled';

export interface Tranche {
  chargeId: string | null;
  amount: number;
  startDay: number;
  recognized: number;
}

export interface SubscriptionState {
  subscriptionId: string | null;
  studentId: string | null;
  currency: string | null;
  status: SubscriptionStatus;
  anchorMs: number;
  terms: SubscriptionTerms | null;
  /** The last period paid for (its tranches below). */
  period: number;
  bounds: PeriodBounds | null;
  tranches: Tranche[];
  /** Days of the current period recognised. */
  recognizedThroughDay: number;
  /** Plan changes in the current period (names the next change's charge). */
  changesInPeriod: number;
  cancelAtPeriodEnd: boolean;
  pendingPlanId: string | null;
  /** The renewal being retried: the attempt that failed last. */
  dunning: { period: number; attempt: number; nextAttemptAtMs: number } | null;
  paid: number;
  recognized: number;
  refunded: number;
  canceledReason: SubscriptionCanceled['data']['reason'] | null;
  canceledAtMs: number | null;
  version: number;
}

export const initialSubscriptionState = (): SubscriptionState => ({
  subscriptionId: null,
  studentId: null,
  currency: null,
  status: 'none',
  anchorMs: 0,
  terms: null,
  period: 0,
  bounds: null,
  tranches: [],
  recognizedThroughDay: 0,
  changesInPeriod: 0,
  cancelAtPeriodEnd: false,
  pendingPlanId: null,
  dunning: null,
  paid: 0,
  recognized: 0,
  refunded: 0,
  canceledReason: null,
  canceledAtMs: null,
  version: 0,
});

/** What this subscription holds in platform:deferred-revenue:subscriptions. */
export const subscriptionDeferred = (s: SubscriptionState): number => s.paid - s.recognized - s.refunded;

/** Benefits apply while active and while past due (the dunning grace period). */
export const hasBenefits = (s: SubscriptionState): boolean =>
  s.status === 'active' || s.status === 'past_due';

/** The charge id of period n's payment (the wallet refuses a second charge of the same id). */
export const periodChargeId = (period: number): string => `period-${period}`;
/** The charge id of the k-th plan change of a period. */
export const changeChargeId = (period: number, k: number): string => `period-${period}-change-${k}`;

// ---------------------------------------------------------------------------------------------------
// decide

function requireLive(
  state: SubscriptionState,
  what: string,
): asserts state is SubscriptionState & {
  terms: SubscriptionTerms;
  bounds: PeriodBounds;
  subscriptionId: string;
  studentId: string;
  currency: string;
} {
  if (state.status === 'none') throw new DomainError('not_found', 'subscription not found');
  if (state.status === 'canceled') {
    throw new DomainError('invalid_state', `cannot ${what}: the subscription is canceled`, {
      status: state.status,
    });
  }
}

function checkTerms(terms: SubscriptionTerms, currency: string | null): SubscriptionTerms {
  if (terms === null || typeof terms !== 'object')
    validationFailed('terms must be an object', { field: 'terms' });
  const c = assertCurrency(terms.currency, 'terms.currency');
  if (currency !== null && c !== currency) {
    throw new DomainError(
      'currency_mismatch',
      `plan ${terms.planId} is in ${c}, the subscription in ${currency}`,
      {
        planCurrency: c,
        currency,
      },
    );
  }
  if (!Number.isSafeInteger(terms.price) || terms.price < 1) {
    validationFailed('terms.price must be a positive amount', { field: 'terms.price' });
  }
  return terms;
}

/** Per tranche, what recognition through `day` adds: floor(A * covered / L) - recognised. */
function recognitionThrough(state: SubscriptionState, day: number): { amount: number; tranches: Tranche[] } {
  const days = state.bounds!.days;
  let amount = 0;
  const tranches = state.tranches.map((t) => {
    const length = days - t.startDay;
    const covered = Math.max(0, Math.min(length, day - t.startDay));
    const target = length === 0 ? t.amount : mulDivFloor(t.amount, covered, length);
    invariant(target >= t.recognized, `tranche ${t.chargeId}: recognition would go back`);
    amount += target - t.recognized;
    return { ...t, recognized: target };
  });
  return { amount, tranches };
}

/** Everything not yet recognised (a closed period, or a cancellation without refund). */
const unrecognized = (state: SubscriptionState): number =>
  state.tranches.reduce((sum, t) => sum + t.amount - t.recognized, 0);

function recognitionEntry(
  state: SubscriptionState,
  entryId: string,
  amount: number,
  why: string,
): { entry?: JournalEntry } {
  if (amount === 0) return {};
  const currency = state.currency!;
  return {
    entry: postEntry({
      entryId,
      currency,
      description: `Subscription ${state.subscriptionId} ${why}: ${formatMoney({ amount, currency })} recognised`,
      lines: [
        { account: PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS, side: 'debit', amount },
        { account: PLATFORM_REVENUE_SUBSCRIPTIONS, side: 'credit', amount },
      ],
    }),
  };
}

export function decideSubscription(
  command: SubscriptionCommand,
  state: SubscriptionState,
): SubscriptionEvent[] {
  switch (command.type) {
    case 'StartSubscription': {
      const subscriptionId = requireEntityId(command.subscriptionId, 'subscriptionId');
      const studentId = requireEntityId(command.studentId, 'studentId');
      const chargeId = requireEntityId(command.chargeId, 'chargeId');
      const startedMs = parseInstant(command.startedAt, 'startedAt');
      if (state.status !== 'none') {
        throw new DomainError('invalid_state', `subscription ${subscriptionId} already exists`, {
          subscriptionId,
        });
      }
      const terms = checkTerms(command.terms, null);
      if (command.amount !== terms.price) {
        validationFailed(`the first period costs the plan's price ${terms.price}, got ${command.amount}`, {
          field: 'amount',
        });
      }
      const bounds = periodBounds(startedMs, terms.interval, 0);
      return [
        {
          type: 'SubscriptionStarted',
          data: {
            subscriptionId,
            studentId,
            currency: terms.currency,
            terms,
            anchorAt: toIso(startedMs),
            period: 0,
            periodStart: toIso(bounds.startMs),
            periodEnd: toIso(bounds.endMs),
            chargeId,
            amount: command.amount,
            startedAt: toIso(startedMs),
          },
        },
      ];
    }

    case 'RecognizeSubscriptionRevenue': {
      requireLive(state, 'recognise revenue');
      const asOfMs = parseInstant(command.asOf, 'asOf');
      const entryId = requireUuid(command.entryId, 'entryId');
      const day = elapsedDays(state.bounds, asOfMs);
      if (day <= state.recognizedThroughDay || state.tranches.length === 0) return [];
      const { amount } = recognitionThrough(state, day);
      return [
        {
          type: 'SubscriptionRevenueRecognized',
          data: {
            subscriptionId: state.subscriptionId,
            studentId: state.studentId,
            currency: state.currency,
            period: state.period,
            throughDay: day,
            amount,
            asOf: toIso(asOfMs),
            ...recognitionEntry(state, entryId, amount, `period ${state.period} through day ${day}`),
          },
        },
      ];
    }

    case 'RenewSubscription': {
      requireLive(state, 'renew');
      const renewedMs = parseInstant(command.renewedAt, 'renewedAt');
      const chargeId = requireEntityId(command.chargeId, 'chargeId');
      const entryId = requireUuid(command.entryId, 'entryId');
      if (command.period !== state.period + 1) {
        throw new DomainError(
          'invalid_state',
          `period ${command.period} is not the next (${state.period + 1})`,
          {
            period: command.period,
          },
        );
      }
      if (state.cancelAtPeriodEnd) {
        throw new DomainError('invalid_state', 'the subscription ends at the period end and does not renew');
      }
      if (renewedMs < state.bounds.endMs) {
        throw new DomainError('invalid_state', `period ${state.period} has not ended yet`, {
          periodEnd: toIso(state.bounds.endMs),
        });
      }
      const terms = checkTerms(command.terms, state.currency);
      if (terms.interval !== state.terms.interval)
        validationFailed('a renewal keeps the interval', { field: 'terms' });
      if (state.pendingPlanId !== null && terms.planId !== state.pendingPlanId) {
        validationFailed(`the renewal must use the scheduled plan ${state.pendingPlanId}`, {
          field: 'terms',
        });
      }
      if (state.pendingPlanId === null && terms.planId !== state.terms.planId) {
        validationFailed(`the renewal must use the current plan ${state.terms.planId}`, { field: 'terms' });
      }
      if (command.amount !== terms.price) {
        validationFailed(`period ${command.period} costs ${terms.price}, got ${command.amount}`, {
          field: 'amount',
        });
      }
      const bounds = periodBounds(state.anchorMs, terms.interval, command.period);
      const recognized = unrecognized(state);
      return [
        {
          type: 'SubscriptionRenewed',
          data: {
            subscriptionId: state.subscriptionId,
            studentId: state.studentId,
            currency: state.currency,
            period: command.period,
            periodStart: toIso(bounds.startMs),
            periodEnd: toIso(bounds.endMs),
            terms,
            chargeId,
            amount: command.amount,
            renewedAt: toIso(renewedMs),
            recognized,
            ...recognitionEntry(state, entryId, recognized, `period ${state.period} closed`),
          },
        },
      ];
    }

    case 'RecordRenewalFailure': {
      requireLive(state, 'record a failed renewal');
      const failedMs = parseInstant(command.failedAt, 'failedAt');
      const entryId = requireUuid(command.entryId, 'entryId');
      if (command.period !== state.period + 1) {
        throw new DomainError(
          'invalid_state',
          `period ${command.period} is not the next (${state.period + 1})`,
        );
      }
      if (failedMs < state.bounds.endMs) {
        throw new DomainError('invalid_state', `period ${state.period} has not ended yet`);
      }
      const expected = state.dunning === null ? 0 : state.dunning.attempt + 1;
      if (command.attempt !== expected) {
        throw new DomainError('invalid_state', `attempt ${command.attempt} is not the next (${expected})`, {
          attempt: command.attempt,
        });
      }
      const recognized = unrecognized(state);
      const ref = {
        subscriptionId: state.subscriptionId,
        studentId: state.studentId,
        currency: state.currency,
      };
      const retryDays = command.policy.dunningRetryDays;
      if (command.attempt < retryDays.length) {
        const nextStart = addIntervals(state.anchorMs, state.terms.interval, command.period);
        return [
          {
            type: 'SubscriptionPastDue',
            data: {
              ...ref,
              period: command.period,
              attempt: command.attempt,
              reason: command.reason.slice(0, 500) || 'payment failed',
              failedAt: toIso(failedMs),
              nextAttemptAt: toIso(nextStart + retryDays[command.attempt]! * DAY_MS),
              recognized,
              ...recognitionEntry(state, entryId, recognized, `period ${state.period} closed`),
            },
          },
        ];
      }
      return [
        {
          type: 'SubscriptionCanceled',
          data: {
            ...ref,
            reason: 'payment_failed',
            canceledAt: toIso(failedMs),
            refund: 0,
            refundId: null,
            recognized,
            ...recognitionEntry(state, entryId, recognized, `period ${state.period} closed`),
          },
        },
      ];
    }

    case 'UpgradeSubscription': {
      requireLive(state, 'change plan');
      if (state.status !== 'active') {
        throw new DomainError(
          'invalid_state',
          'a past-due subscription cannot change plan until it is paid',
          {
            status: state.status,
          },
        );
      }
      const upgradedMs = parseInstant(command.upgradedAt, 'upgradedAt');
      const terms = checkTerms(command.terms, state.currency);
      if (terms.interval !== state.terms.interval) {
        validationFailed(
          `plan ${terms.planId} renews every ${terms.interval}, this subscription every ${state.terms.interval}`,
          {
            field: 'planId',
          },
        );
      }
      if (terms.price <= state.terms.price) {
        validationFailed('an upgrade is to a plan with a higher price', { field: 'planId' });
      }
      const days = state.bounds.days;
      if (!Number.isInteger(command.startDay) || command.startDay < 0 || command.startDay > days) {
        validationFailed(`startDay must be 0..${days}`, { field: 'startDay' });
      }
      const amount = upgradeCharge(state.terms.price, terms.price, command.startDay, days);
      if (command.amount !== amount) {
        validationFailed(`the upgrade from day ${command.startDay} costs ${amount}, got ${command.amount}`, {
          field: 'amount',
        });
      }
      const expectedCharge = amount === 0 ? null : changeChargeId(state.period, state.changesInPeriod);
      if (command.chargeId !== expectedCharge) {
        throw new DomainError('invalid_state', `the subscription changed since this upgrade was charged`, {
          chargeId: command.chargeId,
          expected: expectedCharge,
        });
      }
      if (state.tranches.length >= MAX_TRANCHES_PER_PERIOD) {
        throw new DomainError('limit_exceeded', `at most ${MAX_TRANCHES_PER_PERIOD} plan changes per period`);
      }
      return [
        {
          type: 'SubscriptionUpgraded',
          data: {
            subscriptionId: state.subscriptionId,
            studentId: state.studentId,
            currency: state.currency,
            period: state.period,
            fromPlanId: state.terms.planId,
            terms,
            chargeId: expectedCharge,
            amount,
            startDay: command.startDay,
            upgradedAt: toIso(upgradedMs),
          },
        },
      ];
    }

    case 'ScheduleDowngrade': {
      requireLive(state, 'change plan');
      const at = toIso(parseInstant(command.scheduledAt, 'scheduledAt'));
      const toPlanId = requireEntityId(command.toPlanId, 'planId');
      if (toPlanId === state.terms.planId) {
        throw new DomainError('invalid_state', `the subscription is already on plan ${toPlanId}`, {
          planId: toPlanId,
        });
      }
      if (command.toPrice > state.terms.price)
        validationFailed('a downgrade is to a plan with a lower or equal price', { field: 'planId' });
      if (state.cancelAtPeriodEnd) {
        throw new DomainError(
          'invalid_state',
          'the subscription ends at the period end; subscribe again instead',
        );
      }
      return [
        {
          type: 'SubscriptionDowngradeScheduled',
          data: {
            subscriptionId: state.subscriptionId,
            studentId: state.studentId,
            currency: state.currency,
            fromPlanId: state.terms.planId,
            toPlanId,
            effectiveAt: toIso(state.bounds.endMs),
            scheduledAt: at,
          },
        },
      ];
    }

    case 'CancelSubscription': {
      requireLive(state, 'cancel');
      const atMs = parseInstant(command.at, 'at');
      const entryId = requireUuid(command.entryId, 'entryId');
      const refundId = requireEntityId(command.refundId, 'refundId');
      const ref = {
        subscriptionId: state.subscriptionId,
        studentId: state.studentId,
        currency: state.currency,
      };
      if (command.mode === 'at_period_end' && state.status === 'active') {
        if (state.cancelAtPeriodEnd) return [];
        return [
          {
            type: 'SubscriptionCancelScheduled',
            data: { ...ref, effectiveAt: toIso(state.bounds.endMs), scheduledAt: toIso(atMs) },
          },
        ];
      }
      if (command.mode === 'period_end_reached') {
        if (!state.cancelAtPeriodEnd) throw new DomainError('invalid_state', 'no cancellation is scheduled');
        if (atMs < state.bounds.endMs) throw new DomainError('invalid_state', 'the period has not ended yet');
      }
      // Now (or past due, whose paid period is already over): the day in progress counts as used.
      const used =
        command.mode === 'now' && state.status === 'active'
          ? usedDays(state.bounds, atMs)
          : state.bounds.days;
      const through = recognitionThrough(state, used);
      const rest = through.tranches.reduce((sum, t) => sum + t.amount - t.recognized, 0);
      const refund = command.refund === 'prorated' ? rest : 0;
      const recognized = through.amount + (rest - refund);
      return [
        {
          type: 'SubscriptionCanceled',
          data: {
            ...ref,
            reason: command.mode === 'period_end_reached' ? 'period_end' : 'canceled_now',
            canceledAt: toIso(atMs),
            refund,
            refundId: refund > 0 ? refundId : null,
            recognized,
            ...recognitionEntry(state, entryId, recognized, 'canceled'),
          },
        },
      ];
    }

    default:
      throw new DomainError('validation_failed', 'unknown subscription command');
  }
}

// ---------------------------------------------------------------------------------------------------
// evolve

function checkEntry(entry: JournalEntry | undefined, amount: number, what: string): void {
  if (amount === 0) {
    invariant(entry === undefined, `${what}: an entry for nothing`);
    return;
  }
  invariant(entry !== undefined, `${what}: ${amount} recognised without an entry`);
  for (const p of entry.postings) {
    invariant(p.amount === amount, `${what}: entry of ${p.amount}, recognised ${amount}`);
    invariant(
      (p.account === PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS && p.side === 'debit') ||
        (p.account === PLATFORM_REVENUE_SUBSCRIPTIONS && p.side === 'credit'),
      `${what}: recognition posts to ${p.account}`,
    );
  }
}

function closePeriod(
  state: SubscriptionState,
  recognized: number,
  entry: JournalEntry | undefined,
  what: string,
) {
  invariant(
    recognized === unrecognized(state),
    `${what}: closes ${recognized} of ${unrecognized(state)} left`,
  );
  checkEntry(entry, recognized, what);
  return { recognized: state.recognized + recognized };
}

function checked(state: SubscriptionState): SubscriptionState {
  const deferred = subscriptionDeferred(state);
  invariant(deferred >= 0, `subscription ${state.subscriptionId}: deferred ${deferred} below 0`);
  const open = state.status === 'canceled' ? 0 : unrecognized(state);
  invariant(
    deferred === open,
    `subscription ${state.subscriptionId}: deferred ${deferred} is not the unrecognised ${open} of its period`,
  );
  return state;
}

export function evolveSubscription(state: SubscriptionState, event: SubscriptionEvent): SubscriptionState {
  const base = { ...state, version: state.version + 1 };
  if (event.type !== 'SubscriptionStarted') {
    invariant(
      state.subscriptionId === event.data.subscriptionId,
      `event of ${event.data.subscriptionId} in ${state.subscriptionId}`,
    );
    invariant(state.status !== 'canceled', `${event.type} after the subscription was canceled`);
  }
  switch (event.type) {
    case 'SubscriptionStarted': {
      const e = event.data;
      invariant(state.status === 'none', 'subscription started twice');
      const anchorMs = Date.parse(e.anchorAt);
      return checked({
        ...base,
        subscriptionId: e.subscriptionId,
        studentId: e.studentId,
        currency: e.currency,
        status: 'active',
        anchorMs,
        terms: e.terms,
        period: 0,
        bounds: periodBounds(anchorMs, e.terms.interval, 0),
        tranches: [{ chargeId: e.chargeId, amount: e.amount, startDay: 0, recognized: 0 }],
        paid: e.amount,
      });
    }
    case 'SubscriptionRevenueRecognized': {
      const e = event.data;
      invariant(
        e.period === state.period && e.throughDay > state.recognizedThroughDay,
        'recognition out of order',
      );
      const through = recognitionThrough(state, e.throughDay);
      invariant(through.amount === e.amount, `recognised ${e.amount}, the rule gives ${through.amount}`);
      checkEntry(e.entry, e.amount, 'SubscriptionRevenueRecognized');
      return checked({
        ...base,
        tranches: through.tranches,
        recognizedThroughDay: e.throughDay,
        recognized: state.recognized + e.amount,
      });
    }
    case 'SubscriptionRenewed': {
      const e = event.data;
      invariant(e.period === state.period + 1, `renewed period ${e.period} after ${state.period}`);
      return checked({
        ...base,
        ...closePeriod(state, e.recognized, e.entry, 'SubscriptionRenewed'),
        status: 'active',
        terms: e.terms,
        period: e.period,
        bounds: periodBounds(state.anchorMs, e.terms.interval, e.period),
        tranches: [{ chargeId: e.chargeId, amount: e.amount, startDay: 0, recognized: 0 }],
        recognizedThroughDay: 0,
        changesInPeriod: 0,
        pendingPlanId: null,
        dunning: null,
        paid: state.paid + e.amount,
      });
    }
    case 'SubscriptionPastDue': {
      const e = event.data;
      const closed = closePeriod(state, e.recognized, e.entry, 'SubscriptionPastDue');
      return checked({
        ...base,
        ...closed,
        status: 'past_due',
        tranches: state.tranches.map((t) => ({ ...t, recognized: t.amount })),
        recognizedThroughDay: state.bounds!.days,
        dunning: { period: e.period, attempt: e.attempt, nextAttemptAtMs: Date.parse(e.nextAttemptAt) },
      });
    }
    case 'SubscriptionUpgraded': {
      const e = event.data;
      invariant(e.period === state.period && state.status === 'active', 'upgrade outside the active period');
      return checked({
        ...base,
        terms: e.terms,
        tranches: [
          ...state.tranches,
          { chargeId: e.chargeId, amount: e.amount, startDay: e.startDay, recognized: 0 },
        ],
        changesInPeriod: state.changesInPeriod + (e.chargeId === null ? 0 : 1),
        pendingPlanId: null,
        paid: state.paid + e.amount,
      });
    }
    case 'SubscriptionDowngradeScheduled':
      return checked({ ...base, pendingPlanId: event.data.toPlanId });
    case 'SubscriptionCancelScheduled':
      return checked({ ...base, cancelAtPeriodEnd: true });
    case 'SubscriptionCanceled': {
      const e = event.data;
      checkEntry(e.entry, e.recognized, 'SubscriptionCanceled');
      invariant(
        e.recognized + e.refund === unrecognized(state),
        `canceled: recognised ${e.recognized} + refunded ${e.refund} is not the ${unrecognized(state)} left`,
      );
      invariant(e.refund > 0 === (e.refundId !== null), 'a refund names its refund id');
      return checked({
        ...base,
        status: 'canceled',
        tranches: [],
        recognized: state.recognized + e.recognized,
        refunded: state.refunded + e.refund,
        canceledReason: e.reason,
        canceledAtMs: Date.parse(e.canceledAt),
        dunning: null,
      });
    }
  }
}

export const subscriptionDecider: Decider<SubscriptionCommand, SubscriptionEvent, SubscriptionState> = {
  initialState: initialSubscriptionState,
  decide: decideSubscription,
  evolve: evolveSubscription,
};
