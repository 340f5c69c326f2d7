import { type Static, Type } from '@sinclair/typebox';
import { PersistentMap } from '../lib/persistentMap.js';
import {
  type Discount,
  DiscountsSchema,
  discountTotal,
  payableAfter,
  refundFunding,
} from './bookingPrice.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { assertAmount, assertCurrency, splitByBps } from './money.js';
import {
  AmountSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  PositiveAmountSchema,
  strictObject,
  TextSchema,
  UuidSchema,
} from './schema.js';
import { type CommissionTax, CommissionTaxSchema, splitCharge, splitRefund } from './tax.js';
import { type BookingPolicy, BookingPolicySchema, validateBookingPolicy } from './tenantSettings.js';
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
  /** The list price: what the tutor earns on. */
  price: number;
  currency: string;
  scheduledAt: string;
  /** Discounts off the list price (bookingPrice.ts); the wallet hold is the rest. */
  discounts?: Discount[];
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

const bookingRef = {
  bookingId: EntityIdSchema,
  studentId: EntityIdSchema,
  tutorId: EntityIdSchema,
  holdId: UuidSchema,
  currency: CurrencySchema,
};
type BookingRef = Static<ReturnType<typeof strictObject<typeof bookingRef>>>;

export const BOOKING_EVENTS = {
  BookingPlaced: strictObject({
    ...bookingRef,
    /** The list price (the tutor earns on it); the student pays it less `discounts`. */
    price: PositiveAmountSchema,
    /** Discounts off the price and who funds them (bookingPrice.ts); absent when none. */
    discounts: Type.Optional(DiscountsSchema),
    scheduledAt: InstantSchema,
    policy: BookingPolicySchema,
    placedAt: InstantSchema,
    /** scheduledAt + policy.holdExpiryDays: the hold is released if not completed by then. */
    expiresAt: InstantSchema,
    /** Cancelling at or before this instant is free. */
    freeCancellationUntil: InstantSchema,
  }),
  BookingCompleted: strictObject({
    ...bookingRef,
    /** The list price captured: the wallet pays it less `discounts`, their funding accounts the rest. */
    captured: PositiveAmountSchema,
    discounts: Type.Optional(DiscountsSchema),
    tutorShare: AmountSchema,
    commission: AmountSchema,
    /** Tax booked on the commission (tax.ts); absent when none applies. */
    commissionTax: Type.Optional(CommissionTaxSchema),
    completedAt: InstantSchema,
    /** completedAt + policy.earningsHoldPeriodDays: when the tutor share may become available. */
    earningsClearableAt: InstantSchema,
  }),
  BookingCancelled: strictObject({
    ...bookingRef,
    reason: TextSchema(),
    /** True when cancelled after the free window: a fee applies (it may still round to 0). */
    late: Type.Boolean(),
    fee: AmountSchema,
    /** The fee's split: tutorShare + commission (+ its tax) = fee (all 0 when free). */
    tutorShare: AmountSchema,
    commission: AmountSchema,
    commissionTax: Type.Optional(CommissionTaxSchema),
    /** The discounts the booking was placed with, never granted now (their reservations are released). */
    discounts: Type.Optional(DiscountsSchema),
    cancelledAt: InstantSchema,
    /** When the tutor's part of the fee may clear; null when there is no fee. */
    earningsClearableAt: Nullable(InstantSchema),
  }),
  BookingExpired: strictObject({
    ...bookingRef,
    /** As on BookingCancelled. */
    discounts: Type.Optional(DiscountsSchema),
    expiredAt: InstantSchema,
  }),
  BookingRefunded: strictObject({
    ...bookingRef,
    refundId: EntityIdSchema,
    /** Of the list price: the wallet gets it less the discounts' parts. */
    amount: PositiveAmountSchema,
    /** The discounts' parts of this refund, credited back to their funding accounts; absent when none. */
    discounts: Type.Optional(DiscountsSchema),
    /** The tutor share and commission reversed by this refund: tutorPart + commissionPart = amount. */
    tutorPart: AmountSchema,
    commissionPart: AmountSchema,
    /** The tax on the commission this refund reverses (tax.ts); absent when the capture booked none. */
    commissionTax: Type.Optional(CommissionTaxSchema),
    /** Sum of refunds of this booking after this one (<= captured). */
    refundedTotal: PositiveAmountSchema,
    reason: TextSchema(),
    refundedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type BookingEvent = EventsOf<typeof BOOKING_EVENTS>;
export type BookingPlaced = EventOf<typeof BOOKING_EVENTS, 'BookingPlaced'>;
export type BookingCompleted = EventOf<typeof BOOKING_EVENTS, 'BookingCompleted'>;
export type BookingCancelled = EventOf<typeof BOOKING_EVENTS, 'BookingCancelled'>;
export type BookingExpired = EventOf<typeof BOOKING_EVENTS, 'BookingExpired'>;
export type BookingRefunded = EventOf<typeof BOOKING_EVENTS, 'BookingRefunded'>;

export type BookingStatus = 'none' | 'held' | 'completed' | 'cancelled' | 'expired';

export interface BookingState {
  status: BookingStatus;
  bookingId: string | null;
  studentId: string | null;
  tutorId: string | null;
  holdId: string | null;
  price: number;
  currency: string | null;
  /** Discounts off the list price; empty when none. */
  discounts: readonly Discount[];
  scheduledAt: string | null;
  expiresAt: string | null;
  freeCancellationUntil: string | null;
  policy: BookingPolicy | null;
  captured: number;
  tutorShare: number;
  commission: number;
  /** Tax booked with the commission at capture; undefined when none. */
  commissionTax: CommissionTax | undefined;
  cancellationFee: number;
  refunded: number;
  refundedTutor: number;
  refundedCommission: number;
  refundedTax: number;
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
  discounts: [],
  scheduledAt: null,
  expiresAt: null,
  freeCancellationUntil: null,
  policy: null,
  captured: 0,
  tutorShare: 0,
  commission: 0,
  commissionTax: undefined,
  cancellationFee: 0,
  refunded: 0,
  refundedTutor: 0,
  refundedCommission: 0,
  refundedTax: 0,
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
      const discounts = command.discounts ?? [];
      payableAfter(price, discounts);
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
            ...(discounts.length > 0 ? { discounts } : {}),
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
      const { commission, tutorShare, commissionTax } = splitCharge(
        booking.price,
        booking.policy.commissionRateBps,
        booking.policy.commissionTax,
      );
      return [
        {
          type: 'BookingCompleted',
          data: {
            ...refOf(booking),
            captured: booking.price,
            ...(state.discounts.length > 0 ? { discounts: [...state.discounts] } : {}),
            tutorShare,
            commission,
            ...(commissionTax ? { commissionTax } : {}),
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
      // The fee is a share of what the student would have paid (the discount was never granted).
      const payable = booking.price - discountTotal(state.discounts);
      const fee = late ? splitByBps(payable, booking.policy.cancellationFeeBps).part : 0;
      const { commission, tutorShare, commissionTax } = splitCharge(
        fee,
        booking.policy.commissionRateBps,
        fee > 0 ? booking.policy.commissionTax : undefined,
      );
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
            ...(commissionTax ? { commissionTax } : {}),
            ...(state.discounts.length > 0 ? { discounts: [...state.discounts] } : {}),
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
      return [
        {
          type: 'BookingExpired',
          data: {
            ...refOf(booking),
            ...(state.discounts.length > 0 ? { discounts: [...state.discounts] } : {}),
            expiredAt: toIso(nowMs),
          },
        },
      ];
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
      const { tutorPart, commissionPart, commissionTax } = splitRefund(
        { captured: state.captured, commission: state.commission, tax: state.commissionTax },
        state.refunded,
        amount,
      );
      const funding = refundFunding(state.captured, state.discounts, state.refunded, amount);
      return [
        {
          type: 'BookingRefunded',
          data: {
            ...refOf(booking),
            refundId,
            amount,
            ...(funding.discounts.length > 0 ? { discounts: funding.discounts } : {}),
            tutorPart,
            commissionPart,
            ...(commissionTax ? { commissionTax } : {}),
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
        discounts: e.discounts ?? [],
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
      invariant(
        e.tutorShare + e.commission + (e.commissionTax?.amount ?? 0) === e.captured,
        'completion split does not sum to the capture',
      );
      return {
        ...state,
        status: 'completed',
        captured: e.captured,
        tutorShare: e.tutorShare,
        commission: e.commission,
        commissionTax: e.commissionTax,
      };
    }
    case 'BookingCancelled': {
      invariant(state.status === 'held', `booking cancelled from ${state.status}`);
      const e = event.data;
      invariant(
        e.fee <= state.price - discountTotal(state.discounts) &&
          e.tutorShare + e.commission + (e.commissionTax?.amount ?? 0) === e.fee,
        'bad cancellation fee split',
      );
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
      const taxPart = e.commissionTax?.amount ?? 0;
      const refundedTax = state.refundedTax + taxPart;
      invariant(e.tutorPart + e.commissionPart + taxPart === e.amount, 'refund split does not sum');
      invariant(refundedTax <= (state.commissionTax?.amount ?? 0), 'refunds exceed the commission tax');
      invariant(refunded <= state.captured, 'refunds exceed the capture');
      invariant(refundedTutor <= state.tutorShare, 'refunds exceed the tutor share');
      invariant(refundedCommission <= state.commission, 'refunds exceed the commission');
      invariant(refunded === e.refundedTotal, 'refund total disagrees with the fold');
      return {
        ...state,
        refunded,
        refundedTutor,
        refundedCommission,
        refundedTax,
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
