import type {
  BookingView,
  PayoutAccountView,
  PayoutOnboardingLink,
  PayoutView,
  TopUpView,
} from '../contracts/views.js';
import type { Money } from '../domain/money.js';
import type { PeriodsState } from '../domain/periods.js';
import type { TenantSettings } from '../domain/tenantSettings.js';
import type { PayoutAccountSnapshot } from '../domain/tutor.js';
import type { CommandContext, CommandResult } from './context.js';

/** A Stripe fee or dispute step, keyed by the Stripe object it belongs to. */
export interface StripeChargeInput {
  kind: 'fee' | 'dispute_opened' | 'dispute_won' | 'dispute_lost';
  stripeObjectId: string;
  amount: Money;
  description: string;
}

/**
 * The write side as the API, webhooks and jobs see it. Implemented in src/commands (ledgerService.ts)
 * over the event store and the domain deciders. Every method:
 *  - validates and decides purely, then appends with expected revisions (retrying conflicts, bounded);
 *  - throws DomainError (src/domain/errors.ts) with a stable code on rejection, appending nothing;
 *  - is idempotent for the same ctx.idempotencyKey and input (deterministic event ids).
 * Money is { amount: integer minor units, currency: lowercase ISO 4217 }.
 */
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
  /**
   * A card refund failed at Stripe (refund.failed): the wallet gets the refund's amount back (Dr
   * stripe:balance, Cr wallet) and the top-up's refundable amount reopens. A failure of a refund the
   * ledger has not booked yet books the refund first (docs/ledger-flows.md, "Card refund failed").
   */
  reverseFailedCardRefund(
    ctx: CommandContext,
    input: {
      topUpId: string;
      stripeRefundId: string;
      amount: number;
      currency: string;
      failureReason: string;
    },
  ): Promise<CommandResult>;

  // Bookings.
  /** With `promoCode`: the code's discount off the price, reserved on the code (docs/ledger-flows.md). */
  placeBooking(
    ctx: CommandContext,
    input: {
      bookingId: string;
      studentId: string;
      tutorId: string;
      price: Money;
      scheduledAt: string;
      promoCode?: string;
    },
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

  // Tutor payout accounts (Stripe Express accounts, docs/ledger-flows.md "Tutor payout onboarding").
  /**
   * Creates the tutor's Express account the first time (its id recorded in the tutor's stream and reused
   * for good), and returns an onboarding link while Stripe still needs something from the tutor.
   */
  openPayoutAccount(
    ctx: CommandContext,
    input: { tutorId: string },
  ): Promise<CommandResult & { account: PayoutAccountView; onboarding: PayoutOnboardingLink | null }>;
  /** The tutor's account as last recorded, or null when the tutor has none. */
  getPayoutAccount(tenantId: string, tutorId: string): Promise<PayoutAccountView | null>;
  /** Stripe's current description of the account (account.updated): recorded when it changed. */
  syncPayoutAccount(
    ctx: CommandContext,
    input: { tutorId: string; account: PayoutAccountSnapshot },
  ): Promise<CommandResult>;

  // Payouts.
  requestPayout(
    ctx: CommandContext,
    input: { payoutId: string; tutorId: string; amount: Money },
  ): Promise<CommandResult & { payout: PayoutView }>;
  markPayoutPaid(
    ctx: CommandContext,
    input: { payoutId: string; stripeTransferId?: string; stripePayoutId?: string },
  ): Promise<CommandResult>;
  /**
   * Failed or canceled before paid: the hold is released. With Stripe's failureCode a payout already
   * paid fails too (Stripe reports some failures after paid): the payout is reversed.
   */
  markPayoutFailed(
    ctx: CommandContext,
    input: { payoutId: string; reason: string; failureCode?: string },
  ): Promise<CommandResult>;

  // Finance admin.
  adjust(
    ctx: CommandContext,
    input: {
      account: string;
      direction: 'debit' | 'credit';
      amount: Money;
      reason: string;
      effectiveAt?: string;
      corrects?: string;
    },
  ): Promise<CommandResult & { entryId: string }>;
  /** Closes a month of the tenant's books (docs/ledger-flows.md, "Backdated entries and closed periods"). */
  closePeriod(ctx: CommandContext, input: { period: string }): Promise<CommandResult>;
  /** The tenant's closed periods (the periods stream's state). */
  periods(tenantId: string): Promise<PeriodsState>;
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
