import type { Decider, DomainEvent } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { assertAmount, assertCurrency, cumulativeShare, splitByBps } from './money.js';
import { PersistentMap } from './persistentMap.js';
import { type BookingPolicy, validateBookingPolicy } from './tenantSettings.js';
import {
  DAY_MS,
  HOUR_MS,
  parseInstant,
  requireEntityId,
  requireText,
  requireUuid,
  toIso,
  validationFailed,
} from './validate.js';

/**
 * A booking: stream `booking-{t}.{bookingId}`. It decides prices, splits, fees and refunds; the money
 * itself moves in the wallet and tutor streams (the booking owns no constrained account and its
 * events carry no entries). The wallet hold is placed first, so an unaffordable booking appends
 * nothing anywhere; BookingPlaced then snapshots the tenant policy so later settings changes do not
 * alter this booking.
 *
 * held -> completed (capture, split) | cancelled (free, or with a late fee) | expired.
 * completed -> refunds (full or several partial, their sum never above what was captured).
 */

export interface PlaceBooking {
  type: 'PlaceBooking';
  bookingId: string;
  studentId: string;
  tutorId: string;
  price: number;
  currency: string;
  scheduledAt: string;
  /** The wallet hold already placed for this booking (bookingHoldId in ids.ts). */
  holdId: string;
  /** Snapshot of the tenant settings in force (bookingPolicyFrom in tenantSettings.ts). */
  policy: BookingPolicy;
  placedAt: string;
}

export interface CompleteBooking {
  type: 'CompleteBooking';
  completedAt: string;
}

export interface CancelBooking {
  type: 'CancelBooking';
  reason: string;
  cancelledAt: string;
}

/** Run by the scheduler once `expiresAt` has passed. */
export interface ExpireBooking {
  type: 'ExpireBooking';
  now: string;
}

export interface RefundBooking {
  type: 'RefundBooking';
  refundId: string;
  /** Omitted or null: everything not yet refunded. */
  amount?: number | null;
  reason: string;
  refundedAt: string;
}

export type BookingCommand = PlaceBooking | CompleteBooking | CancelBooking | ExpireBooking | RefundBooking;

interface BookingRef {
  bookingId: string;
  studentId: string;
  tutorId: string;
  holdId: string;
  currency: string;
}

export type BookingPlaced = DomainEvent<
  'BookingPlaced',
  BookingRef & {
    price: number;
    scheduledAt: string;
    policy: BookingPolicy;
    placedAt: string;
    /** scheduledAt + policy.holdExpiryDays: the hold is released if not completed by then. */
    expiresAt: string;
    /** Cancelling at or before this instant is free. */
    freeCancellationUntil: string;
  }
>;

export type BookingCompleted = DomainEvent<
  'BookingCompleted',
  BookingRef & {
    captured: number;
    tutorShare: number;
    commission: number;
    completedAt: string;
    /** completedAt + policy.earningsHoldPeriodDays: when the tutor share may become available. */
    earningsClearableAt: string;
  }
>;

export type BookingCancelled = DomainEvent<
  'BookingCancelled',
  BookingRef & {
    reason: string;
    /** True when cancelled after the free window: a fee applies (it may still round to 0). */
    late: boolean;
    fee: number;
    /** The fee's split: tutorShare + commission = fee (both 0 when free). */
    tutorShare: number;
    commission: number;
    cancelledAt: string;
    /** When the tutor's part of the fee may clear; null when there is no fee. */
    earningsClearableAt: string | null;
  }
>;

export type BookingExpired = DomainEvent<'BookingExpired', BookingRef & { expiredAt: string }>;

export type BookingRefunded = DomainEvent<
  'BookingRefunded',
  BookingRef & {
    refundId: string;
    amount: number;
    /** The tutor share and commission reversed by this refund: tutorPart + commissionPart = amount. */
    tutorPart: number;
    commissionPart: number;
    /** Sum of refunds of this booking after this one (<= captured). */
    refundedTotal: number;
    reason: string;
    refundedAt: string;
  }
>;

export type BookingEvent =
  | BookingPlaced
  | BookingCompleted
  | BookingCancelled
  | BookingExpired
  | BookingRefunded;

export type BookingStatus = 'none' | 'held' | 'completed' | 'cancelled' | 'expired';

export interface BookingState {
  status: BookingStatus;
  bookingId: string | null;
  studentId: string | null;
  tutorId: string | null;
  holdId: string | null;
  price: number;
  currency: string | null;
  scheduledAt: string | null;
  expiresAt: string | null;
  freeCancellationUntil: string | null;
  policy: BookingPolicy | null;
  captured: number;
  tutorShare: number;
  commission: number;
  cancellationFee: number;
  refunded: number;
  refundedTutor: number;
  refundedCommission: number;
  refundIds: PersistentMap<true>;
}

export const initialBookingState = (): BookingState => ({
  status: 'none',
  bookingId: null,
  studentId: null,
  tutorId: null,
  holdId: null,
  price: 0,
  currency: null,
  scheduledAt: null,
  expiresAt: null,
  freeCancellationUntil: null,
  policy: null,
  captured: 0,
  tutorShare: 0,
  commission: 0,
  cancellationFee: 0,
  refunded: 0,
  refundedTutor: 0,
  refundedCommission: 0,
  refundIds: PersistentMap.empty(),
});

interface PlacedBooking extends BookingRef {
  policy: BookingPolicy;
  price: number;
  expiresAtMs: number;
  freeUntilMs: number;
}

function requirePlaced(state: BookingState): PlacedBooking {
  if (state.status === 'none') throw new DomainError('not_found', 'booking not found');
  invariant(
    state.bookingId &&
      state.studentId &&
      state.tutorId &&
      state.holdId &&
      state.currency &&
      state.policy &&
      state.expiresAt &&
      state.freeCancellationUntil,
    'placed booking state is complete',
  );
  return {
    bookingId: state.bookingId,
    studentId: state.studentId,
    tutorId: state.tutorId,
    holdId: state.holdId,
    currency: state.currency,
    policy: state.policy,
    price: state.price,
    expiresAtMs: Date.parse(state.expiresAt),
    freeUntilMs: Date.parse(state.freeCancellationUntil),
  };
}

const refOf = (b: PlacedBooking): BookingRef => ({
  bookingId: b.bookingId,
  studentId: b.studentId,
  tutorId: b.tutorId,
  holdId: b.holdId,
  currency: b.currency,
});

/** complete/cancel need a live hold: still held and not past its expiry (then only expiry applies). */
function requireLiveHold(state: BookingState, booking: PlacedBooking, atMs: number, action: string): void {
  if (state.status !== 'held') {
    throw new DomainError('invalid_state', `cannot ${action} a ${state.status} booking`, {
      status: state.status,
    });
  }
  if (atMs >= booking.expiresAtMs) {
    throw new DomainError(
      'invalid_state',
      `cannot ${action}: the booking's hold expired at ${toIso(booking.expiresAtMs)}`,
      { status: state.status, expiresAt: toIso(booking.expiresAtMs) },
    );
  }
}

export function decideBooking(command: BookingCommand, state: BookingState): BookingEvent[] {
  switch (command.type) {
    case 'PlaceBooking': {
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const studentId = requireEntityId(command.studentId, 'studentId');
      const tutorId = requireEntityId(command.tutorId, 'tutorId');
      const price = assertAmount(command.price, { field: 'price' });
      const currency = assertCurrency(command.currency);
      const scheduledMs = parseInstant(command.scheduledAt, 'scheduledAt');
      const holdId = requireUuid(command.holdId, 'holdId');
      const policy = validateBookingPolicy(command.policy);
      const placedMs = parseInstant(command.placedAt, 'placedAt');
      if (state.status !== 'none') {
        throw new DomainError('invalid_state', `booking ${bookingId} already exists (${state.status})`, {
          status: state.status,
        });
      }
      if (scheduledMs <= placedMs) {
        validationFailed('scheduledAt must be in the future', { field: 'scheduledAt' });
      }
      return [
        {
          type: 'BookingPlaced',
          data: {
            bookingId,
            studentId,
            tutorId,
            holdId,
            currency,
            price,
            scheduledAt: toIso(scheduledMs),
            policy,
            placedAt: toIso(placedMs),
            expiresAt: toIso(scheduledMs + policy.holdExpiryDays * DAY_MS),
            freeCancellationUntil: toIso(scheduledMs - policy.cancellationFreeWindowHours * HOUR_MS),
          },
        },
      ];
    }

    case 'CompleteBooking': {
      const booking = requirePlaced(state);
      const completedMs = parseInstant(command.completedAt, 'completedAt');
      requireLiveHold(state, booking, completedMs, 'complete');
      const { part: commission, rest: tutorShare } = splitByBps(
        booking.price,
        booking.policy.commissionRateBps,
      );
      return [
        {
          type: 'BookingCompleted',
          data: {
            ...refOf(booking),
            captured: booking.price,
            tutorShare,
            commission,
            completedAt: toIso(completedMs),
            earningsClearableAt: toIso(completedMs + booking.policy.earningsHoldPeriodDays * DAY_MS),
          },
        },
      ];
    }

    case 'CancelBooking': {
      const booking = requirePlaced(state);
      const reason = requireText(command.reason, 'reason');
      const cancelledMs = parseInstant(command.cancelledAt, 'cancelledAt');
      requireLiveHold(state, booking, cancelledMs, 'cancel');
      const late = cancelledMs > booking.freeUntilMs;
      const fee = late ? splitByBps(booking.price, booking.policy.cancellationFeeBps).part : 0;
      const { part: commission, rest: tutorShare } = splitByBps(fee, booking.policy.commissionRateBps);
      return [
        {
          type: 'BookingCancelled',
          data: {
            ...refOf(booking),
            reason,
            late,
            fee,
            tutorShare,
            commission,
            cancelledAt: toIso(cancelledMs),
            earningsClearableAt:
              fee > 0 ? toIso(cancelledMs + booking.policy.earningsHoldPeriodDays * DAY_MS) : null,
          },
        },
      ];
    }

    case 'ExpireBooking': {
      const booking = requirePlaced(state);
      const nowMs = parseInstant(command.now, 'now');
      if (state.status !== 'held') {
        throw new DomainError('invalid_state', `cannot expire a ${state.status} booking`, {
          status: state.status,
        });
      }
      if (nowMs < booking.expiresAtMs) {
        throw new DomainError(
          'invalid_state',
          `the booking's hold does not expire until ${toIso(booking.expiresAtMs)}`,
          { expiresAt: toIso(booking.expiresAtMs) },
        );
      }
      return [{ type: 'BookingExpired', data: { ...refOf(booking), expiredAt: toIso(nowMs) } }];
    }

    case 'RefundBooking': {
      const booking = requirePlaced(state);
      const refundId = requireEntityId(command.refundId, 'refundId');
      const reason = requireText(command.reason, 'reason');
      const refundedMs = parseInstant(command.refundedAt, 'refundedAt');
      const requested =
        command.amount === undefined || command.amount === null ? null : assertAmount(command.amount);
      if (state.status !== 'completed') {
        throw new DomainError('invalid_state', `cannot refund a ${state.status} booking`, {
          status: state.status,
        });
      }
      if (state.refundIds.get(refundId)) {
        throw new DomainError('invalid_state', `refund ${refundId} was already made`, { refundId });
      }
      const remaining = state.captured - state.refunded;
      if (remaining === 0) {
        throw new DomainError('invalid_state', 'the booking is already fully refunded', {
          captured: state.captured,
        });
      }
      const amount = requested ?? remaining;
      if (amount > remaining) {
        throw new DomainError(
          'limit_exceeded',
          `refund of ${amount} exceeds what is left to refund (${remaining} of ${state.captured})`,
          { captured: state.captured, refunded: state.refunded, requested: amount },
        );
      }
      // Cumulative proportional split: no refund takes more of either side than is left, and the
      // refund that completes the total takes exactly what remains of each (money.ts cumulativeShare).
      const commissionPart = cumulativeShare(state.commission, state.captured, state.refunded, amount);
      const tutorPart = amount - commissionPart;
      return [
        {
          type: 'BookingRefunded',
          data: {
            ...refOf(booking),
            refundId,
            amount,
            tutorPart,
            commissionPart,
            refundedTotal: state.refunded + amount,
            reason,
            refundedAt: toIso(refundedMs),
          },
        },
      ];
    }

    default:
      throw new DomainError('validation_failed', 'unknown booking command');
  }
}

export function evolveBooking(state: BookingState, event: BookingEvent): BookingState {
  switch (event.type) {
    case 'BookingPlaced': {
      invariant(state.status === 'none', 'booking placed twice');
      const e = event.data;
      return {
        ...state,
        status: 'held',
        bookingId: e.bookingId,
        studentId: e.studentId,
        tutorId: e.tutorId,
        holdId: e.holdId,
        price: e.price,
        currency: e.currency,
        scheduledAt: e.scheduledAt,
        expiresAt: e.expiresAt,
        freeCancellationUntil: e.freeCancellationUntil,
        policy: e.policy,
      };
    }
    case 'BookingCompleted': {
      invariant(state.status === 'held', `booking completed from ${state.status}`);
      const e = event.data;
      invariant(e.captured <= state.price, 'captured more than the price');
      invariant(e.tutorShare + e.commission === e.captured, 'completion split does not sum to the capture');
      return {
        ...state,
        status: 'completed',
        captured: e.captured,
        tutorShare: e.tutorShare,
        commission: e.commission,
      };
    }
    case 'BookingCancelled': {
      invariant(state.status === 'held', `booking cancelled from ${state.status}`);
      const e = event.data;
      invariant(e.fee <= state.price && e.tutorShare + e.commission === e.fee, 'bad cancellation fee split');
      return { ...state, status: 'cancelled', cancellationFee: e.fee };
    }
    case 'BookingExpired':
      invariant(state.status === 'held', `booking expired from ${state.status}`);
      return { ...state, status: 'expired' };
    case 'BookingRefunded': {
      invariant(state.status === 'completed', `refund of a ${state.status} booking`);
      const e = event.data;
      invariant(!state.refundIds.get(e.refundId), `refund ${e.refundId} made twice`);
      const refunded = state.refunded + e.amount;
      const refundedTutor = state.refundedTutor + e.tutorPart;
      const refundedCommission = state.refundedCommission + e.commissionPart;
      invariant(e.tutorPart + e.commissionPart === e.amount, 'refund split does not sum');
      invariant(refunded <= state.captured, 'refunds exceed the capture');
      invariant(refundedTutor <= state.tutorShare, 'refunds exceed the tutor share');
      invariant(refundedCommission <= state.commission, 'refunds exceed the commission');
      invariant(refunded === e.refundedTotal, 'refund total disagrees with the fold');
      return {
        ...state,
        refunded,
        refundedTutor,
        refundedCommission,
        refundIds: state.refundIds.set(e.refundId, true),
      };
    }
  }
}

export const bookingDecider: Decider<BookingCommand, BookingEvent, BookingState> = {
  initialState: initialBookingState,
  decide: decideBooking,
  evolve: evolveBooking,
};
