import { type Static, Type } from '@sinclair/typebox';
import { PersistentMap } from '../lib/persistentMap.js';
import {
  payoutClearing,
  refundClearing,
  STRIPE_BALANCE,
  tutorEarningsAvailable,
  tutorEarningsPending,
  tutorReceivable,
} from './accounts.js';
import { type AccountTotals, applyEntryToAccount, available, emptyTotals } from './balances.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { EffectiveFields, type EffectiveInput, sameMonthEffectiveFields } from './effectiveTime.js';
import { DomainError, invariant } from './errors.js';
import {
  captureEntry,
  holdEntry,
  type JournalEntry,
  JournalEntrySchema,
  postEntry,
  releaseEntry,
} from './journal.js';
import { assertOwnedAccountWithinLimit, entriesOf, volumeLimitFor } from './ledgerLimits.js';
import { manualAdjustmentEntry } from './manualAdjustment.js';
import { assertAmount, assertCurrency, assertSameCurrency, formatMoney } from './money.js';
import {
  type Actor,
  ActorSchema,
  AmountSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  PositiveAmountSchema,
  SideSchema,
  StripeIdSchema,
  strictObject,
  TextSchema,
  UuidSchema,
} from './schema.js';
import {
  parseInstant,
  requireDirection,
  requireEntityId,
  requireFinanceAdmin,
  requireText,
  requireUuid,
  toIso,
  validationFailed,
} from './validate.js';

/**
 * A tutor's earnings: stream `tutor-{t}.{tutorId}`, the only writer of `tutor:{id}:earnings:available`
 * (constrained: available never below 0). It tracks each booking's earnings from recorded (pending,
 * credited by the wallet's capture) to cleared (moved to available after the hold period), reversals
 * by refunds (from pending, or into the receivable once cleared), recovery of the receivable from the
 * next clearings, and payout holds on available earnings.
 */

export interface RecordEarnings {
  type: 'RecordEarnings';
  tutorId: string;
  bookingId: string;
  amount: number;
  currency: string;
  source: EarningsSource;
  earnedAt: string;
  /** From the booking event (earningsClearableAt), so restarts never shift it. */
  clearableAt: string;
}

export interface ClearEarnings {
  type: 'ClearEarnings';
  tutorId: string;
  bookingId: string;
  now: string;
  entryId: string;
}

export interface ReverseEarnings {
  type: 'ReverseEarnings';
  tutorId: string;
  bookingId: string;
  refundId: string;
  amount: number;
  currency: string;
  entryId: string;
}

export interface PlacePayoutHold {
  type: 'PlacePayoutHold';
  tutorId: string;
  payoutId: string;
  /** payoutHoldId(tenant, payoutId) in ids.ts. */
  holdId: string;
  amount: number;
  currency: string;
  /** Tenant setting in force. */
  payoutMin: number;
  /**
   * Stripe pays this payout out (a gateway is configured): the tutor's Express account must be recorded
   * and able to take payouts, or the payout is refused with payout_account_not_ready. Without Stripe a
   * payout is bookkeeping only and settled by hand.
   */
  requireReadyPayoutAccount?: boolean;
  entryId: string;
}

export interface PostPayoutHold {
  type: 'PostPayoutHold';
  tutorId: string;
  payoutId: string;
  entryId: string;
}

export interface ReleasePayoutHold {
  type: 'ReleasePayoutHold';
  tutorId: string;
  payoutId: string;
  reason: string;
  entryId: string;
}

/**
 * Stripe reported a payout failed after it had reported it paid (Stripe documents that some failed
 * payouts first show as paid): the money is back at Stripe, on the tutor's account, so the posted payout
 * is reversed (Dr stripe:balance, Cr tutor available).
 */
export interface ReversePayout {
  type: 'ReversePayout';
  tutorId: string;
  payoutId: string;
  /** Stripe's failure_code (account_closed, no_account, …). */
  failureCode: string;
  entryId: string;
}

export interface AdjustTutor extends EffectiveInput {
  type: 'AdjustTutor';
  /** When the adjustment is recorded; required with effectiveAt (which may not be before its month). */
  recordedAt?: string;
  tutorId: string;
  adjustmentId: string;
  /** Which of the tutor's accounts: withdrawable earnings, or what the tutor owes us. */
  account: 'available' | 'receivable';
  /** Side of the posting on that account (available: credit = more money; receivable: debit = owes more). */
  direction: 'debit' | 'credit';
  amount: number;
  currency: string;
  reason: string;
  actor: Actor;
  entryId: string;
}

/**
 * The tutor's Stripe Express account as Stripe last described it (the Account object's `charges_enabled`,
 * `payouts_enabled`, `details_submitted`, `requirements.currently_due`/`past_due`/`disabled_reason`).
 * Recorded once when the account is created (its id is the tutor's for good) and again whenever Stripe
 * says it changed (`account.updated`).
 */
export interface PayoutAccountSnapshot {
  stripeAccountId: string;
  chargesEnabled: boolean;
  payoutsEnabled: boolean;
  detailsSubmitted: boolean;
  currentlyDue: string[];
  pastDue: string[];
  disabledReason: string | null;
}

export interface OpenPayoutAccount {
  type: 'OpenPayoutAccount';
  tutorId: string;
  account: PayoutAccountSnapshot;
  openedAt: string;
}

export interface UpdatePayoutAccount {
  type: 'UpdatePayoutAccount';
  tutorId: string;
  account: PayoutAccountSnapshot;
  updatedAt: string;
}

export type TutorCommand =
  | OpenPayoutAccount
  | UpdatePayoutAccount
  | RecordEarnings
  | ClearEarnings
  | ReverseEarnings
  | PlacePayoutHold
  | PostPayoutHold
  | ReleasePayoutHold
  | ReversePayout
  | AdjustTutor;

const EarningsSourceSchema = Type.Union([Type.Literal('completion'), Type.Literal('cancellation_fee')]);

/** Stripe's requirement names (`individual.verification.document`, `external_account`, …). */
const RequirementListSchema = Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 200 });

const payoutAccountFields = {
  tutorId: EntityIdSchema,
  stripeAccountId: StripeIdSchema,
  chargesEnabled: Type.Boolean(),
  payoutsEnabled: Type.Boolean(),
  detailsSubmitted: Type.Boolean(),
  currentlyDue: RequirementListSchema,
  pastDue: RequirementListSchema,
  disabledReason: Nullable(TextSchema(200)),
};

const payoutHold = {
  tutorId: EntityIdSchema,
  payoutId: EntityIdSchema,
  holdId: UuidSchema,
  amount: PositiveAmountSchema,
  currency: CurrencySchema,
};

export const TUTOR_EVENTS = {
  /** The tutor's Express account was created at Stripe; this id is the tutor's from now on. */
  TutorPayoutAccountOpened: strictObject({ ...payoutAccountFields, openedAt: InstantSchema }),
  /** Stripe reported a change of the account (onboarding finished, requirements due, disabled). */
  TutorPayoutAccountUpdated: strictObject({ ...payoutAccountFields, updatedAt: InstantSchema }),
  TutorEarningsRecorded: strictObject({
    tutorId: EntityIdSchema,
    bookingId: EntityIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    source: EarningsSourceSchema,
    earnedAt: InstantSchema,
    clearableAt: InstantSchema,
  }),
  TutorEarningsCleared: strictObject({
    tutorId: EntityIdSchema,
    bookingId: EntityIdSchema,
    /** Moved out of pending: the booking's earnings less what refunds already reversed. */
    amount: AmountSchema,
    /** Part of `amount` that paid back the receivable instead of becoming available. */
    recovered: AmountSchema,
    currency: CurrencySchema,
    clearedAt: InstantSchema,
    /** Absent only when amount is 0 (refunds reversed everything while pending): nothing moves. */
    entry: Type.Optional(JournalEntrySchema),
  }),
  TutorEarningsReversed: strictObject({
    tutorId: EntityIdSchema,
    bookingId: EntityIdSchema,
    refundId: EntityIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    /** 'pending': Dr tutor pending; 'cleared': already withdrawable, so Dr tutor receivable. */
    from: Type.Union([Type.Literal('pending'), Type.Literal('cleared')]),
    entry: JournalEntrySchema,
  }),
  TutorPayoutHoldPlaced: strictObject({ ...payoutHold, entry: JournalEntrySchema }),
  TutorPayoutHoldPosted: strictObject({ ...payoutHold, entry: JournalEntrySchema }),
  TutorPayoutHoldReleased: strictObject({ ...payoutHold, reason: TextSchema(), entry: JournalEntrySchema }),
  /** A paid payout that Stripe then reported failed: Dr stripe:balance, Cr tutor available. */
  TutorPayoutReversed: strictObject({
    ...payoutHold,
    failureCode: TextSchema(100),
    entry: JournalEntrySchema,
  }),
  TutorAdjusted: strictObject({
    tutorId: EntityIdSchema,
    adjustmentId: EntityIdSchema,
    account: Type.Union([Type.Literal('available'), Type.Literal('receivable')]),
    direction: SideSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    reason: TextSchema(),
    actor: ActorSchema,
    entry: JournalEntrySchema,
    ...EffectiveFields,
  }),
} as const satisfies EventSchemas;

export type TutorEvent = EventsOf<typeof TUTOR_EVENTS>;
export type TutorPayoutAccountOpened = EventOf<typeof TUTOR_EVENTS, 'TutorPayoutAccountOpened'>;
export type TutorPayoutAccountUpdated = EventOf<typeof TUTOR_EVENTS, 'TutorPayoutAccountUpdated'>;
export type TutorEarningsRecorded = EventOf<typeof TUTOR_EVENTS, 'TutorEarningsRecorded'>;
export type TutorEarningsCleared = EventOf<typeof TUTOR_EVENTS, 'TutorEarningsCleared'>;
export type TutorEarningsReversed = EventOf<typeof TUTOR_EVENTS, 'TutorEarningsReversed'>;
export type TutorPayoutHoldPlaced = EventOf<typeof TUTOR_EVENTS, 'TutorPayoutHoldPlaced'>;
export type TutorPayoutHoldPosted = EventOf<typeof TUTOR_EVENTS, 'TutorPayoutHoldPosted'>;
export type TutorPayoutHoldReleased = EventOf<typeof TUTOR_EVENTS, 'TutorPayoutHoldReleased'>;
export type TutorPayoutReversed = EventOf<typeof TUTOR_EVENTS, 'TutorPayoutReversed'>;
export type TutorAdjusted = EventOf<typeof TUTOR_EVENTS, 'TutorAdjusted'>;

export type EarningsSource = Static<typeof EarningsSourceSchema>;

export interface BookingEarnings {
  amount: number;
  /** Sum reversed by refunds (before or after clearing). */
  reversed: number;
  /** What clearing moved out of pending (set when cleared). */
  clearedAmount: number;
  status: 'pending' | 'cleared';
  source: EarningsSource;
  clearableAt: string;
}

export interface PayoutHold {
  holdId: string;
  amount: number;
  /** reversed: posted, then Stripe reported the payout failed after all. */
  status: 'held' | 'posted' | 'released' | 'reversed';
}

export interface TutorState {
  tutorId: string | null;
  currency: string | null;
  /** The four totals of `tutor:{id}:earnings:available`. */
  availableTotals: AccountTotals;
  /** Earnings recorded and neither cleared nor reversed (mirrors the pending account for this tutor). */
  pending: number;
  /** What the tutor owes (receivable balance): reversals of cleared earnings, less recoveries. */
  receivable: number;
  /** Sum of payouts posted. */
  paidOut: number;
  /** bookingId -> that booking's earnings. */
  earnings: PersistentMap<BookingEarnings>;
  /** payoutId -> its hold on available earnings. */
  payouts: PersistentMap<PayoutHold>;
  refundIds: PersistentMap<true>;
  adjustmentIds: PersistentMap<true>;
  /** The tutor's Stripe Express account, once created (never replaced). */
  payoutAccount: PayoutAccountSnapshot | null;
  version: number;
}

export const initialTutorState = (): TutorState => ({
  tutorId: null,
  currency: null,
  availableTotals: emptyTotals(),
  pending: 0,
  receivable: 0,
  paidOut: 0,
  earnings: PersistentMap.empty(),
  payouts: PersistentMap.empty(),
  refundIds: PersistentMap.empty(),
  adjustmentIds: PersistentMap.empty(),
  payoutAccount: null,
  version: 0,
});

/** What keeps an account from taking payouts, in Stripe's words; empty when it can. */
export function payoutAccountMissing(account: PayoutAccountSnapshot | null): string[] {
  if (account === null) return ['payout_account'];
  if (account.payoutsEnabled) return [];
  const missing = [...new Set([...account.pastDue, ...account.currentlyDue])];
  return missing.length > 0 ? missing : [account.disabledReason ?? 'payouts_enabled'];
}

function validSnapshot(value: PayoutAccountSnapshot): PayoutAccountSnapshot {
  if (value === null || typeof value !== 'object') validationFailed('account must be an object', {});
  if (typeof value.stripeAccountId !== 'string' || !/^acct_[A-Za-z0-9]{1,250}$/.test(value.stripeAccountId)) {
    validationFailed('stripeAccountId must be a Stripe account id (acct_...)', { field: 'stripeAccountId' });
  }
  const list = (xs: unknown, field: string): string[] => {
    if (
      !Array.isArray(xs) ||
      xs.length > 200 ||
      !xs.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 200)
    ) {
      validationFailed(`${field} must be a list of requirement names`, { field });
    }
    return [...(xs as string[])].sort();
  };
  const flag = (x: unknown, field: string): boolean => {
    if (typeof x !== 'boolean') validationFailed(`${field} must be a boolean`, { field });
    return x;
  };
  const reason = value.disabledReason;
  if (reason !== null && (typeof reason !== 'string' || reason.length === 0 || reason.length > 200)) {
    validationFailed('disabledReason must be null or 1-200 characters', { field: 'disabledReason' });
  }
  return {
    stripeAccountId: value.stripeAccountId,
    chargesEnabled: flag(value.chargesEnabled, 'chargesEnabled'),
    payoutsEnabled: flag(value.payoutsEnabled, 'payoutsEnabled'),
    detailsSubmitted: flag(value.detailsSubmitted, 'detailsSubmitted'),
    currentlyDue: list(value.currentlyDue, 'currentlyDue'),
    pastDue: list(value.pastDue, 'pastDue'),
    disabledReason: reason,
  };
}

function sameSnapshot(a: PayoutAccountSnapshot, b: PayoutAccountSnapshot): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Withdrawable now: credits_posted - debits_posted - debits_pending of tutor available. */
export const tutorAvailable = (state: TutorState): number => available(state.availableTotals, 'credit');

function checkTutor(state: TutorState, tutorId: unknown): string {
  const id = requireEntityId(tutorId, 'tutorId');
  if (state.tutorId !== null && state.tutorId !== id) {
    validationFailed(`command for tutor ${id} sent to the stream of tutor ${state.tutorId}`, {
      field: 'tutorId',
    });
  }
  return id;
}

function checkCurrency(state: TutorState, currency: unknown): string {
  const c = assertCurrency(currency);
  if (state.currency !== null) assertSameCurrency(state.currency, c, "the tutor's earnings");
  return c;
}

function requireEarnings(state: TutorState, bookingId: string): BookingEarnings {
  const earnings = state.earnings.get(bookingId);
  if (!earnings) {
    throw new DomainError('not_found', `no earnings recorded for booking ${bookingId}`, { bookingId });
  }
  return earnings;
}

function requirePayoutHold(state: TutorState, payoutId: string): PayoutHold {
  const hold = state.payouts.get(payoutId);
  if (!hold) throw new DomainError('not_found', `no payout hold for payout ${payoutId}`, { payoutId });
  if (hold.status !== 'held') {
    throw new DomainError('invalid_state', `payout hold ${payoutId} was already ${hold.status}`, {
      payoutId,
      status: hold.status,
    });
  }
  return hold;
}

function requireSpendable(state: TutorState, amount: number, what: string): void {
  const spendable = state.currency === null ? 0 : tutorAvailable(state);
  if (amount > spendable) {
    throw new DomainError(
      'insufficient_funds',
      `${what}: the tutor has ${spendable} available, needs ${amount}`,
      { available: spendable, requested: amount },
    );
  }
}

export function decideTutor(command: TutorCommand, state: TutorState): TutorEvent[] {
  const events = decideTutorEvents(command, state);
  // The tutor stream owns the available earnings' totals: their limit is checked exactly here
  // (ledgerLimits.ts); the tutor's other accounts are checked with the shared ones.
  const moving = events.find((e) => 'entry' in e.data && e.data.entry !== undefined);
  if (moving && 'currency' in moving.data) {
    const { tutorId, currency } = moving.data;
    assertOwnedAccountWithinLimit(
      state.availableTotals,
      tutorEarningsAvailable(tutorId),
      currency,
      entriesOf(events),
      volumeLimitFor(command.type),
    );
  }
  return events;
}

function decideTutorEvents(command: TutorCommand, state: TutorState): TutorEvent[] {
  switch (command.type) {
    case 'OpenPayoutAccount': {
      const tutorId = checkTutor(state, command.tutorId);
      const account = validSnapshot(command.account);
      const openedAt = toIso(parseInstant(command.openedAt, 'openedAt'));
      const recorded = state.payoutAccount;
      if (recorded !== null) {
        // The same account again (a retried request): nothing to record. Another one: the tutor keeps
        // the first; the caller uses it (ledgerService.openPayoutAccount).
        if (recorded.stripeAccountId === account.stripeAccountId) return [];
        throw new DomainError(
          'invalid_state',
          `tutor ${tutorId} already has payout account ${recorded.stripeAccountId}`,
          { stripeAccountId: recorded.stripeAccountId },
        );
      }
      return [{ type: 'TutorPayoutAccountOpened', data: { tutorId, ...account, openedAt } }];
    }

    case 'UpdatePayoutAccount': {
      const tutorId = checkTutor(state, command.tutorId);
      const account = validSnapshot(command.account);
      const updatedAt = toIso(parseInstant(command.updatedAt, 'updatedAt'));
      const recorded = state.payoutAccount;
      if (recorded === null) {
        throw new DomainError('not_found', `tutor ${tutorId} has no payout account yet`, { tutorId });
      }
      if (recorded.stripeAccountId !== account.stripeAccountId) {
        throw new DomainError(
          'invalid_state',
          `account ${account.stripeAccountId} is not tutor ${tutorId}'s payout account (${recorded.stripeAccountId})`,
          { stripeAccountId: recorded.stripeAccountId },
        );
      }
      if (sameSnapshot(recorded, account)) return [];
      return [{ type: 'TutorPayoutAccountUpdated', data: { tutorId, ...account, updatedAt } }];
    }

    case 'RecordEarnings': {
      const tutorId = checkTutor(state, command.tutorId);
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const amount = assertAmount(command.amount);
      if (command.source !== 'completion' && command.source !== 'cancellation_fee') {
        validationFailed("source must be 'completion' or 'cancellation_fee'", { field: 'source' });
      }
      const earnedMs = parseInstant(command.earnedAt, 'earnedAt');
      const clearableMs = parseInstant(command.clearableAt, 'clearableAt');
      const currency = checkCurrency(state, command.currency);
      if (clearableMs < earnedMs) validationFailed('clearableAt must not be before earnedAt', {});
      if (state.earnings.get(bookingId)) {
        throw new DomainError('invalid_state', `earnings for booking ${bookingId} were already recorded`, {
          bookingId,
        });
      }
      return [
        {
          type: 'TutorEarningsRecorded',
          data: {
            tutorId,
            bookingId,
            amount,
            currency,
            source: command.source,
            earnedAt: toIso(earnedMs),
            clearableAt: toIso(clearableMs),
          },
        },
      ];
    }

    case 'ClearEarnings': {
      const tutorId = checkTutor(state, command.tutorId);
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const nowMs = parseInstant(command.now, 'now');
      const entryId = requireUuid(command.entryId, 'entryId');
      const earnings = requireEarnings(state, bookingId);
      if (earnings.status !== 'pending') {
        throw new DomainError('invalid_state', `earnings for booking ${bookingId} were already cleared`, {
          bookingId,
        });
      }
      if (nowMs < Date.parse(earnings.clearableAt)) {
        throw new DomainError(
          'invalid_state',
          `earnings for booking ${bookingId} are held until ${earnings.clearableAt}`,
          { clearableAt: earnings.clearableAt },
        );
      }
      const currency = state.currency!;
      const amount = earnings.amount - earnings.reversed;
      const recovered = Math.min(amount, state.receivable);
      const data: TutorEarningsCleared['data'] = {
        tutorId,
        bookingId,
        amount,
        recovered,
        currency,
        clearedAt: toIso(nowMs),
      };
      if (amount > 0) {
        data.entry = postEntry({
          entryId,
          currency,
          description:
            recovered > 0
              ? `Earnings of booking ${bookingId} cleared: ${formatMoney({ amount, currency })}, ${formatMoney({ amount: recovered, currency })} recovered against the receivable`
              : `Earnings of booking ${bookingId} cleared: ${formatMoney({ amount, currency })} now withdrawable`,
          lines: [
            { account: tutorEarningsPending(tutorId), side: 'debit', amount },
            { account: tutorEarningsAvailable(tutorId), side: 'credit', amount: amount - recovered },
            { account: tutorReceivable(tutorId), side: 'credit', amount: recovered },
          ],
        });
      }
      return [{ type: 'TutorEarningsCleared', data }];
    }

    case 'ReverseEarnings': {
      const tutorId = checkTutor(state, command.tutorId);
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const refundId = requireEntityId(command.refundId, 'refundId');
      const amount = assertAmount(command.amount);
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = assertCurrency(command.currency);
      const earnings = requireEarnings(state, bookingId);
      assertSameCurrency(state.currency!, currency, "the tutor's earnings");
      if (state.refundIds.get(refundId)) {
        throw new DomainError('invalid_state', `refund ${refundId} was already reversed`, { refundId });
      }
      if (earnings.reversed + amount > earnings.amount) {
        throw new DomainError(
          'limit_exceeded',
          `reversal of ${amount} exceeds what is left of booking ${bookingId}'s earnings (${earnings.amount - earnings.reversed})`,
          { earned: earnings.amount, reversed: earnings.reversed, requested: amount },
        );
      }
      const from = earnings.status === 'pending' ? 'pending' : 'cleared';
      const entry = postEntry({
        entryId,
        currency,
        description:
          from === 'pending'
            ? `Refund ${refundId} of booking ${bookingId}: ${formatMoney({ amount, currency })} reversed from pending earnings`
            : `Refund ${refundId} of booking ${bookingId}: ${formatMoney({ amount, currency })} already cleared, owed by the tutor`,
        lines: [
          {
            account: from === 'pending' ? tutorEarningsPending(tutorId) : tutorReceivable(tutorId),
            side: 'debit',
            amount,
          },
          { account: refundClearing(refundId), side: 'credit', amount },
        ],
      });
      return [
        {
          type: 'TutorEarningsReversed',
          data: { tutorId, bookingId, refundId, amount, currency, from, entry },
        },
      ];
    }

    case 'PlacePayoutHold': {
      const tutorId = checkTutor(state, command.tutorId);
      const payoutId = requireEntityId(command.payoutId, 'payoutId');
      const holdId = requireUuid(command.holdId, 'holdId');
      const amount = assertAmount(command.amount);
      const payoutMin = assertAmount(command.payoutMin, { field: 'payoutMin' });
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = checkCurrency(state, command.currency);
      if (state.payouts.get(payoutId)) {
        throw new DomainError('invalid_state', `payout ${payoutId} already has a hold`, { payoutId });
      }
      if (amount < payoutMin) {
        throw new DomainError(
          'limit_exceeded',
          `payout of ${formatMoney({ amount, currency })} is below the minimum ${formatMoney({ amount: payoutMin, currency })}`,
          { min: payoutMin, requested: amount },
        );
      }
      if (command.requireReadyPayoutAccount === true) {
        const missing = payoutAccountMissing(state.payoutAccount);
        if (missing.length > 0) {
          throw new DomainError(
            'payout_account_not_ready',
            state.payoutAccount === null
              ? `tutor ${tutorId} has no payout account: open one with POST /v1/tutors/${tutorId}/payout-account`
              : `tutor ${tutorId}'s payout account ${state.payoutAccount.stripeAccountId} cannot take payouts yet: ${missing.join(', ')}`,
            {
              missing,
              stripeAccountId: state.payoutAccount?.stripeAccountId ?? null,
              disabledReason: state.payoutAccount?.disabledReason ?? null,
            },
          );
        }
      }
      requireSpendable(state, amount, `payout ${payoutId}`);
      const entry = holdEntry({
        entryId,
        holdId,
        currency,
        description: `Payout ${payoutId} requested: ${formatMoney({ amount, currency })} held`,
        hold: {
          debitAccount: tutorEarningsAvailable(tutorId),
          creditAccount: payoutClearing(payoutId),
          amount,
        },
      });
      return [
        { type: 'TutorPayoutHoldPlaced', data: { tutorId, payoutId, holdId, amount, currency, entry } },
      ];
    }

    case 'PostPayoutHold': {
      const tutorId = checkTutor(state, command.tutorId);
      const payoutId = requireEntityId(command.payoutId, 'payoutId');
      const entryId = requireUuid(command.entryId, 'entryId');
      const hold = requirePayoutHold(state, payoutId);
      const currency = state.currency!;
      const availableAccount = tutorEarningsAvailable(tutorId);
      const entry = captureEntry({
        entryId,
        holdId: hold.holdId,
        currency,
        description: `Payout ${payoutId} paid: ${formatMoney({ amount: hold.amount, currency })}`,
        hold: {
          debitAccount: availableAccount,
          creditAccount: payoutClearing(payoutId),
          amount: hold.amount,
        },
        lines: [
          { account: availableAccount, side: 'debit', amount: hold.amount },
          { account: STRIPE_BALANCE, side: 'credit', amount: hold.amount },
        ],
      });
      return [
        {
          type: 'TutorPayoutHoldPosted',
          data: { tutorId, payoutId, holdId: hold.holdId, amount: hold.amount, currency, entry },
        },
      ];
    }

    case 'ReleasePayoutHold': {
      const tutorId = checkTutor(state, command.tutorId);
      const payoutId = requireEntityId(command.payoutId, 'payoutId');
      const reason = requireText(command.reason, 'reason');
      const entryId = requireUuid(command.entryId, 'entryId');
      const hold = requirePayoutHold(state, payoutId);
      const currency = state.currency!;
      const entry = releaseEntry({
        entryId,
        holdId: hold.holdId,
        currency,
        description: `Payout ${payoutId} failed: ${formatMoney({ amount: hold.amount, currency })} released (${reason})`,
        hold: {
          debitAccount: tutorEarningsAvailable(tutorId),
          creditAccount: payoutClearing(payoutId),
          amount: hold.amount,
        },
      });
      return [
        {
          type: 'TutorPayoutHoldReleased',
          data: { tutorId, payoutId, holdId: hold.holdId, amount: hold.amount, currency, reason, entry },
        },
      ];
    }

    case 'ReversePayout': {
      const tutorId = checkTutor(state, command.tutorId);
      const payoutId = requireEntityId(command.payoutId, 'payoutId');
      const failureCode = requireText(command.failureCode, 'failureCode', 100);
      const entryId = requireUuid(command.entryId, 'entryId');
      const hold = state.payouts.get(payoutId);
      if (!hold) throw new DomainError('not_found', `no payout hold for payout ${payoutId}`, { payoutId });
      if (hold.status !== 'posted') {
        throw new DomainError('invalid_state', `payout ${payoutId} is ${hold.status}, not paid`, {
          payoutId,
          status: hold.status,
        });
      }
      const currency = state.currency!;
      const entry = postEntry({
        entryId,
        currency,
        description: `Payout ${payoutId} failed after it was paid (${failureCode}): ${formatMoney({ amount: hold.amount, currency })} back to the tutor's available earnings`,
        lines: [
          { account: STRIPE_BALANCE, side: 'debit', amount: hold.amount },
          { account: tutorEarningsAvailable(tutorId), side: 'credit', amount: hold.amount },
        ],
      });
      return [
        {
          type: 'TutorPayoutReversed',
          data: { tutorId, payoutId, holdId: hold.holdId, amount: hold.amount, currency, failureCode, entry },
        },
      ];
    }

    case 'AdjustTutor': {
      const tutorId = checkTutor(state, command.tutorId);
      const adjustmentId = requireEntityId(command.adjustmentId, 'adjustmentId');
      if (command.account !== 'available' && command.account !== 'receivable') {
        validationFailed("account must be 'available' or 'receivable'", { field: 'account' });
      }
      const direction = requireDirection(command.direction);
      const amount = assertAmount(command.amount);
      const reason = requireText(command.reason, 'reason');
      const actor = requireFinanceAdmin(command.actor);
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = checkCurrency(state, command.currency);
      const effective = sameMonthEffectiveFields(command);
      if (state.adjustmentIds.get(adjustmentId)) {
        throw new DomainError('invalid_state', `adjustment ${adjustmentId} was already applied`, {
          adjustmentId,
        });
      }
      if (command.account === 'available' && direction === 'debit') {
        requireSpendable(state, amount, `adjustment ${adjustmentId}`);
      }
      if (command.account === 'receivable' && direction === 'credit' && amount > state.receivable) {
        throw new DomainError(
          'limit_exceeded',
          `cannot write off ${amount}: the tutor owes ${state.receivable}`,
          { receivable: state.receivable, requested: amount },
        );
      }
      const entry = manualAdjustmentEntry({
        entryId,
        adjustmentId,
        account: command.account === 'available' ? tutorEarningsAvailable(tutorId) : tutorReceivable(tutorId),
        label: command.account,
        direction,
        amount,
        currency,
        reason,
      });
      return [
        {
          type: 'TutorAdjusted',
          data: {
            tutorId,
            adjustmentId,
            account: command.account,
            direction,
            amount,
            currency,
            reason,
            actor,
            entry,
            ...effective,
          },
        },
      ];
    }

    default:
      throw new DomainError('validation_failed', 'unknown tutor command');
  }
}

// ---------------------------------------------------------------------------------------------------
// evolve

function base(state: TutorState, tutorId: string, currency: string, entry?: JournalEntry): TutorState {
  invariant(
    state.tutorId === null || state.tutorId === tutorId,
    `tutor event for ${tutorId} in ${state.tutorId}`,
  );
  invariant(
    state.currency === null || state.currency === currency,
    `tutor in ${state.currency} got ${currency}`,
  );
  const availableTotals = entry
    ? applyEntryToAccount(state.availableTotals, entry, tutorEarningsAvailable(tutorId), currency)
    : state.availableTotals;
  invariant(
    available(availableTotals, 'credit') >= 0,
    () => `tutor ${tutorId}: available below 0 after ${entry?.entryId}`,
  );
  return { ...state, tutorId, currency, availableTotals, version: state.version + 1 };
}

function withEarnings(
  state: TutorState,
  bookingId: string,
  update: (earnings: BookingEarnings) => BookingEarnings,
): TutorState {
  const earnings = state.earnings.get(bookingId);
  invariant(earnings, `earnings of booking ${bookingId} unknown`);
  return { ...state, earnings: state.earnings.set(bookingId, update(earnings)) };
}

function withPayout(state: TutorState, payoutId: string, status: 'posted' | 'released'): TutorState {
  const hold = state.payouts.get(payoutId);
  invariant(hold && hold.status === 'held', `payout hold ${payoutId} resolved twice or unknown`);
  return { ...state, payouts: state.payouts.set(payoutId, { ...hold, status }) };
}

function snapshotOf(e: PayoutAccountSnapshot): PayoutAccountSnapshot {
  return {
    stripeAccountId: e.stripeAccountId,
    chargesEnabled: e.chargesEnabled,
    payoutsEnabled: e.payoutsEnabled,
    detailsSubmitted: e.detailsSubmitted,
    currentlyDue: e.currentlyDue,
    pastDue: e.pastDue,
    disabledReason: e.disabledReason,
  };
}

export function evolveTutor(state: TutorState, event: TutorEvent): TutorState {
  switch (event.type) {
    case 'TutorPayoutAccountOpened':
    case 'TutorPayoutAccountUpdated': {
      const e = event.data;
      invariant(
        state.tutorId === null || state.tutorId === e.tutorId,
        `account of ${e.tutorId} in ${state.tutorId}`,
      );
      if (event.type === 'TutorPayoutAccountOpened') {
        invariant(state.payoutAccount === null, `tutor ${e.tutorId}: payout account opened twice`);
      } else {
        invariant(
          state.payoutAccount?.stripeAccountId === e.stripeAccountId,
          `tutor ${e.tutorId}: update of an account that is not theirs`,
        );
      }
      return { ...state, tutorId: e.tutorId, payoutAccount: snapshotOf(e), version: state.version + 1 };
    }
    case 'TutorEarningsRecorded': {
      const e = event.data;
      invariant(!state.earnings.get(e.bookingId), `earnings of ${e.bookingId} recorded twice`);
      const next = base(state, e.tutorId, e.currency);
      return {
        ...next,
        pending: next.pending + e.amount,
        earnings: next.earnings.set(e.bookingId, {
          amount: e.amount,
          reversed: 0,
          clearedAmount: 0,
          status: 'pending',
          source: e.source,
          clearableAt: e.clearableAt,
        }),
      };
    }
    case 'TutorEarningsCleared': {
      const e = event.data;
      invariant(e.amount > 0 === (e.entry !== undefined), 'cleared earnings carry an entry iff amount > 0');
      invariant(e.recovered <= e.amount && e.recovered <= state.receivable, 'recovered more than owed');
      const next = base(state, e.tutorId, e.currency, e.entry);
      const updated = withEarnings(next, e.bookingId, (earnings) => {
        invariant(earnings.status === 'pending', `earnings of ${e.bookingId} cleared twice`);
        invariant(earnings.amount - earnings.reversed === e.amount, 'cleared amount disagrees with the fold');
        return { ...earnings, status: 'cleared', clearedAmount: e.amount };
      });
      return {
        ...updated,
        pending: updated.pending - e.amount,
        receivable: updated.receivable - e.recovered,
      };
    }
    case 'TutorEarningsReversed': {
      const e = event.data;
      invariant(!state.refundIds.get(e.refundId), `refund ${e.refundId} reversed twice`);
      const next = base(state, e.tutorId, e.currency, e.entry);
      const updated = withEarnings(next, e.bookingId, (earnings) => {
        invariant(
          earnings.reversed + e.amount <= earnings.amount,
          `reversals of ${e.bookingId} exceed earnings`,
        );
        invariant(
          (earnings.status === 'pending') === (e.from === 'pending'),
          `reversal from ${e.from} of ${earnings.status} earnings`,
        );
        return { ...earnings, reversed: earnings.reversed + e.amount };
      });
      return {
        ...updated,
        pending: e.from === 'pending' ? updated.pending - e.amount : updated.pending,
        receivable: e.from === 'cleared' ? updated.receivable + e.amount : updated.receivable,
        refundIds: updated.refundIds.set(e.refundId, true),
      };
    }
    case 'TutorPayoutHoldPlaced': {
      const e = event.data;
      invariant(!state.payouts.get(e.payoutId), `payout ${e.payoutId} held twice`);
      const next = base(state, e.tutorId, e.currency, e.entry);
      return {
        ...next,
        payouts: next.payouts.set(e.payoutId, { holdId: e.holdId, amount: e.amount, status: 'held' }),
      };
    }
    case 'TutorPayoutHoldPosted': {
      const e = event.data;
      const next = withPayout(base(state, e.tutorId, e.currency, e.entry), e.payoutId, 'posted');
      return { ...next, paidOut: next.paidOut + e.amount };
    }
    case 'TutorPayoutHoldReleased': {
      const e = event.data;
      return withPayout(base(state, e.tutorId, e.currency, e.entry), e.payoutId, 'released');
    }
    case 'TutorPayoutReversed': {
      const e = event.data;
      const hold = state.payouts.get(e.payoutId);
      invariant(hold && hold.status === 'posted', `payout ${e.payoutId} reversed but not posted`);
      invariant(hold.amount === e.amount, `payout ${e.payoutId} reversed for another amount`);
      const next = base(state, e.tutorId, e.currency, e.entry);
      return {
        ...next,
        paidOut: next.paidOut - e.amount,
        payouts: next.payouts.set(e.payoutId, { ...hold, status: 'reversed' }),
      };
    }
    case 'TutorAdjusted': {
      const e = event.data;
      invariant(!state.adjustmentIds.get(e.adjustmentId), `adjustment ${e.adjustmentId} applied twice`);
      const next = base(state, e.tutorId, e.currency, e.entry);
      const receivable =
        e.account === 'receivable'
          ? next.receivable + (e.direction === 'debit' ? e.amount : -e.amount)
          : next.receivable;
      invariant(receivable >= 0, 'receivable written off below zero');
      return { ...next, receivable, adjustmentIds: next.adjustmentIds.set(e.adjustmentId, true) };
    }
  }
}

export const tutorDecider: Decider<TutorCommand, TutorEvent, TutorState> = {
  initialState: initialTutorState,
  decide: decideTutor,
  evolve: evolveTutor,
};
