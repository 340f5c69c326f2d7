import { Type } from '@sinclair/typebox';
import { PersistentMap } from '../lib/persistentMap.js';
import {
  bookingClearing,
  PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS,
  PLATFORM_REVENUE_COMMISSION,
  PLATFORM_TAX_PAYABLE,
  refundClearing,
  STRIPE_BALANCE,
  studentWallet,
  tutorEarningsPending,
} from './accounts.js';
import { type AccountTotals, applyEntryToAccount, available, emptyTotals } from './balances.js';
import {
  type Discount,
  DiscountsSchema,
  discountLines,
  discountTotal,
  payableAfter,
} from './bookingPrice.js';
import { type CalendarPeriods, calendarPeriods, requireTimeZone } from './calendar.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { EffectiveFields, type EffectiveInput, sameMonthEffectiveFields } from './effectiveTime.js';
import { DomainError, invariant } from './errors.js';
import {
  captureEntry,
  type HoldLeg,
  holdEntry,
  type JournalEntry,
  JournalEntrySchema,
  type Line,
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
  PositiveAmountSchema,
  SideSchema,
  StripeIdSchema,
  strictObject,
  TextSchema,
  UuidSchema,
} from './schema.js';
import {
  checkSpendingLimits,
  countHold,
  giveBack,
  initialSpendingState,
  periodsForHold,
  raisedLimits,
  requireLimits,
  type SpendingLimits,
  SpendingLimitsSchema,
  SpendingPeriodsSchema,
  type SpendingState,
  sameLimits,
} from './spendingLimits.js';
import { type CommissionTax, CommissionTaxSchema } from './tax.js';
import {
  parseInstant,
  requireActor,
  requireDirection,
  requireEntityId,
  requireFinanceAdmin,
  requireText,
  requireUuid,
  toIso,
  validationFailed,
} from './validate.js';

/**
 * The student wallet: stream `wallet-{t}.{studentId}`, the only writer of `student:{id}:wallet`, so its
 * balance check (available never below 0) is race-free under optimistic concurrency. Every top-up,
 * booking hold, capture, release, refund and adjustment of the wallet is an event here.
 * The wallet's currency is fixed by its first money event.
 */

// ---------------------------------------------------------------------------------------------------
// Commands

export interface CreditTopUp {
  type: 'CreditTopUp';
  studentId: string;
  topUpId: string;
  paymentIntentId: string;
  amount: number;
  currency: string;
  entryId: string;
}

export interface PlaceWalletHold {
  type: 'PlaceWalletHold';
  studentId: string;
  /** deterministicId('hold', tenant, bookingId): see ids.ts bookingHoldId. */
  holdId: string;
  bookingId: string;
  tutorId: string;
  amount: number;
  currency: string;
  scheduledAt: string;
  /** When the hold is placed and the tenant's time zone: the periods its spending counts in. */
  placedAt: string;
  timeZone: string;
  /**
   * The booking's price breakdown (bookingPrice.ts) when discounts apply: `amount` is then what is
   * payable, listPrice - discounts. Omitted: the hold is the list price.
   */
  pricing?: { listPrice: number; discounts: Discount[] };
  /** Set when a discount is only for a first purchase: refused if the wallet has a booking held or captured. */
  firstPurchaseOnly?: { code: string };
  entryId: string;
}

export interface CaptureWalletHold {
  type: 'CaptureWalletHold';
  studentId: string;
  holdId: string;
  /**
   * Charged to the wallet: at most the hold, the rest released. The hold's discounts (if any) are charged
   * to their funding accounts next to it: captured + discounts = tutorShare + commission (+ tax).
   */
  captured: number;
  tutorShare: number;
  commission: number;
  /** Tax on the commission, booked to platform:tax:payable (tax.ts); absent when none applies. */
  commissionTax?: CommissionTax;
  entryId: string;
}

export interface ReleaseWalletHold {
  type: 'ReleaseWalletHold';
  studentId: string;
  holdId: string;
  reason: 'cancelled' | 'expired';
  /** Late-cancellation fee kept out of the hold (0 when free); fee = tutorShare + commission. */
  fee: number;
  tutorShare: number;
  commission: number;
  commissionTax?: CommissionTax;
  entryId: string;
}

export interface RefundToWallet {
  type: 'RefundToWallet';
  studentId: string;
  refundId: string;
  bookingId: string;
  /** Back to the wallet; amount + discounts = tutorPart + commissionPart (+ tax). */
  amount: number;
  /** The discounts' parts of the refund, credited back to their funding accounts (bookingPrice.ts). */
  discounts?: Discount[];
  tutorPart: number;
  commissionPart: number;
  /** The commission tax this refund reverses; absent when the capture booked none. */
  commissionTax?: CommissionTax;
  currency: string;
  entryId: string;
}

export interface RefundWalletToCard {
  type: 'RefundWalletToCard';
  studentId: string;
  topUpId: string;
  stripeRefundId: string;
  amount: number;
  currency: string;
  entryId: string;
}

/**
 * Stripe could not return a card refund (refund.failed): the money is back in the platform's Stripe
 * balance, so the wallet gets back exactly what the refund took (docs/ledger-flows.md, "Card refund
 * failed"). Only a refund this wallet applied and that has not failed yet can fail.
 */
export interface ReverseFailedCardRefund {
  type: 'ReverseFailedCardRefund';
  studentId: string;
  topUpId: string;
  stripeRefundId: string;
  amount: number;
  currency: string;
  /** Stripe's `failure_reason` (e.g. expired_or_canceled_card). */
  failureReason: string;
  entryId: string;
}

export interface AdjustWallet extends EffectiveInput {
  type: 'AdjustWallet';
  /** When the adjustment is recorded; required with effectiveAt (which may not be before its month). */
  recordedAt?: string;
  studentId: string;
  adjustmentId: string;
  /** From the wallet's side: 'credit' gives the student money, 'debit' takes it. */
  direction: 'debit' | 'credit';
  amount: number;
  currency: string;
  reason: string;
  actor: Actor;
  entryId: string;
}

/** Replaces the wallet's spending limits (spendingLimits.ts); the same limits again append nothing. */
export interface SetSpendingLimits {
  type: 'SetSpendingLimits';
  studentId: string;
  /** The limits' currency: the wallet's, or, on a wallet without money yet, the one it will hold. */
  currency: string;
  limits: SpendingLimits;
  actor: Actor;
  setAt: string;
  /** Whether the student has a linked guardian (guardianship.ts): then a student may only lower limits. */
  guardianLinked: boolean;
}

/** A subscription payment (subscription.ts): a direct charge, no hold (docs/ledger-flows.md). */
export interface ChargeSubscription {
  type: 'ChargeSubscription';
  studentId: string;
  subscriptionId: string;
  /** periodChargeId / changeChargeId (subscription.ts): the wallet takes each at most once. */
  chargeId: string;
  kind: 'period' | 'change';
  period: number;
  planId: string;
  /** The first day of the period this charge pays for (0 for a period; later for an upgrade). */
  startDay: number;
  amount: number;
  currency: string;
  entryId: string;
}

/** Unused subscription money back to the wallet (cancel now, or a charge its subscription refused). */
export interface RefundSubscription {
  type: 'RefundSubscription';
  studentId: string;
  subscriptionId: string;
  refundId: string;
  amount: number;
  currency: string;
  entryId: string;
}

/** The subscription ended (with the refund of its unused part, if any): the student may subscribe again. */
export interface EndSubscription {
  type: 'EndSubscription';
  studentId: string;
  subscriptionId: string;
  /** 0: nothing comes back (refundId then null). */
  refund: number;
  refundId: string | null;
  currency: string;
  entryId: string;
}

export type WalletCommand =
  | SetSpendingLimits
  | ChargeSubscription
  | RefundSubscription
  | EndSubscription
  | CreditTopUp
  | PlaceWalletHold
  | CaptureWalletHold
  | ReleaseWalletHold
  | RefundToWallet
  | RefundWalletToCard
  | ReverseFailedCardRefund
  | AdjustWallet;

// ---------------------------------------------------------------------------------------------------
// Events (every one moves money, so every one carries its entry)

const holdRef = {
  studentId: EntityIdSchema,
  holdId: UuidSchema,
  bookingId: EntityIdSchema,
  tutorId: EntityIdSchema,
};

export const WALLET_EVENTS = {
  WalletToppedUp: strictObject({
    studentId: EntityIdSchema,
    topUpId: EntityIdSchema,
    paymentIntentId: StripeIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    entry: JournalEntrySchema,
  }),
  WalletHoldPlaced: strictObject({
    ...holdRef,
    /** What the student pays (listPrice - discounts when discounted). */
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    scheduledAt: InstantSchema,
    /**
     * The day, week and month (tenant time zone) the hold's spending counts in; absent on holds
     * placed before spending limits existed, which count in none.
     */
    spendingPeriods: Type.Optional(SpendingPeriodsSchema),
    /** The booking's list price; absent when no discount applies (then it is `amount`). */
    listPrice: Type.Optional(PositiveAmountSchema),
    /** Discounts off the list price, charged to their funding accounts at capture (bookingPrice.ts). */
    discounts: Type.Optional(DiscountsSchema),
    entry: JournalEntrySchema,
  }),
  WalletHoldCaptured: strictObject({
    ...holdRef,
    /** The hold's amount (released in full). */
    held: PositiveAmountSchema,
    /** Charged to the wallet. */
    captured: PositiveAmountSchema,
    tutorShare: AmountSchema,
    commission: AmountSchema,
    /** Tax on the commission (tax.ts): credited to platform:tax:payable; absent when none applies. */
    commissionTax: Type.Optional(CommissionTaxSchema),
    /** The hold's discounts, debited to their funding accounts: captured + discounts = the split. */
    discounts: Type.Optional(DiscountsSchema),
    currency: CurrencySchema,
    entry: JournalEntrySchema,
  }),
  WalletHoldReleased: strictObject({
    ...holdRef,
    reason: Type.Union([Type.Literal('cancelled'), Type.Literal('expired')]),
    /** The hold's amount (released in full). */
    held: PositiveAmountSchema,
    fee: AmountSchema,
    tutorShare: AmountSchema,
    commission: AmountSchema,
    commissionTax: Type.Optional(CommissionTaxSchema),
    currency: CurrencySchema,
    entry: JournalEntrySchema,
  }),
  WalletRefunded: strictObject({
    studentId: EntityIdSchema,
    refundId: EntityIdSchema,
    bookingId: EntityIdSchema,
    tutorId: EntityIdSchema,
    /** Back to the wallet: 0 only when the discounts' parts take the whole refund. */
    amount: AmountSchema,
    tutorPart: AmountSchema,
    commissionPart: AmountSchema,
    /** The discounts' parts, credited back to their funding accounts; absent when none. */
    discounts: Type.Optional(DiscountsSchema),
    /** The commission tax reversed: debited to platform:tax:payable; absent when none. */
    commissionTax: Type.Optional(CommissionTaxSchema),
    currency: CurrencySchema,
    entry: JournalEntrySchema,
  }),
  WalletRefundedToCard: strictObject({
    studentId: EntityIdSchema,
    topUpId: EntityIdSchema,
    stripeRefundId: StripeIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    entry: JournalEntrySchema,
  }),
  /** The reversal of a WalletRefundedToCard that failed at Stripe: Dr stripe:balance, Cr wallet. */
  WalletCardRefundFailed: strictObject({
    studentId: EntityIdSchema,
    topUpId: EntityIdSchema,
    stripeRefundId: StripeIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    failureReason: TextSchema(),
    entry: JournalEntrySchema,
  }),
  WalletAdjusted: strictObject({
    studentId: EntityIdSchema,
    adjustmentId: EntityIdSchema,
    direction: SideSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    reason: TextSchema(),
    actor: ActorSchema,
    entry: JournalEntrySchema,
    ...EffectiveFields,
  }),
  /** No postings: the limits in force from now on (all null: none). Fixes the wallet's currency. */
  WalletSpendingLimitsSet: strictObject({
    studentId: EntityIdSchema,
    currency: CurrencySchema,
    limits: SpendingLimitsSchema,
    actor: ActorSchema,
    setAt: InstantSchema,
  }),
  WalletSubscriptionCharged: strictObject({
    studentId: EntityIdSchema,
    subscriptionId: EntityIdSchema,
    chargeId: EntityIdSchema,
    kind: Type.Union([Type.Literal('period'), Type.Literal('change')]),
    period: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    planId: EntityIdSchema,
    startDay: Type.Integer({ minimum: 0, maximum: 366 }),
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    entry: JournalEntrySchema,
  }),
  WalletSubscriptionRefunded: strictObject({
    studentId: EntityIdSchema,
    subscriptionId: EntityIdSchema,
    refundId: EntityIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    entry: JournalEntrySchema,
  }),
  /**
   * The wallet's record that the student's subscription ended; with a refund of its unused part
   * (Dr deferred revenue, Cr wallet) when `refund` > 0, else no entry.
   */
  WalletSubscriptionEnded: strictObject({
    studentId: EntityIdSchema,
    subscriptionId: EntityIdSchema,
    refund: AmountSchema,
    refundId: Type.Union([EntityIdSchema, Type.Null()]),
    currency: CurrencySchema,
    entry: Type.Optional(JournalEntrySchema),
  }),
} as const satisfies EventSchemas;

export type WalletEvent = EventsOf<typeof WALLET_EVENTS>;
export type WalletToppedUp = EventOf<typeof WALLET_EVENTS, 'WalletToppedUp'>;
export type WalletHoldPlaced = EventOf<typeof WALLET_EVENTS, 'WalletHoldPlaced'>;
export type WalletHoldCaptured = EventOf<typeof WALLET_EVENTS, 'WalletHoldCaptured'>;
export type WalletHoldReleased = EventOf<typeof WALLET_EVENTS, 'WalletHoldReleased'>;
export type WalletRefunded = EventOf<typeof WALLET_EVENTS, 'WalletRefunded'>;
export type WalletRefundedToCard = EventOf<typeof WALLET_EVENTS, 'WalletRefundedToCard'>;
export type WalletCardRefundFailed = EventOf<typeof WALLET_EVENTS, 'WalletCardRefundFailed'>;
export type WalletAdjusted = EventOf<typeof WALLET_EVENTS, 'WalletAdjusted'>;
export type WalletSpendingLimitsSet = EventOf<typeof WALLET_EVENTS, 'WalletSpendingLimitsSet'>;
type WalletMoneyEvent = Exclude<WalletEvent, WalletSpendingLimitsSet | { type: 'WalletSubscriptionEnded' }>;

// ---------------------------------------------------------------------------------------------------
// State

export type WalletHoldStatus = 'held' | 'captured' | 'released';

export interface WalletHold {
  holdId: string;
  bookingId: string;
  tutorId: string;
  amount: number;
  status: WalletHoldStatus;
  captured: number;
  /** Sum of refunds back to the wallet for this booking (never above captured). */
  refunded: number;
  /** The periods its spending was counted in; undefined for holds from before spending limits. */
  periods?: CalendarPeriods;
  /** Discounts off the list price (bookingPrice.ts); empty when none. */
  discounts: readonly Discount[];
  /** Sum of the discounts' parts refunded (never above their total). */
  discountsRefunded: number;
}

/** A card refund the wallet applied (by Stripe refund id): what it took, and whether it failed since. */
export interface WalletCardRefund {
  topUpId: string;
  amount: number;
  failed: boolean;
}

/** What the wallet paid into one subscription (it bounds the refunds). */
export interface WalletSubscription {
  charged: number;
  refunded: number;
  ended: boolean;
}

export interface WalletState {
  studentId: string | null;
  currency: string | null;
  /** The four totals of `student:{id}:wallet`. */
  totals: AccountTotals;
  holds: PersistentMap<WalletHold>;
  /** bookingId -> holdId. */
  holdByBooking: PersistentMap<string>;
  /** topUpId -> amount credited and refunded to the card (failed card refunds given back). */
  topUps: PersistentMap<{ amount: number; refundedToCard: number }>;
  refundIds: PersistentMap<true>;
  /** Every card refund applied, by Stripe refund id (a failed one stays: its id is never reused). */
  cardRefunds: PersistentMap<WalletCardRefund>;
  adjustmentIds: PersistentMap<true>;
  /** Spending limits and what was spent in the current periods (spendingLimits.ts). */
  spending: SpendingState;
  /** Holds held or captured: purchases, for first-purchase-only discounts. */
  purchases: number;
  /** Every subscription this wallet paid for, by id. */
  subscriptions: PersistentMap<WalletSubscription>;
  /** `{subscriptionId}/{chargeId}` and `{subscriptionId}/{refundId}` already applied. */
  subscriptionMoves: PersistentMap<true>;
  /** The student's one subscription that has not ended (a student has at most one). */
  liveSubscriptionId: string | null;
  /** Number of events applied. */
  version: number;
}

export const initialWalletState = (): WalletState => ({
  studentId: null,
  currency: null,
  totals: emptyTotals(),
  holds: PersistentMap.empty(),
  holdByBooking: PersistentMap.empty(),
  topUps: PersistentMap.empty(),
  refundIds: PersistentMap.empty(),
  cardRefunds: PersistentMap.empty(),
  adjustmentIds: PersistentMap.empty(),
  spending: initialSpendingState(),
  purchases: 0,
  subscriptions: PersistentMap.empty(),
  subscriptionMoves: PersistentMap.empty(),
  liveSubscriptionId: null,
  version: 0,
});

/** Spendable balance: credits_posted - debits_posted - debits_pending. */
export const walletAvailable = (state: WalletState): number => available(state.totals, 'credit');

// ---------------------------------------------------------------------------------------------------
// decide

function checkStudent(state: WalletState, studentId: unknown): string {
  const id = requireEntityId(studentId, 'studentId');
  if (state.studentId !== null && state.studentId !== id) {
    validationFailed(`command for student ${id} sent to the wallet of ${state.studentId}`, {
      field: 'studentId',
    });
  }
  return id;
}

/** Currency of a new money movement: must be supported and, once the wallet has one, the same. */
function checkCurrency(state: WalletState, currency: unknown): string {
  const c = assertCurrency(currency);
  if (state.currency !== null) assertSameCurrency(state.currency, c, 'the wallet');
  return c;
}

function requireSpendable(state: WalletState, amount: number, what: string): void {
  const spendable = state.currency === null ? 0 : walletAvailable(state);
  if (amount > spendable) {
    throw new DomainError(
      'insufficient_funds',
      `${what}: the wallet has ${state.currency === null ? 0 : formatMoney({ amount: spendable, currency: state.currency })} available, needs ${amount}`,
      { available: spendable, requested: amount },
    );
  }
}

function requireHold(state: WalletState, holdId: unknown): WalletHold {
  const id = requireUuid(holdId, 'holdId');
  const hold = state.holds.get(id);
  if (!hold) throw new DomainError('not_found', `hold ${id} not found on this wallet`, { holdId: id });
  if (hold.status !== 'held') {
    throw new DomainError('invalid_state', `hold ${id} was already ${hold.status}; a hold resolves once`, {
      holdId: id,
      status: hold.status,
    });
  }
  return hold;
}

function checkSplit(total: number, a: number, b: number, names: [string, string, string]): void {
  if (a + b !== total) {
    validationFailed(`${names[1]} + ${names[2]} must equal ${names[0]}`, {
      [names[0]]: total,
      [names[1]]: a,
      [names[2]]: b,
    });
  }
}

/**
 * The legs of settling a booking hold, on completion (capture) or late cancellation (release with a
 * fee): the whole hold is released from the booking's clearing account, and `charged` is posted from
 * the wallet to the tutor's pending earnings and the platform's commission.
 */
function settlementLegs(
  studentId: string,
  hold: WalletHold,
  split: {
    charged: number;
    tutorShare: number;
    commission: number;
    commissionTax?: CommissionTax | undefined;
    discounts?: readonly Discount[] | undefined;
  },
): { hold: HoldLeg; lines: Line[] } {
  const wallet = studentWallet(studentId);
  const lines: Line[] = [
    { account: wallet, side: 'debit', amount: split.charged },
    ...discountLines(split.discounts, 'debit'),
    { account: tutorEarningsPending(hold.tutorId), side: 'credit', amount: split.tutorShare },
    { account: PLATFORM_REVENUE_COMMISSION, side: 'credit', amount: split.commission },
  ];
  // Only with tax: an untaxed settlement's entry is exactly what it always was.
  if (split.commissionTax) {
    lines.push({ account: PLATFORM_TAX_PAYABLE, side: 'credit', amount: split.commissionTax.amount });
  }
  return {
    hold: { debitAccount: wallet, creditAccount: bookingClearing(hold.bookingId), amount: hold.amount },
    lines,
  };
}

/** A command's commission tax, checked; undefined when it has none. */
function commissionTaxOf(value: CommissionTax | undefined): CommissionTax | undefined {
  if (value === undefined) return undefined;
  const amount = assertAmount(value.amount, { field: 'commissionTax.amount', allowZero: true });
  if (
    !Number.isInteger(value.rateBps) ||
    value.rateBps < 1 ||
    value.rateBps > 10_000 ||
    typeof value.inclusive !== 'boolean'
  ) {
    validationFailed('commissionTax must be {amount, rateBps 1..10000, inclusive}', {
      field: 'commissionTax',
    });
  }
  return { amount, rateBps: value.rateBps, inclusive: value.inclusive };
}

function requireWalletSubscription(state: WalletState, subscriptionId: string): WalletSubscription {
  const known = state.subscriptions.get(subscriptionId);
  if (!known) {
    throw new DomainError('not_found', `subscription ${subscriptionId} was never paid from this wallet`, {
      subscriptionId,
    });
  }
  return known;
}

/** Unused subscription money back to the wallet: Dr deferred revenue, Cr wallet, at most what was paid. */
function subscriptionRefundEntry(
  state: WalletState,
  r: {
    studentId: string;
    subscriptionId: string;
    refundId: string;
    amount: number;
    currency: string;
    entryId: string;
  },
  why: 'refund' | 'end',
): JournalEntry {
  const known = requireWalletSubscription(state, r.subscriptionId);
  if (state.subscriptionMoves.get(`${r.subscriptionId}/${r.refundId}`)) {
    throw new DomainError('invalid_state', `refund ${r.refundId} was already applied`, {
      refundId: r.refundId,
    });
  }
  if (known.refunded + r.amount > known.charged) {
    throw new DomainError(
      'limit_exceeded',
      `refund of ${r.amount} exceeds what subscription ${r.subscriptionId} has left to refund (${known.charged - known.refunded})`,
      { charged: known.charged, refunded: known.refunded, requested: r.amount },
    );
  }
  const money = formatMoney({ amount: r.amount, currency: r.currency });
  return postEntry({
    entryId: r.entryId,
    currency: r.currency,
    description:
      why === 'end'
        ? `Subscription ${r.subscriptionId} ended: unused ${money} back to the wallet`
        : `Subscription ${r.subscriptionId} refund ${r.refundId}: ${money} back to the wallet`,
    lines: [
      { account: PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS, side: 'debit', amount: r.amount },
      { account: studentWallet(r.studentId), side: 'credit', amount: r.amount },
    ],
  });
}

export function decideWallet(command: WalletCommand, state: WalletState): WalletEvent[] {
  const events = decideWalletEvents(command, state);
  const first = events[0];
  // The wallet stream owns the wallet's totals: its limit is checked exactly here (ledgerLimits.ts).
  if (first) {
    const { studentId, currency } = first.data;
    assertOwnedAccountWithinLimit(
      state.totals,
      studentWallet(studentId),
      currency,
      entriesOf(events),
      volumeLimitFor(command.type),
    );
  }
  return events;
}

function decideWalletEvents(command: WalletCommand, state: WalletState): WalletEvent[] {
  switch (command.type) {
    case 'SetSpendingLimits': {
      const studentId = checkStudent(state, command.studentId);
      const currency = checkCurrency(state, command.currency);
      const limits = requireLimits(command.limits);
      const actor = requireActor(command.actor);
      const setAt = toIso(parseInstant(command.setAt, 'setAt'));
      if (command.guardianLinked === true && actor.role === 'student') {
        const raised = raisedLimits(state.spending.limits, limits);
        if (raised.length > 0) {
          throw new DomainError(
            'forbidden',
            `a guardian is linked to this wallet: only they may raise its limits (${raised.join(', ')})`,
            { raised },
          );
        }
      }
      // The limits in force again change nothing (on a fresh wallet: no limits, and no currency fixed).
      if (sameLimits(limits, state.spending.limits)) return [];
      return [{ type: 'WalletSpendingLimitsSet', data: { studentId, currency, limits, actor, setAt } }];
    }

    case 'ChargeSubscription': {
      const studentId = checkStudent(state, command.studentId);
      const subscriptionId = requireEntityId(command.subscriptionId, 'subscriptionId');
      const chargeId = requireEntityId(command.chargeId, 'chargeId');
      const planId = requireEntityId(command.planId, 'planId');
      const amount = assertAmount(command.amount);
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = checkCurrency(state, command.currency);
      if (command.kind !== 'period' && command.kind !== 'change') {
        validationFailed("kind must be 'period' or 'change'", { field: 'kind' });
      }
      if (!Number.isSafeInteger(command.period) || command.period < 0) {
        validationFailed('period must be a non-negative integer', { field: 'period' });
      }
      if (!Number.isInteger(command.startDay) || command.startDay < 0 || command.startDay > 366) {
        validationFailed('startDay must be 0..366', { field: 'startDay' });
      }
      const known = state.subscriptions.get(subscriptionId);
      if (state.liveSubscriptionId !== null && state.liveSubscriptionId !== subscriptionId) {
        throw new DomainError(
          'invalid_state',
          `student ${studentId} already has subscription ${state.liveSubscriptionId}: change or cancel it`,
          { subscriptionId: state.liveSubscriptionId },
        );
      }
      if (known?.ended) {
        throw new DomainError('invalid_state', `subscription ${subscriptionId} has ended`, {
          subscriptionId,
        });
      }
      if (!known && (command.kind !== 'period' || command.period !== 0)) {
        throw new DomainError('not_found', `subscription ${subscriptionId} was never paid from this wallet`, {
          subscriptionId,
        });
      }
      if (state.subscriptionMoves.get(`${subscriptionId}/${chargeId}`)) {
        throw new DomainError(
          'invalid_state',
          `${chargeId} of subscription ${subscriptionId} was already charged`,
          {
            subscriptionId,
            chargeId,
          },
        );
      }
      requireSpendable(state, amount, `subscription ${subscriptionId} ${chargeId}`);
      const entry = postEntry({
        entryId,
        currency,
        description: `Subscription ${subscriptionId} ${chargeId} (plan ${planId}): ${formatMoney({ amount, currency })}`,
        lines: [
          { account: studentWallet(studentId), side: 'debit', amount },
          { account: PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS, side: 'credit', amount },
        ],
      });
      return [
        {
          type: 'WalletSubscriptionCharged',
          data: {
            studentId,
            subscriptionId,
            chargeId,
            kind: command.kind,
            period: command.period,
            planId,
            startDay: command.startDay,
            amount,
            currency,
            entry,
          },
        },
      ];
    }

    case 'RefundSubscription': {
      const studentId = checkStudent(state, command.studentId);
      const subscriptionId = requireEntityId(command.subscriptionId, 'subscriptionId');
      const refundId = requireEntityId(command.refundId, 'refundId');
      const amount = assertAmount(command.amount);
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = checkCurrency(state, command.currency);
      const entry = subscriptionRefundEntry(
        state,
        { studentId, subscriptionId, refundId, amount, currency, entryId },
        'refund',
      );
      return [
        {
          type: 'WalletSubscriptionRefunded',
          data: { studentId, subscriptionId, refundId, amount, currency, entry },
        },
      ];
    }

    case 'EndSubscription': {
      const studentId = checkStudent(state, command.studentId);
      const subscriptionId = requireEntityId(command.subscriptionId, 'subscriptionId');
      const known = requireWalletSubscription(state, subscriptionId);
      if (known.ended) {
        throw new DomainError('invalid_state', `subscription ${subscriptionId} already ended`, {
          subscriptionId,
        });
      }
      const refund = assertAmount(command.refund, { field: 'refund', allowZero: true });
      const currency = checkCurrency(state, command.currency);
      const entryId = requireUuid(command.entryId, 'entryId');
      if (refund > 0 !== (command.refundId !== null)) {
        validationFailed('a refund names its refundId, no refund has none', { field: 'refundId' });
      }
      const data = { studentId, subscriptionId, refund, refundId: command.refundId, currency };
      if (command.refundId === null) return [{ type: 'WalletSubscriptionEnded', data }];
      const refundId = requireEntityId(command.refundId, 'refundId');
      const entry = subscriptionRefundEntry(
        state,
        { studentId, subscriptionId, refundId, amount: refund, currency, entryId },
        'end',
      );
      return [{ type: 'WalletSubscriptionEnded', data: { ...data, refundId, entry } }];
    }

    case 'CreditTopUp': {
      const studentId = checkStudent(state, command.studentId);
      const topUpId = requireEntityId(command.topUpId, 'topUpId');
      const paymentIntentId = requireText(command.paymentIntentId, 'paymentIntentId', 255);
      const amount = assertAmount(command.amount);
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = checkCurrency(state, command.currency);
      if (state.topUps.get(topUpId)) {
        throw new DomainError('invalid_state', `top-up ${topUpId} was already credited to this wallet`, {
          topUpId,
        });
      }
      const entry = postEntry({
        entryId,
        currency,
        description: `Top-up ${topUpId}: ${formatMoney({ amount, currency })} into the wallet`,
        lines: [
          { account: STRIPE_BALANCE, side: 'debit', amount },
          { account: studentWallet(studentId), side: 'credit', amount },
        ],
      });
      return [
        {
          type: 'WalletToppedUp',
          data: { studentId, topUpId, paymentIntentId, amount, currency, entry },
        },
      ];
    }

    case 'PlaceWalletHold': {
      const studentId = checkStudent(state, command.studentId);
      const holdId = requireUuid(command.holdId, 'holdId');
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const tutorId = requireEntityId(command.tutorId, 'tutorId');
      const amount = assertAmount(command.amount);
      const scheduledAt = toIso(parseInstant(command.scheduledAt, 'scheduledAt'));
      const placedAt = parseInstant(command.placedAt, 'placedAt');
      const timeZone = requireTimeZone(command.timeZone, 'timeZone');
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = checkCurrency(state, command.currency);
      const pricing = command.pricing;
      if (pricing !== undefined) {
        const listPrice = assertAmount(pricing.listPrice, { field: 'price' });
        if (payableAfter(listPrice, pricing.discounts) !== amount || pricing.discounts.length === 0) {
          validationFailed('a discounted hold is the list price less its discounts', { field: 'amount' });
        }
      }
      if (state.holds.get(holdId) || state.holdByBooking.get(bookingId)) {
        throw new DomainError('invalid_state', `booking ${bookingId} already has a hold on this wallet`, {
          holdId,
          bookingId,
        });
      }
      const spendingPeriods = periodsForHold(state.spending, calendarPeriods(placedAt, timeZone));
      // The limits first: a booking over a limit is refused whatever the wallet holds.
      checkSpendingLimits(state.spending, amount, spendingPeriods, currency);
      if (command.firstPurchaseOnly !== undefined && state.purchases > 0) {
        throw new DomainError(
          'promo_code_rejected',
          `promo code ${command.firstPurchaseOnly.code}: only for a first purchase, and this student has ${state.purchases} booking(s)`,
          { code: command.firstPurchaseOnly.code, reason: 'first_purchase_only' },
        );
      }
      requireSpendable(state, amount, `hold for booking ${bookingId}`);
      const entry = holdEntry({
        entryId,
        holdId,
        currency,
        description: `Hold for booking ${bookingId}: ${formatMoney({ amount, currency })}`,
        hold: { debitAccount: studentWallet(studentId), creditAccount: bookingClearing(bookingId), amount },
      });
      return [
        {
          type: 'WalletHoldPlaced',
          data: {
            studentId,
            holdId,
            bookingId,
            tutorId,
            amount,
            currency,
            scheduledAt,
            spendingPeriods,
            ...(pricing ? { listPrice: pricing.listPrice, discounts: pricing.discounts } : {}),
            entry,
          },
        },
      ];
    }

    case 'CaptureWalletHold': {
      const studentId = checkStudent(state, command.studentId);
      const hold = requireHold(state, command.holdId);
      const captured = assertAmount(command.captured, { field: 'captured' });
      const tutorShare = assertAmount(command.tutorShare, { field: 'tutorShare', allowZero: true });
      const commission = assertAmount(command.commission, { field: 'commission', allowZero: true });
      const entryId = requireUuid(command.entryId, 'entryId');
      const commissionTax = commissionTaxOf(command.commissionTax);
      const discounted = discountTotal(hold.discounts);
      checkSplit(captured + discounted, tutorShare, commission + (commissionTax?.amount ?? 0), [
        'captured',
        'tutorShare',
        'commission',
      ]);
      if (discounted > 0 && captured !== hold.amount) {
        validationFailed('a discounted hold is captured in full', { field: 'captured', held: hold.amount });
      }
      if (captured > hold.amount) {
        throw new DomainError(
          'limit_exceeded',
          `cannot capture ${captured}: hold ${hold.holdId} is ${hold.amount}`,
          { held: hold.amount, requested: captured },
        );
      }
      const currency = state.currency!;
      const entry = captureEntry({
        entryId,
        holdId: hold.holdId,
        currency,
        // A statement line says why the promotions account paid part of it (undiscounted: as it always was).
        description:
          `Booking ${hold.bookingId} completed: ${formatMoney({ amount: captured, currency })} captured` +
          hold.discounts
            .map(
              (d) =>
                `, ${d.kind.replace('_', ' ')} ${d.reference} ${formatMoney({ amount: d.amount, currency })} off`,
            )
            .join(''),
        ...settlementLegs(studentId, hold, {
          charged: captured,
          tutorShare,
          commission,
          commissionTax,
          discounts: hold.discounts,
        }),
      });
      return [
        {
          type: 'WalletHoldCaptured',
          data: {
            studentId,
            holdId: hold.holdId,
            bookingId: hold.bookingId,
            tutorId: hold.tutorId,
            held: hold.amount,
            captured,
            tutorShare,
            commission,
            ...(commissionTax ? { commissionTax } : {}),
            ...(hold.discounts.length > 0 ? { discounts: [...hold.discounts] } : {}),
            currency,
            entry,
          },
        },
      ];
    }

    case 'ReleaseWalletHold': {
      const studentId = checkStudent(state, command.studentId);
      const hold = requireHold(state, command.holdId);
      if (command.reason !== 'cancelled' && command.reason !== 'expired') {
        validationFailed("reason must be 'cancelled' or 'expired'", { field: 'reason' });
      }
      const fee = assertAmount(command.fee, { field: 'fee', allowZero: true });
      const tutorShare = assertAmount(command.tutorShare, { field: 'tutorShare', allowZero: true });
      const commission = assertAmount(command.commission, { field: 'commission', allowZero: true });
      const entryId = requireUuid(command.entryId, 'entryId');
      const commissionTax = commissionTaxOf(command.commissionTax);
      checkSplit(fee, tutorShare, commission + (commissionTax?.amount ?? 0), [
        'fee',
        'tutorShare',
        'commission',
      ]);
      if (fee > 0 && command.reason === 'expired') {
        validationFailed('an expired hold is released without a fee', { field: 'fee' });
      }
      if (fee > hold.amount) {
        throw new DomainError('limit_exceeded', `fee ${fee} exceeds hold ${hold.holdId} of ${hold.amount}`, {
          held: hold.amount,
          fee,
        });
      }
      const currency = state.currency!;
      const entry = releaseEntry({
        entryId,
        holdId: hold.holdId,
        currency,
        description:
          fee > 0
            ? `Booking ${hold.bookingId} ${command.reason}: hold released, late-cancellation fee ${formatMoney({ amount: fee, currency })}`
            : `Booking ${hold.bookingId} ${command.reason}: hold released`,
        ...settlementLegs(studentId, hold, { charged: fee, tutorShare, commission, commissionTax }),
      });
      return [
        {
          type: 'WalletHoldReleased',
          data: {
            studentId,
            holdId: hold.holdId,
            bookingId: hold.bookingId,
            tutorId: hold.tutorId,
            reason: command.reason,
            held: hold.amount,
            fee,
            tutorShare,
            commission,
            ...(commissionTax ? { commissionTax } : {}),
            currency,
            entry,
          },
        },
      ];
    }

    case 'RefundToWallet': {
      const studentId = checkStudent(state, command.studentId);
      const refundId = requireEntityId(command.refundId, 'refundId');
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const discounts = command.discounts ?? [];
      const discountPart = discountTotal(discounts);
      const amount = assertAmount(command.amount, { allowZero: discounts.length > 0 });
      const tutorPart = assertAmount(command.tutorPart, { field: 'tutorPart', allowZero: true });
      const commissionPart = assertAmount(command.commissionPart, {
        field: 'commissionPart',
        allowZero: true,
      });
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = assertCurrency(command.currency);
      const commissionTax = commissionTaxOf(command.commissionTax);
      checkSplit(amount + discountPart, tutorPart, commissionPart + (commissionTax?.amount ?? 0), [
        'amount',
        'tutorPart',
        'commissionPart',
      ]);
      const holdId = state.holdByBooking.get(bookingId);
      const hold = holdId === undefined ? undefined : state.holds.get(holdId);
      if (!hold) {
        throw new DomainError('not_found', `booking ${bookingId} has no hold on this wallet`, { bookingId });
      }
      assertSameCurrency(state.currency!, currency, 'the wallet');
      if (state.refundIds.get(refundId)) {
        throw new DomainError('invalid_state', `refund ${refundId} was already applied`, { refundId });
      }
      if (hold.status !== 'captured') {
        throw new DomainError(
          'invalid_state',
          `booking ${bookingId} was not captured (hold is ${hold.status})`,
          {
            bookingId,
            status: hold.status,
          },
        );
      }
      for (const d of discounts) {
        const given = hold.discounts.find((h) => h.kind === d.kind && h.reference === d.reference);
        if (!given || !Number.isSafeInteger(d.amount) || d.amount < 1) {
          validationFailed(`refund names discount ${d.kind}:${d.reference}, not one of the booking's`, {
            field: 'discounts',
          });
        }
      }
      if (hold.discountsRefunded + discountPart > discountTotal(hold.discounts)) {
        throw new DomainError(
          'limit_exceeded',
          `refund returns more discount than booking ${bookingId} had`,
          {
            discounts: discountTotal(hold.discounts),
            refunded: hold.discountsRefunded,
          },
        );
      }
      if (hold.refunded + amount > hold.captured) {
        throw new DomainError(
          'limit_exceeded',
          `refund of ${amount} exceeds what is left to refund (${hold.captured - hold.refunded}) for booking ${bookingId}`,
          { captured: hold.captured, refunded: hold.refunded, requested: amount },
        );
      }
      const entry = postEntry({
        entryId,
        currency,
        description: `Refund ${refundId} of booking ${bookingId}: ${formatMoney({ amount, currency })} back to the wallet`,
        lines: [
          { account: refundClearing(refundId), side: 'debit', amount: tutorPart },
          { account: PLATFORM_REVENUE_COMMISSION, side: 'debit', amount: commissionPart },
          ...(commissionTax
            ? [{ account: PLATFORM_TAX_PAYABLE, side: 'debit' as const, amount: commissionTax.amount }]
            : []),
          { account: studentWallet(studentId), side: 'credit', amount },
          ...discountLines(discounts, 'credit'),
        ],
      });
      return [
        {
          type: 'WalletRefunded',
          data: {
            studentId,
            refundId,
            bookingId,
            tutorId: hold.tutorId,
            amount,
            tutorPart,
            commissionPart,
            ...(discounts.length > 0 ? { discounts } : {}),
            ...(commissionTax ? { commissionTax } : {}),
            currency,
            entry,
          },
        },
      ];
    }

    case 'RefundWalletToCard': {
      const studentId = checkStudent(state, command.studentId);
      const topUpId = requireEntityId(command.topUpId, 'topUpId');
      const stripeRefundId = requireText(command.stripeRefundId, 'stripeRefundId', 255);
      const amount = assertAmount(command.amount);
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = assertCurrency(command.currency);
      const topUp = state.topUps.get(topUpId);
      if (!topUp) {
        throw new DomainError('not_found', `top-up ${topUpId} was never credited to this wallet`, {
          topUpId,
        });
      }
      assertSameCurrency(state.currency!, currency, 'the wallet');
      if (state.cardRefunds.get(stripeRefundId)) {
        throw new DomainError('invalid_state', `card refund ${stripeRefundId} was already applied`, {
          stripeRefundId,
        });
      }
      if (topUp.refundedToCard + amount > topUp.amount) {
        throw new DomainError(
          'limit_exceeded',
          `card refund of ${amount} exceeds what is left of top-up ${topUpId} (${topUp.amount - topUp.refundedToCard})`,
          { topUpAmount: topUp.amount, refundedToCard: topUp.refundedToCard, requested: amount },
        );
      }
      requireSpendable(state, amount, `card refund of top-up ${topUpId}`);
      const entry = postEntry({
        entryId,
        currency,
        description: `Top-up ${topUpId} refunded to the card (${stripeRefundId}): ${formatMoney({ amount, currency })}`,
        lines: [
          { account: studentWallet(studentId), side: 'debit', amount },
          { account: STRIPE_BALANCE, side: 'credit', amount },
        ],
      });
      return [
        {
          type: 'WalletRefundedToCard',
          data: { studentId, topUpId, stripeRefundId, amount, currency, entry },
        },
      ];
    }

    case 'ReverseFailedCardRefund': {
      const studentId = checkStudent(state, command.studentId);
      const topUpId = requireEntityId(command.topUpId, 'topUpId');
      const stripeRefundId = requireText(command.stripeRefundId, 'stripeRefundId', 255);
      const amount = assertAmount(command.amount);
      const currency = assertCurrency(command.currency);
      const failureReason = requireText(command.failureReason, 'failureReason');
      const entryId = requireUuid(command.entryId, 'entryId');
      const refund = state.cardRefunds.get(stripeRefundId);
      if (!refund) {
        throw new DomainError('not_found', `card refund ${stripeRefundId} was never applied to this wallet`, {
          stripeRefundId,
        });
      }
      if (refund.failed) {
        throw new DomainError('invalid_state', `card refund ${stripeRefundId} already failed`, {
          stripeRefundId,
          status: 'failed',
        });
      }
      // Exactly the refund's postings reversed: Stripe gives back what it took, never another amount.
      if (refund.topUpId !== topUpId) {
        validationFailed(`card refund ${stripeRefundId} is of top-up ${refund.topUpId}, not ${topUpId}`, {
          field: 'topUpId',
        });
      }
      if (refund.amount !== amount) {
        validationFailed(`card refund ${stripeRefundId} was of ${refund.amount}, not ${amount}`, {
          field: 'amount',
          expected: refund.amount,
        });
      }
      assertSameCurrency(state.currency!, currency, 'the wallet');
      const entry = postEntry({
        entryId,
        currency,
        description: `Card refund ${stripeRefundId} of top-up ${topUpId} failed (${failureReason}): ${formatMoney({ amount, currency })} back to the wallet`,
        lines: [
          { account: STRIPE_BALANCE, side: 'debit', amount },
          { account: studentWallet(studentId), side: 'credit', amount },
        ],
      });
      return [
        {
          type: 'WalletCardRefundFailed',
          data: { studentId, topUpId, stripeRefundId, amount, currency, failureReason, entry },
        },
      ];
    }

    case 'AdjustWallet': {
      const studentId = checkStudent(state, command.studentId);
      const adjustmentId = requireEntityId(command.adjustmentId, 'adjustmentId');
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
      if (direction === 'debit') requireSpendable(state, amount, `adjustment ${adjustmentId}`);
      const entry = manualAdjustmentEntry({
        entryId,
        adjustmentId,
        account: studentWallet(studentId),
        direction,
        amount,
        currency,
        reason,
      });
      return [
        {
          type: 'WalletAdjusted',
          data: { studentId, adjustmentId, direction, amount, currency, reason, actor, entry, ...effective },
        },
      ];
    }

    default:
      throw new DomainError('validation_failed', 'unknown wallet command');
  }
}

// ---------------------------------------------------------------------------------------------------
// evolve: folds events, asserting the invariants the decide side promised (a violation is a bug or a
// corrupted stream, never a user error).

function applyMoney(
  state: WalletState,
  studentId: string,
  currency: string,
  entry: JournalEntry,
): WalletState {
  invariant(
    state.studentId === null || state.studentId === studentId,
    `wallet event for ${studentId} in wallet ${state.studentId}`,
  );
  invariant(
    state.currency === null || state.currency === currency,
    `wallet in ${state.currency} got an event in ${currency}`,
  );
  const totals = applyEntryToAccount(state.totals, entry, studentWallet(studentId), currency);
  invariant(
    available(totals, 'credit') >= 0,
    () => `wallet ${studentId}: available ${available(totals, 'credit')} below 0 after ${entry.entryId}`,
  );
  return { ...state, studentId, currency, totals, version: state.version + 1 };
}

function withHold(state: WalletState, holdId: string, update: (hold: WalletHold) => WalletHold): WalletState {
  const hold = state.holds.get(holdId);
  invariant(hold, `hold ${holdId} unknown`);
  return { ...state, holds: state.holds.set(holdId, update(hold)) };
}

export function evolveWallet(state: WalletState, event: WalletEvent): WalletState {
  if (event.type === 'WalletSpendingLimitsSet') {
    const e = event.data;
    invariant(
      state.studentId === null || state.studentId === e.studentId,
      `limits of ${e.studentId} in wallet ${state.studentId}`,
    );
    invariant(
      state.currency === null || state.currency === e.currency,
      `limits in ${e.currency} on a wallet in ${state.currency}`,
    );
    return {
      ...state,
      studentId: e.studentId,
      currency: e.currency,
      spending: { ...state.spending, limits: e.limits },
      version: state.version + 1,
    };
  }
  if (event.type === 'WalletSubscriptionEnded') {
    const e = event.data;
    const known = state.subscriptions.get(e.subscriptionId);
    invariant(
      state.studentId === e.studentId,
      `wallet event for ${e.studentId} in wallet ${state.studentId}`,
    );
    invariant(known && !known.ended, `subscription ${e.subscriptionId} ended twice or never paid`);
    invariant(
      e.refund > 0 === (e.entry !== undefined),
      `subscription ${e.subscriptionId}: refund without entry`,
    );
    invariant(
      known.refunded + e.refund <= known.charged,
      `refunds of ${e.subscriptionId} exceed its charges`,
    );
    const next = e.entry
      ? applyMoney(state, e.studentId, e.currency, e.entry)
      : { ...state, version: state.version + 1 };
    return {
      ...next,
      subscriptions: next.subscriptions.set(e.subscriptionId, {
        ...known,
        refunded: known.refunded + e.refund,
        ended: true,
      }),
      subscriptionMoves: e.refundId
        ? next.subscriptionMoves.set(`${e.subscriptionId}/${e.refundId}`, true)
        : next.subscriptionMoves,
      liveSubscriptionId: state.liveSubscriptionId === e.subscriptionId ? null : state.liveSubscriptionId,
    };
  }
  return evolveMoney(state, event);
}

/** A hold's resolution: what the student was not charged comes back to the spending limits. */
function unspent(state: WalletState, hold: WalletHold, charged: number): SpendingState {
  return hold.periods ? giveBack(state.spending, hold.amount - charged, hold.periods) : state.spending;
}

function evolveMoney(state: WalletState, event: WalletMoneyEvent): WalletState {
  const d = event.data;
  const next = applyMoney(state, d.studentId, d.currency, d.entry);
  switch (event.type) {
    case 'WalletSubscriptionCharged': {
      const e = event.data;
      const key = `${e.subscriptionId}/${e.chargeId}`;
      const known = state.subscriptions.get(e.subscriptionId);
      invariant(!state.subscriptionMoves.get(key), `subscription charge ${key} applied twice`);
      invariant(!known?.ended, `charge of ended subscription ${e.subscriptionId}`);
      invariant(
        state.liveSubscriptionId === null || state.liveSubscriptionId === e.subscriptionId,
        `a second live subscription ${e.subscriptionId} beside ${state.liveSubscriptionId}`,
      );
      return {
        ...next,
        subscriptions: next.subscriptions.set(e.subscriptionId, {
          charged: (known?.charged ?? 0) + e.amount,
          refunded: known?.refunded ?? 0,
          ended: false,
        }),
        subscriptionMoves: next.subscriptionMoves.set(key, true),
        liveSubscriptionId: e.subscriptionId,
      };
    }
    case 'WalletSubscriptionRefunded': {
      const e = event.data;
      const key = `${e.subscriptionId}/${e.refundId}`;
      const known = state.subscriptions.get(e.subscriptionId);
      invariant(known, `refund of unknown subscription ${e.subscriptionId}`);
      invariant(!state.subscriptionMoves.get(key), `subscription refund ${key} applied twice`);
      invariant(
        known.refunded + e.amount <= known.charged,
        `refunds of ${e.subscriptionId} exceed its charges`,
      );
      return {
        ...next,
        subscriptions: next.subscriptions.set(e.subscriptionId, {
          ...known,
          refunded: known.refunded + e.amount,
        }),
        subscriptionMoves: next.subscriptionMoves.set(key, true),
      };
    }
    case 'WalletToppedUp': {
      const e = event.data;
      invariant(!state.topUps.get(e.topUpId), `top-up ${e.topUpId} credited twice`);
      return { ...next, topUps: next.topUps.set(e.topUpId, { amount: e.amount, refundedToCard: 0 }) };
    }
    case 'WalletHoldPlaced': {
      const e = event.data;
      invariant(!state.holds.get(e.holdId), `hold ${e.holdId} placed twice`);
      invariant(!state.holdByBooking.get(e.bookingId), `booking ${e.bookingId} held twice`);
      return {
        ...next,
        holds: next.holds.set(e.holdId, {
          holdId: e.holdId,
          bookingId: e.bookingId,
          tutorId: e.tutorId,
          amount: e.amount,
          status: 'held',
          captured: 0,
          refunded: 0,
          ...(e.spendingPeriods ? { periods: e.spendingPeriods } : {}),
          discounts: e.discounts ?? [],
          discountsRefunded: 0,
        }),
        holdByBooking: next.holdByBooking.set(e.bookingId, e.holdId),
        spending: e.spendingPeriods ? countHold(next.spending, e.amount, e.spendingPeriods) : next.spending,
        purchases: next.purchases + 1,
      };
    }
    case 'WalletHoldCaptured': {
      const e = event.data;
      const resolved = withHold(next, e.holdId, (hold) => {
        invariant(hold.status === 'held', `hold ${e.holdId} resolved twice`);
        invariant(e.captured <= hold.amount, `hold ${e.holdId} captured above its amount`);
        return { ...hold, status: 'captured', captured: e.captured };
      });
      return { ...resolved, spending: unspent(next, next.holds.get(e.holdId)!, e.captured) };
    }
    case 'WalletHoldReleased': {
      const e = event.data;
      const resolved = withHold(next, e.holdId, (hold) => {
        invariant(hold.status === 'held', `hold ${e.holdId} resolved twice`);
        invariant(e.fee <= hold.amount, `hold ${e.holdId} fee above its amount`);
        return { ...hold, status: 'released' };
      });
      return {
        ...resolved,
        spending: unspent(next, next.holds.get(e.holdId)!, e.fee),
        purchases: resolved.purchases - 1,
      };
    }
    case 'WalletRefunded': {
      const e = event.data;
      const holdId = state.holdByBooking.get(e.bookingId);
      invariant(holdId !== undefined, `refund for unknown booking ${e.bookingId}`);
      invariant(!state.refundIds.get(e.refundId), `refund ${e.refundId} applied twice`);
      const updated = withHold(next, holdId, (hold) => {
        invariant(hold.status === 'captured', `refund of booking ${e.bookingId} that was not captured`);
        invariant(hold.refunded + e.amount <= hold.captured, `refunds of ${e.bookingId} exceed the capture`);
        const discountsRefunded = hold.discountsRefunded + discountTotal(e.discounts);
        invariant(
          discountsRefunded <= discountTotal(hold.discounts),
          `refunds of ${e.bookingId} return more discount than it had`,
        );
        return { ...hold, refunded: hold.refunded + e.amount, discountsRefunded };
      });
      return { ...updated, refundIds: updated.refundIds.set(e.refundId, true) };
    }
    case 'WalletRefundedToCard': {
      const e = event.data;
      const topUp = state.topUps.get(e.topUpId);
      invariant(topUp, `card refund of unknown top-up ${e.topUpId}`);
      invariant(topUp.refundedToCard + e.amount <= topUp.amount, `card refunds of ${e.topUpId} exceed it`);
      invariant(!state.cardRefunds.get(e.stripeRefundId), `card refund ${e.stripeRefundId} applied twice`);
      return {
        ...next,
        topUps: next.topUps.set(e.topUpId, { ...topUp, refundedToCard: topUp.refundedToCard + e.amount }),
        cardRefunds: next.cardRefunds.set(e.stripeRefundId, {
          topUpId: e.topUpId,
          amount: e.amount,
          failed: false,
        }),
      };
    }
    case 'WalletCardRefundFailed': {
      const e = event.data;
      const refund = state.cardRefunds.get(e.stripeRefundId);
      invariant(
        refund && !refund.failed,
        `card refund ${e.stripeRefundId} failed twice or was never applied`,
      );
      invariant(
        refund.topUpId === e.topUpId && refund.amount === e.amount,
        `failed card refund ${e.stripeRefundId} disagrees with the refund`,
      );
      const topUp = state.topUps.get(e.topUpId);
      invariant(topUp && topUp.refundedToCard >= e.amount, `failed card refund of ${e.topUpId} not refunded`);
      return {
        ...next,
        topUps: next.topUps.set(e.topUpId, { ...topUp, refundedToCard: topUp.refundedToCard - e.amount }),
        cardRefunds: next.cardRefunds.set(e.stripeRefundId, { ...refund, failed: true }),
      };
    }
    case 'WalletAdjusted': {
      const e = event.data;
      invariant(!state.adjustmentIds.get(e.adjustmentId), `adjustment ${e.adjustmentId} applied twice`);
      return { ...next, adjustmentIds: next.adjustmentIds.set(e.adjustmentId, true) };
    }
  }
}

export const walletDecider: Decider<WalletCommand, WalletEvent, WalletState> = {
  initialState: initialWalletState,
  decide: decideWallet,
  evolve: evolveWallet,
};
