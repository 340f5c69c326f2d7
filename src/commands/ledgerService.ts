import type {
  BookingView,
  PayoutAccountView,
  PayoutOnboardingLink,
  PayoutView,
  TopUpView,
} from '../contracts/views.js';
import { PLATFORM_ADJUSTMENTS, requireAccount } from '../domain/accounts.js';
import { adjustmentDecider } from '../domain/adjustment.js';
import { bookingDecider } from '../domain/booking.js';
import { payableAfter } from '../domain/bookingPrice.js';
import type { Decider } from '../domain/decider.js';
import { periodOf } from '../domain/effectiveTime.js';
import { DomainError } from '../domain/errors.js';
import {
  bookingHoldId,
  deterministicId,
  isTenantId,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  payoutHoldId,
  TENANT_ID_PATTERN,
} from '../domain/ids.js';
import { type Money, parseMoney } from '../domain/money.js';
import { MAX_SUBMISSION_ATTEMPTS, type PayoutState, payoutDecider } from '../domain/payout.js';
import { isClosed, type PeriodsState, periodClosedError, periodsDecider } from '../domain/periods.js';
import {
  adjustmentStream,
  bookingStream,
  payoutStream,
  periodsStream,
  settingsStream,
  stripeStream,
  topUpStream,
  tutorStream,
  walletStream,
} from '../domain/streams.js';
import { stripeChargeDecider } from '../domain/stripeCharge.js';
import { type TenantSettings, tenantSettingsDecider } from '../domain/tenantSettings.js';
import { topUpDecider } from '../domain/topUp.js';
import { type PayoutAccountSnapshot, payoutAccountMissing, tutorDecider } from '../domain/tutor.js';
import { parseInstant, requireEntityId, requireText } from '../domain/validate.js';
import { walletDecider } from '../domain/wallet.js';
import { type EventStore, StreamNotFoundError } from '../eventstore/port.js';
import { GatewayError, type PaymentsGateway } from '../stripe/gateway.js';
import {
  CommandHandler,
  type CommandHandlerOptions,
  type DomainEventLike,
  type HandleResult,
} from './commandHandler.js';
import type { CommandContext, CommandResult } from './context.js';
import { entryIdFor, type Trigger, triggerOf } from './flowContext.js';
import { FlowSteps } from './flowSteps.js';
import type { LedgerCommands, StripeChargeInput } from './ledgerCommands.js';
import { type Logger, silentLogger } from './logger.js';
import { priceWithPromoCode } from './promoCodes.js';
import { ReferralService } from './referrals.js';
import { DueTaskRunner } from './scheduler.js';
import { stableHash } from './stableHash.js';
import { SubscriptionService } from './subscriptions.js';
import { bookingView, payoutAccountView, payoutView, topUpView } from './views.js';

export interface AdjustOptions {
  /** The approved four-eyes proposal this adjustment carries out (adjustmentProposals.ts); none: a direct one. */
  approvedProposal?: string;
}

export interface LedgerServiceOptions {
  store: EventStore;
  clock: () => Date;
  gateway?: PaymentsGateway;
  logger?: Logger;
  /** Tuning of the command handler (retries, cache size, queue bound). */
  handler?: Omit<CommandHandlerOptions, 'store' | 'clock'>;
  /**
   * Onboarding return/refresh URLs for tenants that have not set payoutOnboardingReturnUrl/RefreshUrl
   * (the embedded default: the app's own start page). Omitted: such tenants get invalid_state.
   */
  onboardingFallbackUrls?: () => { returnUrl: string; refreshUrl: string } | null;
  /** Retries of payouts waiting for Stripe funds; DEFAULT_PAYOUT_RETRY when omitted. */
  payoutRetry?: PayoutRetryOptions;
}

/** Gateway failures that retrying the same request can never fix. */
const PERMANENT_GATEWAY_CODES = new Set(['card_declined', 'insufficient_funds', 'invalid_request']);

/** Stripe's available balance cannot cover a transfer or payout yet: wait and try again, never fail. */
function isBalanceInsufficient(error: unknown): error is GatewayError {
  return error instanceof GatewayError && error.stripeCode === 'balance_insufficient';
}

/** How a payout waiting for Stripe funds is retried (LedgerServiceOptions.payoutRetry). */
export interface PayoutRetryOptions {
  /** First delay after a refusal; doubled per attempt. */
  baseDelayMs: number;
  /** Longest delay between two attempts. */
  maxDelayMs: number;
  /** A payout not transferred this long after it was requested fails (reported, hold released). */
  maxWaitMs: number;
}

/** 15 minutes doubling to 6 hours; card funds settle in days, so give up after 10 days. */
export const DEFAULT_PAYOUT_RETRY: PayoutRetryOptions = {
  baseDelayMs: 15 * 60_000,
  maxDelayMs: 6 * 3_600_000,
  maxWaitMs: 10 * 86_400_000,
};

/**
 * The write side (LedgerCommands) over the event store and the domain deciders. Multi-stream flows run
 * their steps in the order docs/ledger-flows.md gives (the stream that can refuse goes first: the
 * wallet for bookings, the booking for completion/cancel/refund, the tutor for payouts); each later step
 * derives its event ids from the event that triggered it, so the process managers can finish a flow a
 * crashed request left halfway and a repeat appends nothing.
 */
export class LedgerService implements LedgerCommands {
  readonly handler: CommandHandler;
  readonly steps: FlowSteps;
  readonly dueTasks: DueTaskRunner;
  readonly subscriptions: SubscriptionService;
  readonly referrals: ReferralService;
  readonly store: EventStore;
  private readonly clock: () => Date;
  private readonly gateway: PaymentsGateway | undefined;
  private readonly logger: Logger;
  private readonly onboardingFallbackUrls: LedgerServiceOptions['onboardingFallbackUrls'];
  private readonly payoutRetry: PayoutRetryOptions;

  constructor(options: LedgerServiceOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.gateway = options.gateway;
    this.logger = options.logger ?? silentLogger;
    this.onboardingFallbackUrls = options.onboardingFallbackUrls;
    this.payoutRetry = options.payoutRetry ?? DEFAULT_PAYOUT_RETRY;
    this.handler = new CommandHandler({ ...options.handler, store: options.store, clock: options.clock });
    this.steps = new FlowSteps(this.handler, options.store);
    this.subscriptions = new SubscriptionService(this.handler, this.steps, options.clock);
    this.referrals = new ReferralService(this.handler, this.steps, options.clock);
    this.dueTasks = new DueTaskRunner({
      subscriptions: this.subscriptions,
      store: options.store,
      handler: this.handler,
      steps: this.steps,
      resubmitPayout: (tenantId, payoutId, now) => this.resubmitPayout(tenantId, payoutId, now),
    });
  }

  private now(): string {
    return this.clock().toISOString();
  }

  // ------------------------------------------------------------------------------------------------
  // Top-ups

  async initiateTopUp(
    ctx: CommandContext,
    input: { topUpId: string; studentId: string; amount: Money; paymentMethod?: string },
  ): Promise<CommandResult & { topUp: TopUpView }> {
    checkContext(ctx);
    const topUpId = requireEntityId(input.topUpId, 'topUpId');
    const studentId = requireEntityId(input.studentId, 'studentId');
    const settings = await this.steps.settingsAsOf(ctx.tenantId);
    const amount = parseMoney(input.amount, { allowedCurrencies: settings.allowedCurrencies });
    const stream = topUpStream(ctx.tenantId, topUpId);
    let result: HandleResult<ReturnType<typeof topUpDecider.initialState>> = await this.runCommand(
      ctx,
      topUpDecider,
      stream,
      {
        type: 'InitiateTopUp',
        topUpId,
        studentId,
        amount: amount.amount,
        currency: amount.currency,
        limits: {
          topUpMin: settings.topUpMin,
          topUpMax: settings.topUpMax,
          allowedCurrencies: settings.allowedCurrencies,
        },
        initiatedAt: this.now(),
      },
      { op: 'initiateTopUp', input },
    );
    let position = result.position;
    if (this.gateway && result.state.status === 'initiated' && result.state.paymentIntentId === null) {
      let intent: Awaited<ReturnType<PaymentsGateway['createPaymentIntent']>>;
      try {
        intent = await this.gateway.createPaymentIntent({
          idempotencyKey: `topup-${ctx.tenantId}-${topUpId}`,
          amount: amount.amount,
          currency: amount.currency,
          ...(input.paymentMethod ? { paymentMethod: input.paymentMethod } : {}),
          metadata: { tenantId: ctx.tenantId, topUpId, studentId },
        });
      } catch (error) {
        if (!(error instanceof GatewayError) || !PERMANENT_GATEWAY_CODES.has(error.code)) throw error;
        // Stripe answers every retry of a key with the key's first response and the key is the
        // top-up's, so once intent creation is refused no intent of this top-up can succeed: the webhook
        // can only have failed it, which the decider takes as a no-op. A refusal meeting a succeeded
        // top-up (possible only after Stripe forgets a key, 24 h on) contradicts the record, so it is
        // answered invalid_state rather than reported as a success this request did not see.
        const failed = await this.runCommand(
          ctx,
          topUpDecider,
          stream,
          {
            type: 'FailTopUp',
            paymentIntentId: null,
            reason: `${error.code}: ${error.message}`,
            failedAt: this.now(),
          },
          { op: 'failTopUp', code: error.code },
        );
        return { position: failed.position, topUp: topUpView(failed.state) };
      }
      if (intent.clientSecret) {
        // The webhook may have settled the top-up with this intent already: the decider then appends nothing.
        result = await this.runCommand(
          ctx,
          topUpDecider,
          stream,
          {
            type: 'RecordTopUpPaymentIntent',
            paymentIntentId: intent.paymentIntentId,
            clientSecret: intent.clientSecret,
          },
          { op: 'recordPaymentIntent', id: intent.paymentIntentId },
        );
        position = result.position;
      }
      const derived = (what: string): CommandContext => ({
        ...ctx,
        idempotencyKey: `${what}:${intent.paymentIntentId}`,
        causationId: intent.paymentIntentId,
      });
      if (intent.status === 'succeeded') {
        position = (
          await this.succeedTopUp(derived('pi-succeeded'), {
            topUpId,
            paymentIntentId: intent.paymentIntentId,
            amountReceived: intent.amountReceived,
            currency: amount.currency,
          })
        ).position;
      } else if (
        intent.status === 'canceled' ||
        (intent.lastError && intent.status === 'requires_payment_method')
      ) {
        position = (
          await this.failTopUp(derived('pi-failed'), {
            topUpId,
            paymentIntentId: intent.paymentIntentId,
            reason: intent.lastError ?? 'payment canceled',
          })
        ).position;
      }
      result = { ...result, state: (await this.handler.load(topUpDecider, stream)).state };
    }
    return { position, topUp: topUpView(result.state) };
  }

  async succeedTopUp(
    ctx: CommandContext,
    input: { topUpId: string; paymentIntentId: string; amountReceived: number; currency: string },
  ): Promise<CommandResult> {
    checkContext(ctx);
    const topUpId = requireEntityId(input.topUpId, 'topUpId');
    const stream = topUpStream(ctx.tenantId, topUpId);
    const current = await this.handler.load(topUpDecider, stream);
    if (current.state.status === 'succeeded' && current.state.paymentIntentId === input.paymentIntentId) {
      // The same success reported again (webhook retry, or the synchronous confirmation came first):
      // make sure the wallet was credited, append nothing else.
      const succeeded = await this.steps.findEvent(stream, 'TopUpSucceeded');
      return { position: (await this.steps.creditWalletAfterTopUp(succeeded)).position };
    }
    if (!ctx.clientMetadata && current.state.status !== 'none') {
      // Stripe's webhook knows nothing of the caller's metadata: the success (and the wallet credit it
      // triggers) carries the metadata the top-up was started with, as the synchronous path does.
      const initiated = await this.steps.findEvent(stream, 'TopUpInitiated');
      const clientMetadata = initiated.metadata.clientMetadata;
      if (clientMetadata) ctx = { ...ctx, clientMetadata };
    }
    const result = await this.runCommand(
      ctx,
      topUpDecider,
      stream,
      {
        type: 'SucceedTopUp',
        paymentIntentId: input.paymentIntentId,
        amountReceived: input.amountReceived,
        currency: input.currency,
        succeededAt: this.now(),
      },
      { op: 'succeedTopUp', input },
    );
    const credited = await this.steps.creditWalletAfterTopUp(triggerOf(result, 'TopUpSucceeded'));
    return { position: credited.position };
  }

  async failTopUp(
    ctx: CommandContext,
    input: { topUpId: string; paymentIntentId: string; reason: string },
  ): Promise<CommandResult> {
    checkContext(ctx);
    const topUpId = requireEntityId(input.topUpId, 'topUpId');
    const stream = topUpStream(ctx.tenantId, topUpId);
    const current = await this.handler.load(topUpDecider, stream);
    if (current.state.status === 'failed') return { position: await this.lastPosition(stream) };
    const result = await this.runCommand(
      ctx,
      topUpDecider,
      stream,
      {
        type: 'FailTopUp',
        paymentIntentId: input.paymentIntentId,
        reason: input.reason,
        failedAt: this.now(),
      },
      { op: 'failTopUp', input },
    );
    return { position: result.position };
  }

  async refundTopUpToCard(
    ctx: CommandContext,
    input: { topUpId: string; stripeRefundId: string; amount: number; currency: string },
  ): Promise<CommandResult> {
    checkContext(ctx);
    const topUpId = requireEntityId(input.topUpId, 'topUpId');
    const topUp = await this.handler.load(topUpDecider, topUpStream(ctx.tenantId, topUpId));
    if (topUp.state.status !== 'succeeded' || !topUp.state.studentId) {
      throw new DomainError('invalid_state', `top-up ${topUpId} is ${topUp.state.status}, not succeeded`, {
        status: topUp.state.status,
      });
    }
    const studentId = topUp.state.studentId;
    const result = await this.runCommand(
      ctx,
      walletDecider,
      walletStream(ctx.tenantId, studentId),
      {
        type: 'RefundWalletToCard',
        studentId,
        topUpId,
        stripeRefundId: input.stripeRefundId,
        amount: input.amount,
        currency: input.currency,
        entryId: entryIdFor(ctx, 'RefundWalletToCard'),
      },
      { op: 'refundTopUpToCard', input },
    );
    const trigger = triggerOf(result, 'WalletRefundedToCard');
    await this.steps.recordCardRefundAfterWalletRefund(trigger);
    return { position: await this.lastPosition(topUpStream(ctx.tenantId, topUpId), result.position) };
  }

  async reverseFailedCardRefund(
    ctx: CommandContext,
    input: {
      topUpId: string;
      stripeRefundId: string;
      amount: number;
      currency: string;
      failureReason: string;
    },
  ): Promise<CommandResult> {
    checkContext(ctx);
    const topUpId = requireEntityId(input.topUpId, 'topUpId');
    const stripeRefundId = requireText(input.stripeRefundId, 'stripeRefundId', 255);
    const topUp = await this.handler.load(topUpDecider, topUpStream(ctx.tenantId, topUpId));
    if (topUp.state.status !== 'succeeded' || !topUp.state.studentId) {
      throw new DomainError('invalid_state', `top-up ${topUpId} is ${topUp.state.status}, not succeeded`, {
        status: topUp.state.status,
      });
    }
    const studentId = topUp.state.studentId;
    const stream = walletStream(ctx.tenantId, studentId);
    const wallet = await this.handler.load(walletDecider, stream);
    if (!wallet.state.cardRefunds.get(stripeRefundId)) {
      // The failure arrived before the refund (reordered deliveries, or a refund that went from pending
      // straight to failed, which the ledger never books): Stripe took the refund from the balance and
      // gave it back, so the ledger books both, the refund first. The refund's own deliveries, when they
      // come, find it applied and change nothing. Keyed by the refund, so every failure delivery that
      // gets here books it once.
      await this.refundTopUpToCard(
        { ...ctx, idempotencyKey: `card-refund-before-failure:${stripeRefundId}` },
        { topUpId, stripeRefundId, amount: input.amount, currency: input.currency },
      ).catch((error: unknown) => {
        // Booked meanwhile by the refund's own delivery: the reversal below applies to that one.
        const applied =
          error instanceof DomainError &&
          error.code === 'invalid_state' &&
          error.details.stripeRefundId === stripeRefundId;
        if (!applied) throw error;
      });
    }
    const result = await this.runCommand(
      ctx,
      walletDecider,
      stream,
      {
        type: 'ReverseFailedCardRefund',
        studentId,
        topUpId,
        stripeRefundId,
        amount: input.amount,
        currency: input.currency,
        failureReason: input.failureReason,
        entryId: entryIdFor(ctx, 'ReverseFailedCardRefund'),
      },
      { op: 'reverseFailedCardRefund', input },
    );
    const trigger = triggerOf(result, 'WalletCardRefundFailed');
    await this.steps.recordCardRefundFailureAfterReversal(trigger);
    return { position: await this.lastPosition(topUpStream(ctx.tenantId, topUpId), result.position) };
  }

  // ------------------------------------------------------------------------------------------------
  // Bookings

  async placeBooking(
    ctx: CommandContext,
    input: {
      bookingId: string;
      studentId: string;
      tutorId: string;
      price: Money;
      scheduledAt: string;
      promoCode?: string;
    },
  ): Promise<CommandResult & { booking: BookingView }> {
    checkContext(ctx);
    const t = ctx.tenantId;
    const bookingId = requireEntityId(input.bookingId, 'bookingId');
    const studentId = requireEntityId(input.studentId, 'studentId');
    const tutorId = requireEntityId(input.tutorId, 'tutorId');
    // Independent reads, one round trip of waiting instead of two.
    const [settings, policy, existing] = await Promise.all([
      this.steps.settingsAsOf(t),
      this.steps.policyAsOf(t),
      this.handler.load(bookingDecider, bookingStream(t, bookingId)),
    ]);
    const price = parseMoney(input.price, { field: 'price', allowedCurrencies: settings.allowedCurrencies });
    const holdId = bookingHoldId(t, bookingId);
    // A promo code is checked against the code's state now (a refusal appends nothing); its reservation
    // is the step after the hold, decided against the code's own stream (promoCodeSteps.ts).
    const promo =
      input.promoCode === undefined
        ? null
        : await priceWithPromoCode(this.handler, t, input.promoCode, {
            purchase: { kind: 'booking', id: bookingId },
            studentId,
            listPrice: price.amount,
            currency: price.currency,
            now: this.now(),
          });
    const discounts = promo ? [promo.discount] : undefined;
    if (existing.state.status === 'none') {
      // Dry run on the booking decider first: a hold is never placed for a booking that cannot exist.
      bookingDecider.decide(
        {
          type: 'PlaceBooking',
          bookingId,
          studentId,
          tutorId,
          price: price.amount,
          currency: price.currency,
          scheduledAt: input.scheduledAt,
          ...(discounts ? { discounts } : {}),
          holdId,
          policy,
          placedAt: this.now(),
        },
        existing.state,
      );
    } else if (existing.state.studentId !== studentId || existing.state.tutorId !== tutorId) {
      throw new DomainError('invalid_state', `booking ${bookingId} already exists`, { bookingId });
    }
    const hold = await this.runCommand(
      ctx,
      walletDecider,
      walletStream(t, studentId),
      {
        type: 'PlaceWalletHold',
        studentId,
        holdId,
        bookingId,
        tutorId,
        amount: payableAfter(price.amount, discounts),
        currency: price.currency,
        scheduledAt: input.scheduledAt,
        placedAt: this.now(),
        timeZone: settings.timeZone,
        ...(discounts ? { pricing: { listPrice: price.amount, discounts } } : {}),
        ...(promo?.firstPurchaseOnly ? { firstPurchaseOnly: { code: promo.discount.reference } } : {}),
        entryId: entryIdFor(ctx, 'PlaceWalletHold'),
      },
      { op: 'placeBooking', input },
    );
    const placed = await this.steps.placeBookingAfterHold(triggerOf(hold, 'WalletHoldPlaced'));
    return { position: placed.position, booking: bookingView(placed.state) };
  }

  async completeBooking(
    ctx: CommandContext,
    input: { bookingId: string },
  ): Promise<CommandResult & { booking: BookingView }> {
    checkContext(ctx);
    const bookingId = requireEntityId(input.bookingId, 'bookingId');
    const result = await this.runCommand(
      ctx,
      bookingDecider,
      bookingStream(ctx.tenantId, bookingId),
      { type: 'CompleteBooking', completedAt: this.now() },
      { op: 'completeBooking', input },
    );
    const captured = await this.steps.captureAfterCompletion(triggerOf(result, 'BookingCompleted'));
    const recorded = await this.steps.recordEarningsAfterResolution(captured);
    const referral = await this.referrals.qualifyAfterCapture(captured);
    return { position: referral ?? (recorded ?? captured).position, booking: bookingView(result.state) };
  }

  async cancelBooking(
    ctx: CommandContext,
    input: { bookingId: string; reason: string },
  ): Promise<CommandResult & { booking: BookingView }> {
    checkContext(ctx);
    const bookingId = requireEntityId(input.bookingId, 'bookingId');
    const result = await this.runCommand(
      ctx,
      bookingDecider,
      bookingStream(ctx.tenantId, bookingId),
      { type: 'CancelBooking', reason: input.reason, cancelledAt: this.now() },
      { op: 'cancelBooking', input },
    );
    const released = await this.steps.releaseAfterBookingEnded(triggerOf(result, 'BookingCancelled'));
    const recorded = await this.steps.recordEarningsAfterResolution(released);
    return { position: (recorded ?? released).position, booking: bookingView(result.state) };
  }

  async refundBooking(
    ctx: CommandContext,
    input: { bookingId: string; amount?: number; reason: string },
  ): Promise<CommandResult & { booking: BookingView; refundId: string }> {
    checkContext(ctx);
    const bookingId = requireEntityId(input.bookingId, 'bookingId');
    const refundId = deterministicId('refund', ctx.tenantId, bookingId, ctx.idempotencyKey);
    const result = await this.runCommand(
      ctx,
      bookingDecider,
      bookingStream(ctx.tenantId, bookingId),
      {
        type: 'RefundBooking',
        refundId,
        amount: input.amount ?? null,
        reason: input.reason,
        refundedAt: this.now(),
      },
      { op: 'refundBooking', input },
    );
    const refunded = await this.steps.refundWalletAfterBookingRefund(triggerOf(result, 'BookingRefunded'));
    const reversed = await this.steps.reverseEarningsAfterWalletRefund(refunded);
    const clawedBack = await this.referrals.clawBackAfterRefund(triggerOf(result, 'BookingRefunded'));
    return {
      position: clawedBack ?? (reversed ?? refunded).position,
      booking: bookingView(result.state),
      refundId,
    };
  }

  // ------------------------------------------------------------------------------------------------
  // Tutor payout accounts

  async openPayoutAccount(
    ctx: CommandContext,
    input: { tutorId: string },
  ): Promise<CommandResult & { account: PayoutAccountView; onboarding: PayoutOnboardingLink | null }> {
    checkContext(ctx);
    const t = ctx.tenantId;
    const tutorId = requireEntityId(input.tutorId, 'tutorId');
    const gateway = this.requireGateway('payout accounts');
    const settings = await this.steps.settingsAsOf(t);
    // Checked first: an unconfigured tenant gets its 422 before anything is created at Stripe.
    const urls = this.onboardingUrls(settings);
    const stream = tutorStream(t, tutorId);
    let { state } = await this.handler.load(tutorDecider, stream);
    let position = await this.lastPosition(stream);
    if (state.payoutAccount === null) {
      // Created once. The key collapses concurrent and retried creations while Stripe keeps it (24 h);
      // from the moment the id is in the tutor's stream it is the only account this tutor ever uses.
      const created = await gateway.createConnectedAccount({
        idempotencyKey: `acct-${t}-${tutorId}`,
        tenantId: t,
        tutorId,
      });
      try {
        const opened = await this.handler.handle(
          tutorDecider,
          stream,
          { type: 'OpenPayoutAccount', tutorId, account: created, openedAt: this.now() },
          { ...ctx, idempotencyKey: `payout-account:${created.stripeAccountId}` },
          { commandType: 'OpenPayoutAccount', payloadHash: created.stripeAccountId },
        );
        state = opened.state;
        position = opened.position;
      } catch (error) {
        // Another request recorded a different account first (possible only when a creation was retried
        // after Stripe forgot its key): the recorded one is the tutor's; this one stays unused at Stripe.
        if (!(error instanceof DomainError) || error.code !== 'invalid_state') throw error;
        this.logger.warn(
          { tenantId: t, tutorId, unused: created.stripeAccountId, err: error.message },
          'a second Express account was created for a tutor and is not used',
        );
        state = (await this.handler.load(tutorDecider, stream)).state;
      }
    }
    const account = state.payoutAccount;
    if (account === null) throw new Error(`tutor ${tutorId}: payout account not recorded`);
    const onboarding =
      account.payoutsEnabled && account.currentlyDue.length === 0 && account.pastDue.length === 0
        ? null
        : await gateway.createAccountLink({ accountId: account.stripeAccountId, ...urls });
    return {
      position,
      account: payoutAccountView(tutorId, account),
      onboarding: onboarding
        ? { url: onboarding.url, expiresAt: new Date(onboarding.expiresAt * 1000).toISOString() }
        : null,
    };
  }

  async getPayoutAccount(tenantId: string, tutorId: string): Promise<PayoutAccountView | null> {
    if (!isTenantId(tenantId)) throw new DomainError('validation_failed', 'invalid tenant id');
    const id = requireEntityId(tutorId, 'tutorId');
    const { state } = await this.handler.load(tutorDecider, tutorStream(tenantId, id));
    return state.payoutAccount ? payoutAccountView(id, state.payoutAccount) : null;
  }

  async syncPayoutAccount(
    ctx: CommandContext,
    input: { tutorId: string; account: PayoutAccountSnapshot },
  ): Promise<CommandResult> {
    checkContext(ctx);
    const tutorId = requireEntityId(input.tutorId, 'tutorId');
    const result = await this.handler.handle(
      tutorDecider,
      tutorStream(ctx.tenantId, tutorId),
      { type: 'UpdatePayoutAccount', tutorId, account: input.account, updatedAt: this.now() },
      ctx,
      // The key names the fact (one Stripe event, one refresh); what Stripe said then is that fact.
      { commandType: 'UpdatePayoutAccount', payloadHash: ctx.idempotencyKey },
    );
    return { position: result.position };
  }

  private onboardingUrls(settings: TenantSettings): { returnUrl: string; refreshUrl: string } {
    const fallback = this.onboardingFallbackUrls?.() ?? null;
    const returnUrl = settings.payoutOnboardingReturnUrl ?? fallback?.returnUrl ?? null;
    const refreshUrl = settings.payoutOnboardingRefreshUrl ?? fallback?.refreshUrl ?? null;
    if (returnUrl === null || refreshUrl === null) {
      throw new DomainError(
        'invalid_state',
        'set payoutOnboardingReturnUrl and payoutOnboardingRefreshUrl in the tenant settings (PUT /v1/tenant/settings): Stripe sends the tutor back there',
        { fields: ['payoutOnboardingReturnUrl', 'payoutOnboardingRefreshUrl'] },
      );
    }
    return { returnUrl, refreshUrl };
  }

  private requireGateway(what: string): PaymentsGateway {
    if (!this.gateway) throw new DomainError('invalid_state', `${what} need Stripe, which is not configured`);
    return this.gateway;
  }

  /**
   * Before refusing a payout for an account the stream says is not ready, ask Stripe once: the
   * account.updated webhook may still be on its way. What Stripe says is recorded (the same command
   * the webhook would run), so the decision below is made on the stream, as always.
   */
  private async refreshPayoutAccountIfNotReady(ctx: CommandContext, tutorId: string): Promise<void> {
    if (!this.gateway) return;
    const stream = tutorStream(ctx.tenantId, tutorId);
    const account = (await this.handler.load(tutorDecider, stream)).state.payoutAccount;
    if (account === null || payoutAccountMissing(account).length === 0) return;
    const current = await this.gateway.retrieveConnectedAccount(account.stripeAccountId);
    await this.syncPayoutAccount(
      { ...ctx, idempotencyKey: `payout-account-refresh:${ctx.idempotencyKey}` },
      { tutorId, account: current },
    );
  }

  // ------------------------------------------------------------------------------------------------
  // Payouts

  async requestPayout(
    ctx: CommandContext,
    input: { payoutId: string; tutorId: string; amount: Money },
  ): Promise<CommandResult & { payout: PayoutView }> {
    checkContext(ctx);
    const t = ctx.tenantId;
    const payoutId = requireEntityId(input.payoutId, 'payoutId');
    const tutorId = requireEntityId(input.tutorId, 'tutorId');
    const settings = await this.steps.settingsAsOf(t);
    const amount = parseMoney(input.amount, { allowedCurrencies: settings.allowedCurrencies });
    const existing = await this.handler.load(payoutDecider, payoutStream(t, payoutId));
    if (existing.state.status !== 'none' && existing.state.tutorId !== tutorId) {
      throw new DomainError('invalid_state', `payout ${payoutId} already exists`, { payoutId });
    }
    if (existing.state.status === 'none') await this.refreshPayoutAccountIfNotReady(ctx, tutorId);
    const hold = await this.runCommand(
      ctx,
      tutorDecider,
      tutorStream(t, tutorId),
      {
        type: 'PlacePayoutHold',
        tutorId,
        payoutId,
        holdId: payoutHoldId(t, payoutId),
        amount: amount.amount,
        currency: amount.currency,
        payoutMin: settings.payoutMin,
        requireReadyPayoutAccount: this.gateway !== undefined,
        entryId: entryIdFor(ctx, 'PlacePayoutHold'),
      },
      { op: 'requestPayout', input },
    );
    const requested = await this.steps.requestPayoutAfterHold(triggerOf(hold, 'TutorPayoutHoldPlaced'));
    return { position: requested.position, payout: payoutView(requested.state) };
  }

  async markPayoutPaid(
    ctx: CommandContext,
    input: { payoutId: string; stripeTransferId?: string; stripePayoutId?: string },
  ): Promise<CommandResult> {
    checkContext(ctx);
    const payoutId = requireEntityId(input.payoutId, 'payoutId');
    const payout = await this.requireOpenOrClosedPayout(ctx.tenantId, payoutId, 'paid');
    if (payout === 'done') return { position: await this.lastPosition(payoutStream(ctx.tenantId, payoutId)) };
    const result = await this.runCommand(
      ctx,
      tutorDecider,
      tutorStream(ctx.tenantId, payout.tutorId),
      {
        type: 'PostPayoutHold',
        tutorId: payout.tutorId,
        payoutId,
        entryId: entryIdFor(ctx, 'PostPayoutHold'),
      },
      { op: 'markPayoutPaid', input },
    );
    const closed = await this.steps.closePayoutAfterHoldResolved(triggerOf(result, 'TutorPayoutHoldPosted'), {
      stripeTransferId: input.stripeTransferId ?? null,
      stripePayoutId: input.stripePayoutId ?? null,
    });
    return { position: closed?.position ?? result.position };
  }

  async markPayoutFailed(
    ctx: CommandContext,
    input: { payoutId: string; reason: string; failureCode?: string },
  ): Promise<CommandResult> {
    checkContext(ctx);
    const payoutId = requireEntityId(input.payoutId, 'payoutId');
    const reason = requireText(input.reason, 'reason');
    if (input.failureCode !== undefined) {
      const { state } = await this.handler.load(payoutDecider, payoutStream(ctx.tenantId, payoutId));
      if (state.status === 'paid' && state.tutorId) {
        // Failed after paid (docs/ledger-flows.md): the tutor stream reverses the posted payout, then
        // the payout stream records PayoutFailed after PayoutPaid (the process manager finishes it).
        const reversed = await this.runCommand(
          ctx,
          tutorDecider,
          tutorStream(ctx.tenantId, state.tutorId),
          {
            type: 'ReversePayout',
            tutorId: state.tutorId,
            payoutId,
            failureCode: input.failureCode,
            entryId: entryIdFor(ctx, 'ReversePayout'),
          },
          { op: 'reversePayout', input },
        );
        const closed = await this.steps.failPaidPayoutAfterReversal(
          triggerOf(reversed, 'TutorPayoutReversed'),
        );
        return { position: closed?.position ?? reversed.position };
      }
    }
    const payout = await this.requireOpenOrClosedPayout(ctx.tenantId, payoutId, 'failed');
    if (payout === 'done') return { position: await this.lastPosition(payoutStream(ctx.tenantId, payoutId)) };
    const result = await this.runCommand(
      ctx,
      tutorDecider,
      tutorStream(ctx.tenantId, payout.tutorId),
      {
        type: 'ReleasePayoutHold',
        tutorId: payout.tutorId,
        payoutId,
        reason,
        entryId: entryIdFor(ctx, 'ReleasePayoutHold'),
      },
      { op: 'markPayoutFailed', input: { payoutId: input.payoutId, reason: input.reason } },
    );
    const closed = await this.steps.closePayoutAfterHoldResolved(
      triggerOf(result, 'TutorPayoutHoldReleased'),
    );
    return { position: closed?.position ?? result.position };
  }

  /**
   * Paid and failed are final. The same outcome reported again is a no-op (webhooks repeat); the other
   * outcome is an invalid_state rejection.
   */
  private async requireOpenOrClosedPayout(
    t: string,
    payoutId: string,
    outcome: 'paid' | 'failed',
  ): Promise<{ tutorId: string } | 'done'> {
    const { state } = await this.handler.load(payoutDecider, payoutStream(t, payoutId));
    if (state.status === 'none' || !state.tutorId) {
      throw new DomainError('not_found', `payout ${payoutId} not found`, { payoutId });
    }
    if (state.status === outcome) return 'done';
    if (state.status !== 'requested' && state.status !== 'submitted') {
      throw new DomainError('invalid_state', `payout ${payoutId} is already ${state.status}`, {
        status: state.status,
      });
    }
    return { tutorId: state.tutorId };
  }

  /**
   * PayoutRequested -> Stripe transfer + payout -> PayoutSubmitted. Run by the process manager, never
   * inside an HTTP request. Idempotency keys derive from the payout id and the attempt, so a retried step
   * never pays twice.
   */
  async submitPayout(trigger: Trigger<'PayoutRequested'>): Promise<void> {
    await this.submitPayoutAttempt(trigger.tenantId, trigger.data.payoutId, this.clock().getTime());
  }

  /**
   * The next attempt of a payout whose submission waits for Stripe funds (the scheduler runs it at the
   * deferral's retryAt). False when there is nothing to do (submitted, settled, or not due yet).
   */
  async resubmitPayout(tenantId: string, payoutId: string, now: Date): Promise<boolean> {
    const { state } = await this.handler.load(payoutDecider, payoutStream(tenantId, payoutId));
    if (state.status !== 'requested' || state.deferrals === 0) return false;
    return this.submitPayoutAttempt(tenantId, payoutId, now.getTime());
  }

  /**
   * One attempt at submitting a payout. Attempt n uses keys of its own (attempt 0 the payout's original
   * `transfer-{t}-{payoutId}` / `payout-{t}-{payoutId}`, later ones a `-retry{n}` suffix): Stripe keeps a
   * `balance_insufficient` refusal under its key and would replay it for 24 h, and a new attempt is made
   * only after the previous one was refused and recorded as refused (PayoutSubmissionDeferred), so no
   * attempt can repeat a transfer or payout an earlier one made. A retry of the same attempt (a crash, a
   * lost answer) reuses its keys within minutes, far inside Stripe's 24 hours.
   */
  private async submitPayoutAttempt(t: string, payoutId: string, nowMs: number): Promise<boolean> {
    if (!this.gateway) return false;
    const stream = payoutStream(t, payoutId);
    const { state } = await this.handler.load(payoutDecider, stream);
    if (state.status !== 'requested' || !state.tutorId || !state.currency) return false;
    // Deferred: the scheduler makes the next attempt when it is due, not a process manager replaying.
    if (state.retryAt !== null && Date.parse(state.retryAt) > nowMs) return false;
    const requested = await this.steps.findEvent(stream, 'PayoutRequested');
    const attempt = state.deferrals;
    const attemptKey = attempt === 0 ? requested.id : `${requested.id}:${attempt}`;
    const suffix = attempt === 0 ? '' : `-retry${attempt}`;
    const ctx: CommandContext = {
      tenantId: t,
      actor: { id: 'process-manager', role: 'service' },
      idempotencyKey: `submit-payout:${attemptKey}`,
      correlationId: requested.metadata.correlationId,
      causationId: requested.id,
    };
    const metadata = { tenantId: t, payoutId, tutorId: state.tutorId };
    try {
      const account = await this.payoutAccountFor(ctx, state.tutorId);
      const missing = payoutAccountMissing(account);
      if (missing.length > 0) {
        throw new GatewayError(
          'invalid_request',
          `payout_account_not_ready: tutor ${state.tutorId}'s account ${account.stripeAccountId} cannot take payouts (${missing.join(', ')})`,
        );
      }
      const accountId = account.stripeAccountId;
      let transferId = state.stripeTransferId;
      if (transferId === null) {
        try {
          transferId = (
            await this.gateway.createTransfer({
              idempotencyKey: `transfer-${t}-${payoutId}${suffix}`,
              amount: state.amount,
              currency: state.currency,
              destinationAccountId: accountId,
              metadata,
            })
          ).transferId;
        } catch (error) {
          if (!isBalanceInsufficient(error)) throw error;
          await this.deferSubmission(ctx, state, attempt, error, null, nowMs);
          return true;
        }
      }
      let stripePayoutId: string;
      try {
        stripePayoutId = (
          await this.gateway.createPayout({
            idempotencyKey: `payout-${t}-${payoutId}${suffix}`,
            amount: state.amount,
            currency: state.currency,
            connectedAccountId: accountId,
            metadata,
          })
        ).payoutId;
      } catch (error) {
        // The transfer went through; its funds are still pending on the tutor's account.
        if (!isBalanceInsufficient(error)) throw error;
        await this.deferSubmission(ctx, state, attempt, error, transferId, nowMs);
        return true;
      }
      await this.handler.handle(
        payoutDecider,
        stream,
        { type: 'SubmitPayout', stripeTransferId: transferId, stripePayoutId, submittedAt: this.now() },
        ctx,
        { commandType: 'SubmitPayout', payloadHash: ctx.idempotencyKey },
      );
      return true;
    } catch (error) {
      if (!(error instanceof GatewayError) || !PERMANENT_GATEWAY_CODES.has(error.code)) throw error;
      this.logger.warn(
        { tenantId: t, payoutId, code: error.code, err: error.message },
        'payout refused by Stripe',
      );
      await this.markPayoutFailed(
        { ...ctx, idempotencyKey: `payout-refused:${attemptKey}` },
        { payoutId, reason: `stripe ${error.code}: ${error.message}` },
      );
      return true;
    }
  }

  /**
   * Stripe's available balance cannot cover a step yet (card funds are pending for days): record the
   * refusal and when to try again (exponential backoff, capped), loudly. A payout whose transfer never
   * happened and that waited longer than payoutRetry.maxWaitMs fails instead (PayoutFailed with the
   * reason, the tutor's hold released): reported, never silent. Once the transfer went through the
   * money is on the tutor's account, so the payout keeps waiting for it there.
   */
  private async deferSubmission(
    ctx: CommandContext,
    state: PayoutState,
    attempt: number,
    error: GatewayError,
    stripeTransferId: string | null,
    nowMs: number,
  ): Promise<void> {
    const payoutId = state.payoutId!;
    const { baseDelayMs, maxDelayMs, maxWaitMs } = this.payoutRetry;
    const waitedMs = nowMs - Date.parse(state.requestedAt ?? new Date(nowMs).toISOString());
    const log = { tenantId: ctx.tenantId, payoutId, attempt, code: error.stripeCode, err: error.message };
    if (stripeTransferId === null && (waitedMs >= maxWaitMs || attempt >= MAX_SUBMISSION_ATTEMPTS - 1)) {
      this.logger.error(log, 'payout failed: Stripe funds did not become available in time');
      await this.markPayoutFailed(
        { ...ctx, idempotencyKey: `payout-refused:${ctx.idempotencyKey}` },
        {
          payoutId,
          reason: `stripe balance_insufficient: the platform's available balance did not cover the payout within ${Math.round(maxWaitMs / 3_600_000)} h (${attempt + 1} attempts): ${error.message}`,
        },
      );
      return;
    }
    const delayMs = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt, 30));
    const retryAt = new Date(nowMs + delayMs).toISOString();
    this.logger.warn(
      { ...log, retryAt },
      'payout waits for Stripe funds (balance_insufficient): retried later',
    );
    await this.handler.handle(
      payoutDecider,
      payoutStream(ctx.tenantId, payoutId),
      {
        type: 'DeferPayoutSubmission',
        attempt,
        code: error.stripeCode ?? 'balance_insufficient',
        message: error.message.slice(0, 500) || 'balance_insufficient',
        stripeTransferId,
        retryAt,
        deferredAt: new Date(nowMs).toISOString(),
      },
      { ...ctx, idempotencyKey: `${ctx.idempotencyKey}:deferred` },
      { commandType: 'DeferPayoutSubmission', payloadHash: `${ctx.idempotencyKey}:deferred` },
    );
  }

  /**
   * The tutor's recorded account for a payout being submitted. A payout requested before payout accounts
   * were recorded (or without Stripe, settled later with it) has none: the account is created and
   * recorded now, once, exactly as openPayoutAccount does.
   */
  private async payoutAccountFor(ctx: CommandContext, tutorId: string): Promise<PayoutAccountSnapshot> {
    const gateway = this.requireGateway('payouts');
    const stream = tutorStream(ctx.tenantId, tutorId);
    const recorded = (await this.handler.load(tutorDecider, stream)).state.payoutAccount;
    if (recorded !== null) return recorded;
    const created = await gateway.createConnectedAccount({
      idempotencyKey: `acct-${ctx.tenantId}-${tutorId}`,
      tenantId: ctx.tenantId,
      tutorId,
    });
    await this.handler
      .handle(
        tutorDecider,
        stream,
        { type: 'OpenPayoutAccount', tutorId, account: created, openedAt: this.now() },
        { ...ctx, idempotencyKey: `payout-account:${created.stripeAccountId}` },
        { commandType: 'OpenPayoutAccount', payloadHash: created.stripeAccountId },
      )
      .catch((error: unknown) => {
        if (!(error instanceof DomainError) || error.code !== 'invalid_state') throw error;
      });
    const account = (await this.handler.load(tutorDecider, stream)).state.payoutAccount;
    if (account === null) throw new Error(`tutor ${tutorId}: payout account not recorded`);
    return account;
  }

  // ------------------------------------------------------------------------------------------------
  // Finance admin

  async adjust(
    ctx: CommandContext,
    input: {
      account: string;
      direction: 'debit' | 'credit';
      amount: Money;
      reason: string;
      /** When it happened, if earlier than now (docs/ledger-flows.md, "Backdated entries"). */
      effectiveAt?: string;
      /** The entry this adjustment corrects. */
      corrects?: string;
    },
    options: AdjustOptions = {},
  ): Promise<CommandResult & { entryId: string }> {
    checkContext(ctx);
    const t = ctx.tenantId;
    const ref = requireAccount(input.account);
    const recordedAt = this.now();
    const effective = {
      ...(input.effectiveAt !== undefined ? { effectiveAt: input.effectiveAt } : {}),
      ...(input.corrects !== undefined ? { corrects: input.corrects } : {}),
    };
    const backdated =
      input.effectiveAt !== undefined &&
      periodOf(parseInstant(input.effectiveAt, 'effectiveAt')) < periodOf(Date.parse(recordedAt));
    if (backdated) {
      // Clearer than any other refusal: an entry effective in a closed period (decided again, against
      // the periods stream's revision, for unconstrained accounts below).
      const periods = (await this.handler.load(periodsDecider, periodsStream(t))).state;
      const period = periodOf(parseInstant(input.effectiveAt, 'effectiveAt'));
      if (isClosed(periods, period)) throw periodClosedError(periods, period);
    }
    const settings = await this.steps.settingsAsOf(t);
    const amount = parseMoney(input.amount, { allowedCurrencies: settings.allowedCurrencies });
    // Four eyes: above the tenant's threshold only an approved proposal makes the adjustment.
    if (!options.approvedProposal && amount.amount > settings.adjustmentApprovalThreshold) {
      throw new DomainError(
        'limit_exceeded',
        `adjustments above ${settings.adjustmentApprovalThreshold} (minor units) need a second finance admin: propose it with POST /v1/adjustment-proposals`,
        { field: 'amount', threshold: settings.adjustmentApprovalThreshold },
      );
    }
    const adjustmentId = deterministicId('adjustment', t, ctx.idempotencyKey);
    const actor = { id: ctx.actor.id, role: ctx.actor.role };
    if (ref.kind === 'student_wallet') {
      const entryId = entryIdFor(ctx, 'AdjustWallet');
      const result = await this.runCommand(
        ctx,
        walletDecider,
        walletStream(t, ref.studentId),
        {
          type: 'AdjustWallet',
          studentId: ref.studentId,
          adjustmentId,
          direction: input.direction,
          amount: amount.amount,
          currency: amount.currency,
          reason: input.reason,
          actor,
          entryId,
          recordedAt,
          ...effective,
        },
        { op: 'adjust', input },
      );
      return { position: result.position, entryId };
    }
    if (ref.kind === 'tutor_earnings_available' || ref.kind === 'tutor_receivable') {
      const entryId = entryIdFor(ctx, 'AdjustTutor');
      const result = await this.runCommand(
        ctx,
        tutorDecider,
        tutorStream(t, ref.tutorId),
        {
          type: 'AdjustTutor',
          tutorId: ref.tutorId,
          adjustmentId,
          account: ref.kind === 'tutor_earnings_available' ? 'available' : 'receivable',
          direction: input.direction,
          amount: amount.amount,
          currency: amount.currency,
          reason: input.reason,
          actor,
          entryId,
          recordedAt,
          ...effective,
        },
        { op: 'adjust', input },
      );
      return { position: result.position, entryId };
    }
    if (input.account === PLATFORM_ADJUSTMENTS) {
      throw new DomainError(
        'validation_failed',
        `${PLATFORM_ADJUSTMENTS} is the other side of every adjustment`,
        {
          field: 'account',
        },
      );
    }
    if (backdated && input.effectiveAt !== undefined) {
      // Decided against the closed periods and appended with the periods stream's expected revision:
      // a close racing this adjustment is serialised by the store (periods.ts).
      const entryId = entryIdFor(ctx, 'AdjustLedgerBackdated');
      const result = await this.runCommand(
        ctx,
        periodsDecider,
        periodsStream(t),
        {
          type: 'AdjustLedgerBackdated',
          adjustmentId,
          account: input.account,
          direction: input.direction,
          amount: amount.amount,
          currency: amount.currency,
          reason: input.reason,
          actor,
          entryId,
          adjustedAt: recordedAt,
          allowedCurrencies: settings.allowedCurrencies,
          ...effective,
          effectiveAt: input.effectiveAt,
        },
        { op: 'adjust', input },
      );
      return { position: result.position, entryId };
    }
    const entryId = entryIdFor(ctx, 'AdjustLedger');
    const result = await this.runCommand(
      ctx,
      adjustmentDecider,
      adjustmentStream(t, adjustmentId),
      {
        type: 'AdjustLedger',
        adjustmentId,
        account: input.account,
        direction: input.direction,
        amount: amount.amount,
        currency: amount.currency,
        reason: input.reason,
        actor,
        entryId,
        adjustedAt: recordedAt,
        allowedCurrencies: settings.allowedCurrencies,
        ...effective,
      },
      { op: 'adjust', input },
    );
    return { position: result.position, entryId };
  }

  // ------------------------------------------------------------------------------------------------
  // Accounting periods

  /** Closes a month of the tenant's books (finance admin; periods close in order). */
  async closePeriod(ctx: CommandContext, input: { period: string }): Promise<CommandResult> {
    checkContext(ctx);
    const result = await this.runCommand(
      ctx,
      periodsDecider,
      periodsStream(ctx.tenantId),
      {
        type: 'ClosePeriod',
        period: input.period,
        actor: { id: ctx.actor.id, role: ctx.actor.role },
        now: this.now(),
      },
      { op: 'closePeriod', input },
    );
    return { position: result.position };
  }

  /** The tenant's closed periods, as the periods stream has them now. */
  async periods(tenantId: string): Promise<PeriodsState> {
    return (await this.handler.load(periodsDecider, periodsStream(tenantId))).state;
  }

  async recordStripeCharge(
    ctx: CommandContext,
    input: StripeChargeInput,
  ): Promise<CommandResult & { entryId: string }> {
    checkContext(ctx);
    const stripeObjectId = requireEntityId(input.stripeObjectId, 'stripeObjectId');
    const stream = stripeStream(ctx.tenantId, stripeObjectId);
    const now = this.now();
    const commandType =
      input.kind === 'fee'
        ? 'BookStripeFee'
        : input.kind === 'dispute_opened'
          ? 'OpenStripeDispute'
          : 'CloseStripeDispute';
    const entryId = entryIdFor(ctx, commandType);
    const command =
      input.kind === 'fee'
        ? {
            type: 'BookStripeFee' as const,
            stripeObjectId,
            amount: input.amount.amount,
            currency: input.amount.currency,
            description: input.description,
            entryId,
            bookedAt: now,
          }
        : input.kind === 'dispute_opened'
          ? {
              type: 'OpenStripeDispute' as const,
              stripeObjectId,
              amount: input.amount.amount,
              currency: input.amount.currency,
              description: input.description,
              entryId,
              openedAt: now,
            }
          : {
              type: 'CloseStripeDispute' as const,
              stripeObjectId,
              outcome: input.kind === 'dispute_won' ? ('won' as const) : ('lost' as const),
              description: input.description,
              entryId,
              closedAt: now,
            };
    const result = await this.runCommand(ctx, stripeChargeDecider, stream, command, {
      op: 'recordStripeCharge',
      input,
    });
    return { position: result.position, entryId };
  }

  // ------------------------------------------------------------------------------------------------
  // Tenant settings

  async getSettings(tenantId: string): Promise<TenantSettings> {
    if (!isTenantId(tenantId)) throw new DomainError('validation_failed', 'invalid tenant id');
    return this.steps.settingsAsOf(tenantId);
  }

  async updateSettings(
    ctx: CommandContext,
    patch: Partial<TenantSettings>,
  ): Promise<CommandResult & { settings: TenantSettings }> {
    checkContext(ctx);
    const stream = settingsStream(ctx.tenantId);
    const result = await this.runCommand(
      ctx,
      tenantSettingsDecider,
      stream,
      { type: 'UpdateTenantSettings', patch, updatedAt: this.now() },
      { op: 'updateSettings', patch },
    );
    return { position: result.position, settings: result.state.settings };
  }

  // ------------------------------------------------------------------------------------------------
  // Time-driven transitions

  runDueTasks(tenantId: string, now: Date): Promise<{ expiredHolds: number; clearedEarnings: number }> {
    if (!isTenantId(tenantId))
      return Promise.reject(new DomainError('validation_failed', 'invalid tenant id'));
    return this.dueTasks.run(tenantId, now);
  }

  /**
   * A request's own command, under the caller's idempotency key. `payload` is what identifies the
   * request for key-reuse detection (hashed with stableHash); `const` keeps the command's literal type,
   * so the decider's command union checks it.
   */
  private runCommand<const C extends { type: string }, E extends DomainEventLike, S>(
    ctx: CommandContext,
    decider: Decider<C, E, S>,
    streamName: string,
    command: C,
    payload: unknown,
  ): Promise<HandleResult<S>> {
    return this.handler.handle(decider, streamName, command, ctx, {
      commandType: command.type,
      payloadHash: stableHash(payload),
    });
  }

  /** Position of a stream's last event, or `fallback` (-1n) when it has none. */
  private async lastPosition(streamName: string, fallback = -1n): Promise<bigint> {
    try {
      const [last] = await this.store.readStream(streamName, { direction: 'backwards', maxCount: 1 });
      return last && last.position > fallback ? last.position : fallback;
    } catch (error) {
      if (error instanceof StreamNotFoundError) return fallback;
      throw error;
    }
  }
}

export function createLedgerService(options: LedgerServiceOptions): LedgerService {
  return new LedgerService(options);
}

function checkContext(ctx: CommandContext): void {
  if (!isTenantId(ctx.tenantId)) {
    throw new DomainError('validation_failed', `tenantId must match ${TENANT_ID_PATTERN.source}`, {
      field: 'tenantId',
    });
  }
  if (
    typeof ctx.idempotencyKey !== 'string' ||
    ctx.idempotencyKey.length === 0 ||
    ctx.idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH
  ) {
    throw new DomainError(
      'validation_failed',
      `idempotency key must be 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters`,
      {
        field: 'idempotencyKey',
      },
    );
  }
}
