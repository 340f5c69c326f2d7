import {
  bookingClearing,
  PLATFORM_REVENUE_COMMISSION,
  refundClearing,
  STRIPE_BALANCE,
  studentWallet,
  tutorEarningsPending,
} from './accounts.js';
import { type AccountTotals, applyEntryToAccount, available, emptyTotals } from './balances.js';
import type { Actor, Decider, DomainEvent } from './decider.js';
import { DomainError, invariant } from './errors.js';
import {
  captureEntry,
  type HoldLeg,
  holdEntry,
  type JournalEntry,
  type Line,
  postEntry,
  releaseEntry,
} from './journal.js';
import { manualAdjustmentEntry } from './manualAdjustment.js';
import { assertAmount, assertCurrency, assertSameCurrency, formatMoney } from './money.js';
import { PersistentMap } from './persistentMap.js';
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
  entryId: string;
}

export interface CaptureWalletHold {
  type: 'CaptureWalletHold';
  studentId: string;
  holdId: string;
  /** At most the hold; the rest of the hold is released. captured = tutorShare + commission. */
  captured: number;
  tutorShare: number;
  commission: number;
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
  entryId: string;
}

export interface RefundToWallet {
  type: 'RefundToWallet';
  studentId: string;
  refundId: string;
  bookingId: string;
  amount: number;
  tutorPart: number;
  commissionPart: number;
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

export interface AdjustWallet {
  type: 'AdjustWallet';
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

export type WalletCommand =
  | CreditTopUp
  | PlaceWalletHold
  | CaptureWalletHold
  | ReleaseWalletHold
  | RefundToWallet
  | RefundWalletToCard
  | AdjustWallet;

// ---------------------------------------------------------------------------------------------------
// Events (every one moves money, so every one carries its entry)

export type WalletToppedUp = DomainEvent<
  'WalletToppedUp',
  {
    studentId: string;
    topUpId: string;
    paymentIntentId: string;
    amount: number;
    currency: string;
    entry: JournalEntry;
  }
>;

export type WalletHoldPlaced = DomainEvent<
  'WalletHoldPlaced',
  {
    studentId: string;
    holdId: string;
    bookingId: string;
    tutorId: string;
    amount: number;
    currency: string;
    scheduledAt: string;
    entry: JournalEntry;
  }
>;

export type WalletHoldCaptured = DomainEvent<
  'WalletHoldCaptured',
  {
    studentId: string;
    holdId: string;
    bookingId: string;
    tutorId: string;
    /** The hold's amount (released in full). */
    held: number;
    captured: number;
    tutorShare: number;
    commission: number;
    currency: string;
    entry: JournalEntry;
  }
>;

export type WalletHoldReleased = DomainEvent<
  'WalletHoldReleased',
  {
    studentId: string;
    holdId: string;
    bookingId: string;
    tutorId: string;
    reason: 'cancelled' | 'expired';
    /** The hold's amount (released in full). */
    held: number;
    fee: number;
    tutorShare: number;
    commission: number;
    currency: string;
    entry: JournalEntry;
  }
>;

export type WalletRefunded = DomainEvent<
  'WalletRefunded',
  {
    studentId: string;
    refundId: string;
    bookingId: string;
    tutorId: string;
    amount: number;
    tutorPart: number;
    commissionPart: number;
    currency: string;
    entry: JournalEntry;
  }
>;

export type WalletRefundedToCard = DomainEvent<
  'WalletRefundedToCard',
  {
    studentId: string;
    topUpId: string;
    stripeRefundId: string;
    amount: number;
    currency: string;
    entry: JournalEntry;
  }
>;

export type WalletAdjusted = DomainEvent<
  'WalletAdjusted',
  {
    studentId: string;
    adjustmentId: string;
    direction: 'debit' | 'credit';
    amount: number;
    currency: string;
    reason: string;
    actor: Actor;
    entry: JournalEntry;
  }
>;

export type WalletEvent =
  | WalletToppedUp
  | WalletHoldPlaced
  | WalletHoldCaptured
  | WalletHoldReleased
  | WalletRefunded
  | WalletRefundedToCard
  | WalletAdjusted;

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
}

export interface WalletState {
  studentId: string | null;
  currency: string | null;
  /** The four totals of `student:{id}:wallet`. */
  totals: AccountTotals;
  holds: PersistentMap<WalletHold>;
  /** bookingId -> holdId. */
  holdByBooking: PersistentMap<string>;
  /** topUpId -> amount credited and refunded to the card. */
  topUps: PersistentMap<{ amount: number; refundedToCard: number }>;
  refundIds: PersistentMap<true>;
  cardRefundIds: PersistentMap<true>;
  adjustmentIds: PersistentMap<true>;
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
  cardRefundIds: PersistentMap.empty(),
  adjustmentIds: PersistentMap.empty(),
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
  split: { charged: number; tutorShare: number; commission: number },
): { hold: HoldLeg; lines: Line[] } {
  const wallet = studentWallet(studentId);
  return {
    hold: { debitAccount: wallet, creditAccount: bookingClearing(hold.bookingId), amount: hold.amount },
    lines: [
      { account: wallet, side: 'debit', amount: split.charged },
      { account: tutorEarningsPending(hold.tutorId), side: 'credit', amount: split.tutorShare },
      { account: PLATFORM_REVENUE_COMMISSION, side: 'credit', amount: split.commission },
    ],
  };
}

export function decideWallet(command: WalletCommand, state: WalletState): WalletEvent[] {
  switch (command.type) {
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
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = checkCurrency(state, command.currency);
      if (state.holds.get(holdId) || state.holdByBooking.get(bookingId)) {
        throw new DomainError('invalid_state', `booking ${bookingId} already has a hold on this wallet`, {
          holdId,
          bookingId,
        });
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
          data: { studentId, holdId, bookingId, tutorId, amount, currency, scheduledAt, entry },
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
      checkSplit(captured, tutorShare, commission, ['captured', 'tutorShare', 'commission']);
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
        description: `Booking ${hold.bookingId} completed: ${formatMoney({ amount: captured, currency })} captured`,
        ...settlementLegs(studentId, hold, { charged: captured, tutorShare, commission }),
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
      checkSplit(fee, tutorShare, commission, ['fee', 'tutorShare', 'commission']);
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
        ...settlementLegs(studentId, hold, { charged: fee, tutorShare, commission }),
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
      const amount = assertAmount(command.amount);
      const tutorPart = assertAmount(command.tutorPart, { field: 'tutorPart', allowZero: true });
      const commissionPart = assertAmount(command.commissionPart, {
        field: 'commissionPart',
        allowZero: true,
      });
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = assertCurrency(command.currency);
      checkSplit(amount, tutorPart, commissionPart, ['amount', 'tutorPart', 'commissionPart']);
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
          { account: studentWallet(studentId), side: 'credit', amount },
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
      if (state.cardRefundIds.get(stripeRefundId)) {
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

    case 'AdjustWallet': {
      const studentId = checkStudent(state, command.studentId);
      const adjustmentId = requireEntityId(command.adjustmentId, 'adjustmentId');
      const direction = requireDirection(command.direction);
      const amount = assertAmount(command.amount);
      const reason = requireText(command.reason, 'reason');
      const actor = requireFinanceAdmin(command.actor);
      const entryId = requireUuid(command.entryId, 'entryId');
      const currency = checkCurrency(state, command.currency);
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
          data: { studentId, adjustmentId, direction, amount, currency, reason, actor, entry },
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
  const d = event.data;
  const next = applyMoney(state, d.studentId, d.currency, d.entry);
  switch (event.type) {
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
        }),
        holdByBooking: next.holdByBooking.set(e.bookingId, e.holdId),
      };
    }
    case 'WalletHoldCaptured': {
      const e = event.data;
      return withHold(next, e.holdId, (hold) => {
        invariant(hold.status === 'held', `hold ${e.holdId} resolved twice`);
        invariant(e.captured <= hold.amount, `hold ${e.holdId} captured above its amount`);
        return { ...hold, status: 'captured', captured: e.captured };
      });
    }
    case 'WalletHoldReleased': {
      const e = event.data;
      return withHold(next, e.holdId, (hold) => {
        invariant(hold.status === 'held', `hold ${e.holdId} resolved twice`);
        invariant(e.fee <= hold.amount, `hold ${e.holdId} fee above its amount`);
        return { ...hold, status: 'released' };
      });
    }
    case 'WalletRefunded': {
      const e = event.data;
      const holdId = state.holdByBooking.get(e.bookingId);
      invariant(holdId !== undefined, `refund for unknown booking ${e.bookingId}`);
      invariant(!state.refundIds.get(e.refundId), `refund ${e.refundId} applied twice`);
      const updated = withHold(next, holdId, (hold) => {
        invariant(hold.status === 'captured', `refund of booking ${e.bookingId} that was not captured`);
        invariant(hold.refunded + e.amount <= hold.captured, `refunds of ${e.bookingId} exceed the capture`);
        return { ...hold, refunded: hold.refunded + e.amount };
      });
      return { ...updated, refundIds: updated.refundIds.set(e.refundId, true) };
    }
    case 'WalletRefundedToCard': {
      const e = event.data;
      const topUp = state.topUps.get(e.topUpId);
      invariant(topUp, `card refund of unknown top-up ${e.topUpId}`);
      invariant(topUp.refundedToCard + e.amount <= topUp.amount, `card refunds of ${e.topUpId} exceed it`);
      invariant(!state.cardRefundIds.get(e.stripeRefundId), `card refund ${e.stripeRefundId} applied twice`);
      return {
        ...next,
        topUps: next.topUps.set(e.topUpId, { ...topUp, refundedToCard: topUp.refundedToCard + e.amount }),
        cardRefundIds: next.cardRefundIds.set(e.stripeRefundId, true),
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
