import type { CommandContext, CommandResult } from './context.js';

/**
 * The write side as the API, webhooks and jobs see it. Implemented in src/commands (ledgerService.ts)
 * over the event store and the domain deciders. Every method:
 *  - validates and decides purely, then appends with expected revisions (retrying conflicts, bounded);
 *  - throws DomainError (src/domain/errors.ts) with a stable code on rejection, appending nothing;
 *  - is idempotent for the same ctx.idempotencyKey and input (deterministic event ids).
 * Money is { amount: integer minor units, currency: lowercase ISO 4217 }.
 */
export interface Money {
  amount: number;
  currency: string;
}

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

export interface TenantSettings {
  commissionRateBps: number;
  earningsHoldPeriodDays: number;
  cancellationFreeWindowHours: number;
  /** Fee charged for a late cancellation, in basis points of the price. */
  cancellationFeeBps: number;
  holdExpiryDays: number;
  topUpMin: number;
  topUpMax: number;
  payoutMin: number;
  allowedCurrencies: string[];
}

/** A Stripe fee or dispute step, keyed by the Stripe object it belongs to. */
export interface StripeChargeInput {
  kind: 'fee' | 'dispute_opened' | 'dispute_won' | 'dispute_lost';
  stripeObjectId: string;
  amount: Money;
  description: string;
}

export interface LedgerCommands {
  // Top-ups (money in through Stripe).
  initiateTopUp(
    ctx: CommandContext,
    input: { topUpId: string; studentId: string; amount: Money; paymentMethod?: string },
  ): Promise<CommandResult & { topUp: TopUpView }>;
  /** From the payment_intent.succeeded webhook (or a synchronous confirmation). */
  succeedTopUp(
    ctx: CommandContext,
    input: { topUpId: string; paymentIntentId: string; amountReceived: number; currency: string },
  ): Promise<CommandResult>;
  failTopUp(
    ctx: CommandContext,
    input: { topUpId: string; paymentIntentId: string; reason: string },
  ): Promise<CommandResult>;
  /** Unspent wallet money back to the card: Dr wallet, Cr stripe:balance, after Stripe confirms the refund. */
  refundTopUpToCard(
    ctx: CommandContext,
    input: { topUpId: string; stripeRefundId: string; amount: number; currency: string },
  ): Promise<CommandResult>;

  // Bookings.
  placeBooking(
    ctx: CommandContext,
    input: { bookingId: string; studentId: string; tutorId: string; price: Money; scheduledAt: string },
  ): Promise<CommandResult & { booking: BookingView }>;
  completeBooking(
    ctx: CommandContext,
    input: { bookingId: string },
  ): Promise<CommandResult & { booking: BookingView }>;
  cancelBooking(
    ctx: CommandContext,
    input: { bookingId: string; reason: string },
  ): Promise<CommandResult & { booking: BookingView }>;
  /** Omitted amount: refund everything not yet refunded. */
  refundBooking(
    ctx: CommandContext,
    input: { bookingId: string; amount?: number; reason: string },
  ): Promise<CommandResult & { booking: BookingView; refundId: string }>;

  // Payouts.
  requestPayout(
    ctx: CommandContext,
    input: { payoutId: string; tutorId: string; amount: Money },
  ): Promise<CommandResult & { payout: PayoutView }>;
  markPayoutPaid(
    ctx: CommandContext,
    input: { payoutId: string; stripeTransferId?: string; stripePayoutId?: string },
  ): Promise<CommandResult>;
  markPayoutFailed(ctx: CommandContext, input: { payoutId: string; reason: string }): Promise<CommandResult>;

  // Finance admin.
  adjust(
    ctx: CommandContext,
    input: { account: string; direction: 'debit' | 'credit'; amount: Money; reason: string },
  ): Promise<CommandResult & { entryId: string }>;
  /** Stripe fees and disputes (Dr expense, Cr stripe:balance and reversals), keyed by the Stripe object id. */
  recordStripeCharge(
    ctx: CommandContext,
    input: StripeChargeInput,
  ): Promise<CommandResult & { entryId: string }>;

  // Tenant settings (tenant admin): a change is an event and applies from its position on.
  getSettings(tenantId: string): Promise<TenantSettings>;
  updateSettings(
    ctx: CommandContext,
    patch: Partial<TenantSettings>,
  ): Promise<CommandResult & { settings: TenantSettings }>;

  // Time-driven transitions (hold expiry, earnings clearing), idempotent; returns how many ran.
  runDueTasks(tenantId: string, now: Date): Promise<{ expiredHolds: number; clearedEarnings: number }>;
}
