import type { BookingView, PayoutAccountView, PayoutView, TopUpView } from '../contracts/views.js';
import type { BookingState } from '../domain/booking.js';
import { invariant } from '../domain/errors.js';
import type { PayoutState } from '../domain/payout.js';
import type { TopUpState } from '../domain/topUp.js';
import { type PayoutAccountSnapshot, payoutAccountMissing } from '../domain/tutor.js';

/** Aggregate states as the API returns them (the views of src/contracts/views.ts). */
export function bookingView(state: BookingState): BookingView {
  invariant(state.status !== 'none' && state.bookingId && state.studentId && state.tutorId, 'booking exists');
  return {
    bookingId: state.bookingId,
    studentId: state.studentId,
    tutorId: state.tutorId!,
    price: { amount: state.price, currency: state.currency ?? '' },
    scheduledAt: state.scheduledAt ?? '',
    status: state.status,
    holdId: state.holdId ?? '',
    captured: state.captured,
    refunded: state.refunded,
    tutorShare: state.tutorShare,
    commission: state.commission,
    cancellationFee: state.cancellationFee,
    discounts: [...state.discounts],
  };
}

export function topUpView(state: TopUpState): TopUpView {
  invariant(state.status !== 'none' && state.topUpId && state.studentId, 'top-up exists');
  const refunded = state.refundedToCard;
  return {
    topUpId: state.topUpId,
    studentId: state.studentId,
    status:
      state.status === 'succeeded' && refunded > 0
        ? refunded >= state.amount
          ? 'refunded'
          : 'partially_refunded'
        : state.status === 'initiated'
          ? 'pending'
          : state.status,
    amount: { amount: state.amount, currency: state.currency ?? '' },
    paymentIntentId: state.paymentIntentId,
    clientSecret: state.status === 'initiated' ? state.clientSecret : null,
    failureReason: state.failureReason,
  };
}

export function payoutView(state: PayoutState): PayoutView {
  invariant(state.status !== 'none' && state.payoutId && state.tutorId, 'payout exists');
  return {
    payoutId: state.payoutId,
    tutorId: state.tutorId,
    amount: { amount: state.amount, currency: state.currency ?? '' },
    status: state.status === 'submitted' ? 'requested' : state.status,
    stripeTransferId: state.stripeTransferId,
    stripePayoutId: state.stripePayoutId,
    failureReason: state.failureReason,
  };
}

export function payoutAccountView(tutorId: string, account: PayoutAccountSnapshot): PayoutAccountView {
  return {
    tutorId,
    stripeAccountId: account.stripeAccountId,
    chargesEnabled: account.chargesEnabled,
    payoutsEnabled: account.payoutsEnabled,
    detailsSubmitted: account.detailsSubmitted,
    requirements: {
      currentlyDue: [...account.currentlyDue],
      pastDue: [...account.pastDue],
      disabledReason: account.disabledReason,
    },
    missing: payoutAccountMissing(account),
  };
}
