import { PLATFORM_ADJUSTMENTS, requireAccount } from '../domain/accounts.js';
import { adjustmentDecider } from '../domain/adjustment.js';
import { bookingDecider } from '../domain/booking.js';
import type { Decider } from '../domain/decider.js';
import { DomainError } from '../domain/errors.js';
import { bookingHoldId, deterministicId, payoutHoldId } from '../domain/ids.js';
import { parseMoney } from '../domain/money.js';
import { payoutDecider } from '../domain/payout.js';
import { stripeChargeDecider } from '../domain/stripeCharge.js';
import { bookingPolicyFrom, tenantSettingsDecider } from '../domain/tenantSettings.js';
import { topUpDecider } from '../domain/topUp.js';
import { tutorDecider } from '../domain/tutor.js';
import { requireEntityId, requireText } from '../domain/validate.js';
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
import type {
  BookingView,
  LedgerCommands,
  Money,
  PayoutView,
  StripeChargeInput,
  TenantSettings,
  TopUpView,
} from './ledgerCommands.js';
import { type Logger, silentLogger } from './logger.js';
import { DueTaskRunner } from './scheduler.js';
import { stableHash } from './stableHash.js';
import {
  adjustmentStream,
  bookingStream,
  isValidTenantId,
  payoutStream,
  settingsStream,
  stripeStream,
  topUpStream,
  tutorStream,
  walletStream,
} from './streams.js';
import { bookingView, payoutView, topUpView } from './views.js';

export interface LedgerServiceOptions {
  store: EventStore;
  clock: () => Date;
  gateway?: PaymentsGateway;
  logger?: Logger;
  /** Tuning of the command handler (retries, cache size, queue bound). */
  handler?: Omit<CommandHandlerOptions, 'store' | 'clock'>;
}

/** Gateway failures that retrying the same request can never fix. */
const PERMANENT_GATEWAY_CODES = new Set(['card_declined', 'insufficient_funds', 'invalid_request']);

const MAX_KEY_LENGTH = 255;

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
  readonly store: EventStore;
  private readonly clock: () => Date;
  private readonly gateway: PaymentsGateway | undefined;
  private readonly logger: Logger;

  constructor(options: LedgerServiceOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.gateway = options.gateway;
    this.logger = options.logger ?? silentLogger;
    this.handler = new CommandHandler({ ...options.handler, store: options.store, clock: options.clock });
    this.steps = new FlowSteps(this.handler, options.store);
    this.dueTasks = new DueTaskRunner({ store: options.store, handler: this.handler, steps: this.steps });
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

  // ------------------------------------------------------------------------------------------------
  // Bookings

  async placeBooking(
    ctx: CommandContext,
    input: { bookingId: string; studentId: string; tutorId: string; price: Money; scheduledAt: string },
  ): Promise<CommandResult & { booking: BookingView }> {
    checkContext(ctx);
    const t = ctx.tenantId;
    const bookingId = requireEntityId(input.bookingId, 'bookingId');
    const studentId = requireEntityId(input.studentId, 'studentId');
    const tutorId = requireEntityId(input.tutorId, 'tutorId');
    // Independent reads, one round trip of waiting instead of two.
    const [settings, existing] = await Promise.all([
      this.steps.settingsAsOf(t),
      this.handler.load(bookingDecider, bookingStream(t, bookingId)),
    ]);
    const price = parseMoney(input.price, { field: 'price', allowedCurrencies: settings.allowedCurrencies });
    const holdId = bookingHoldId(t, bookingId);
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
          holdId,
          policy: bookingPolicyFrom(settings),
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
        amount: price.amount,
        currency: price.currency,
        scheduledAt: input.scheduledAt,
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
    return { position: (recorded ?? captured).position, booking: bookingView(result.state) };
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
    return { position: (reversed ?? refunded).position, booking: bookingView(result.state), refundId };
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
    input: { payoutId: string; reason: string },
  ): Promise<CommandResult> {
    checkContext(ctx);
    const payoutId = requireEntityId(input.payoutId, 'payoutId');
    const reason = requireText(input.reason, 'reason');
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
      { op: 'markPayoutFailed', input },
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
   * inside an HTTP request. Idempotency keys derive from the payout id, so a retried step never pays twice.
   */
  async submitPayout(trigger: Trigger): Promise<void> {
    if (!this.gateway) return;
    const t = trigger.metadata.tenantId;
    const payoutId = String(trigger.data.payoutId);
    const stream = payoutStream(t, payoutId);
    const { state } = await this.handler.load(payoutDecider, stream);
    if (state.status !== 'requested' || !state.tutorId || !state.currency) return;
    const ctx: CommandContext = {
      tenantId: t,
      actor: { id: 'process-manager', role: 'service' },
      idempotencyKey: `submit-payout:${trigger.id}`,
      correlationId: trigger.metadata.correlationId,
      causationId: trigger.id,
    };
    const metadata = { tenantId: t, payoutId, tutorId: state.tutorId };
    try {
      const account = await this.gateway.ensureConnectedAccount({
        idempotencyKey: `acct-${t}-${state.tutorId}`,
        tutorId: state.tutorId,
        tenantId: t,
      });
      if (!account.payoutsEnabled) {
        throw new GatewayError('invalid_request', `payouts are not enabled for tutor ${state.tutorId}`);
      }
      const transfer = await this.gateway.createTransfer({
        idempotencyKey: `transfer-${t}-${payoutId}`,
        amount: state.amount,
        currency: state.currency,
        destinationAccountId: account.accountId,
        metadata,
      });
      const payout = await this.gateway.createPayout({
        idempotencyKey: `payout-${t}-${payoutId}`,
        amount: state.amount,
        currency: state.currency,
        connectedAccountId: account.accountId,
        metadata,
      });
      await this.handler.handle(
        payoutDecider,
        stream,
        {
          type: 'SubmitPayout',
          stripeTransferId: transfer.transferId,
          stripePayoutId: payout.payoutId,
          submittedAt: this.now(),
        },
        ctx,
        { commandType: 'SubmitPayout', payloadHash: `submit-payout:${trigger.id}` },
      );
    } catch (error) {
      if (!(error instanceof GatewayError) || !PERMANENT_GATEWAY_CODES.has(error.code)) throw error;
      this.logger.warn(
        { tenantId: t, payoutId, code: error.code, err: error.message },
        'payout refused by Stripe',
      );
      await this.markPayoutFailed(
        { ...ctx, idempotencyKey: `payout-refused:${trigger.id}` },
        { payoutId, reason: `stripe ${error.code}: ${error.message}` },
      );
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Finance admin

  async adjust(
    ctx: CommandContext,
    input: { account: string; direction: 'debit' | 'credit'; amount: Money; reason: string },
  ): Promise<CommandResult & { entryId: string }> {
    checkContext(ctx);
    const t = ctx.tenantId;
    const ref = requireAccount(input.account);
    const settings = await this.steps.settingsAsOf(t);
    const amount = parseMoney(input.amount, { allowedCurrencies: settings.allowedCurrencies });
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
        adjustedAt: this.now(),
        allowedCurrencies: settings.allowedCurrencies,
      },
      { op: 'adjust', input },
    );
    return { position: result.position, entryId };
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
    if (!isValidTenantId(tenantId)) throw new DomainError('validation_failed', 'invalid tenant id');
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
    if (!isValidTenantId(tenantId))
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
  if (!isValidTenantId(ctx.tenantId)) {
    throw new DomainError('validation_failed', 'tenantId must match ^[a-z0-9_]{1,40}$', {
      field: 'tenantId',
    });
  }
  if (
    typeof ctx.idempotencyKey !== 'string' ||
    ctx.idempotencyKey.length === 0 ||
    ctx.idempotencyKey.length > MAX_KEY_LENGTH
  ) {
    throw new DomainError('validation_failed', `idempotency key must be 1-${MAX_KEY_LENGTH} characters`, {
      field: 'idempotencyKey',
    });
  }
}
