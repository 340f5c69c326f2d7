import type { Discount } from '../domain/bookingPrice.js';
import type { Money } from '../domain/money.js';

/**
 * What the API answers about a top-up, a booking and a payout. Shared by both sides: the write side
 * answers a command with the view of the aggregate it changed (src/commands/views.ts builds it from
 * the decider's state), the read side serves the same view from the read models.
 */
export type TopUpStatus = 'pending' | 'succeeded' | 'failed' | 'refunded' | 'partially_refunded';
export interface TopUpView {
  topUpId: string;
  studentId: string;
  status: TopUpStatus;
  amount: Money;
  paymentIntentId: string | null;
  /** Present while a card step is still needed (Stripe client_secret). */
  clientSecret: string | null;
  failureReason: string | null;
}

export type BookingStatus = 'held' | 'completed' | 'cancelled' | 'expired';
export interface BookingView {
  bookingId: string;
  studentId: string;
  tutorId: string;
  price: Money;
  scheduledAt: string;
  status: BookingStatus;
  holdId: string;
  captured: number;
  refunded: number;
  tutorShare: number;
  commission: number;
  cancellationFee: number;
  /** Discounts off the price (a promo code) and who funds them: the student pays price - their sum. */
  discounts: Discount[];
}

export type PayoutStatus = 'requested' | 'paid' | 'failed';
export interface PayoutView {
  payoutId: string;
  tutorId: string;
  amount: Money;
  status: PayoutStatus;
  stripeTransferId: string | null;
  stripePayoutId: string | null;
  failureReason: string | null;
}

/** A tutor's Stripe Express account, as the tutor stream last recorded it (account.updated keeps it current). */
export interface PayoutAccountView {
  tutorId: string;
  stripeAccountId: string;
  chargesEnabled: boolean;
  payoutsEnabled: boolean;
  detailsSubmitted: boolean;
  requirements: { currentlyDue: string[]; pastDue: string[]; disabledReason: string | null };
  /** What keeps the account from taking payouts, in Stripe's words; empty when it can. */
  missing: string[];
}

/** Stripe's hosted onboarding for the account (an Account Link: single use, valid a few minutes). */
export interface PayoutOnboardingLink {
  url: string;
  expiresAt: string;
}
