import {
  type BillingSettings,
  billingSettingsDecider,
  commissionTaxOf,
  defaultBillingSettings,
} from '../domain/billingSettings.js';
import { type BookingState, bookingDecider } from '../domain/booking.js';
import { discountTotal } from '../domain/bookingPrice.js';
import type { Decider } from '../domain/decider.js';
import { DomainError, InvariantViolation } from '../domain/errors.js';
import { decodeEventOf, type LedgerEventType } from '../domain/events.js';
import { type PayoutState, payoutDecider } from '../domain/payout.js';
import {
  billingStream,
  bookingStream,
  payoutStream,
  settingsStream,
  topUpStream,
  tutorStream,
  walletStream,
} from '../domain/streams.js';
import {
  type BookingPolicy,
  bookingPolicyFrom,
  type TenantSettings,
  tenantSettingsDecider,
} from '../domain/tenantSettings.js';
import { topUpDecider } from '../domain/topUp.js';
import { tutorDecider } from '../domain/tutor.js';
import { walletDecider } from '../domain/wallet.js';
import type { EventStore, RecordedEvent } from '../eventstore/port.js';
import { StreamNotFoundError } from '../eventstore/port.js';
import { CoalescedStreamReads } from './coalescedReads.js';
import type { CommandHandler, DomainEventLike, HandleResult } from './commandHandler.js';
import type { CommandContext } from './context.js';
import { entryIdFor, stepContext, stepPayloadHash, type Trigger, triggerOf } from './flowContext.js';
import {
  confirmPromoCodesAfterCompletion,
  promoRefusalError,
  releasePromoCodes,
  reservePromoCodesAfterHold,
} from './promoCodeSteps.js';

/** Bound on events read from one short stream (settings, booking) when looking something up. */
const SHORT_STREAM_MAX_EVENTS = 10_000;

/**
 * The steps that carry a flow from one stream to the next (docs/ledger-flows.md, "Process managers").
 * Each takes its trigger event and performs exactly one command whose event ids derive from the
 * trigger's id: the command path calls them right after appending the trigger, a process manager calls
 * them for every trigger it reads, and whichever comes second appends nothing.
 */
export class FlowSteps {
  /** The tenant's settings stream is read by nearly every command: concurrent reads are shared. */
  readonly settingsReads: CoalescedStreamReads;

  constructor(
    private readonly handler: CommandHandler,
    private readonly store: EventStore,
  ) {
    this.settingsReads = new CoalescedStreamReads((stream) => this.readShortStream(stream));
  }

  /** Tenant settings in force just before `position` (all of them when omitted). */
  async settingsAsOf(tenantId: string, position?: bigint): Promise<TenantSettings> {
    // A read that began after this call (CoalescedStreamReads): it holds every settings event committed
    // before the call, and so every one before `position` when the caller appended at `position`.
    let state = tenantSettingsDecider.initialState();
    for (const e of await this.settingsReads.read(settingsStream(tenantId))) {
      if (position !== undefined && e.position >= position) break;
      state = tenantSettingsDecider.evolve(state, decodeEventOf(e, ['TenantSettingsUpdated']));
    }
    return state.settings;
  }

  /** The tenant's billing settings (billingSettings.ts) as of a position, like settingsAsOf. */
  async billingAsOf(tenantId: string, position?: bigint): Promise<BillingSettings> {
    let state = billingSettingsDecider.initialState();
    for (const e of await this.settingsReads.read(billingStream(tenantId))) {
      if (position !== undefined && e.position >= position) break;
      state = billingSettingsDecider.evolve(state, decodeEventOf(e, ['BillingSettingsUpdated']));
    }
    return state.settings ?? defaultBillingSettings(tenantId);
  }

  /** The policy a booking snapshots: the money policy and the commission tax in force at `position`. */
  async policyAsOf(tenantId: string, position?: bigint): Promise<BookingPolicy> {
    const [settings, billing] = await Promise.all([
      this.settingsAsOf(tenantId, position),
      this.billingAsOf(tenantId, position),
    ]);
    return bookingPolicyFrom(settings, commissionTaxOf(billing));
  }

  /**
   * WalletHoldPlaced -> (PromoRedemptionReserved for a promo discount, promoCodeSteps.ts) -> BookingPlaced
   * (policy as of the hold). If the booking cannot be placed, or a code's reservation is refused, the
   * hold is released (and any reservation made).
   */
  async placeBookingAfterHold(trigger: Trigger<'WalletHoldPlaced'>): Promise<HandleResult<BookingState>> {
    const d = trigger.data;
    const t = trigger.tenantId;
    const bookingId = d.bookingId;
    try {
      const refusal = await reservePromoCodesAfterHold(this, trigger);
      if (refusal) promoRefusalError(refusal);
      const policy = await this.policyAsOf(t, trigger.position);
      return await this.runStep(
        trigger,
        'place-booking',
        bookingDecider,
        bookingStream(t, bookingId),
        () => ({
          type: 'PlaceBooking',
          bookingId,
          studentId: d.studentId,
          tutorId: d.tutorId,
          price: d.listPrice ?? d.amount,
          currency: d.currency,
          scheduledAt: d.scheduledAt,
          ...(d.discounts ? { discounts: d.discounts } : {}),
          holdId: d.holdId,
          policy,
          placedAt: trigger.metadata.occurredAt,
        }),
      );
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      // The booking can never be placed (e.g. its id is taken): give the student the money back.
      const studentId = d.studentId;
      await this.runStep(
        trigger,
        'release-unplaced-hold',
        walletDecider,
        walletStream(t, studentId),
        (ctx) => ({
          type: 'ReleaseWalletHold',
          studentId,
          holdId: d.holdId,
          reason: 'cancelled',
          fee: 0,
          tutorShare: 0,
          commission: 0,
          entryId: entryIdFor(ctx, 'ReleaseWalletHold'),
        }),
      ).catch(ignoreRefusal);
      await releasePromoCodes(this, trigger);
      throw error;
    }
  }

  /**
   * BookingCompleted -> WalletHoldCaptured (the wallet pays the list price less the discounts), then
   * PromoRedemptionConfirmed for a promo discount.
   */
  async captureAfterCompletion(trigger: Trigger<'BookingCompleted'>): Promise<Trigger<'WalletHoldCaptured'>> {
    const d = trigger.data;
    const result = await this.runStep(
      trigger,
      'capture-hold',
      walletDecider,
      studentWallet(trigger),
      (ctx) => ({
        type: 'CaptureWalletHold',
        studentId: d.studentId,
        holdId: d.holdId,
        captured: d.captured - discountTotal(d.discounts),
        tutorShare: d.tutorShare,
        commission: d.commission,
        ...(d.commissionTax ? { commissionTax: d.commissionTax } : {}),
        entryId: entryIdFor(ctx, 'CaptureWalletHold'),
      }),
    );
    await confirmPromoCodesAfterCompletion(this, trigger);
    return triggerOf(result, 'WalletHoldCaptured');
  }

  /**
   * BookingCancelled / BookingExpired -> WalletHoldReleased (with the late fee, if any), then
   * PromoRedemptionReleased for a promo discount.
   */
  async releaseAfterBookingEnded(
    trigger: Trigger<'BookingCancelled' | 'BookingExpired'>,
  ): Promise<Trigger<'WalletHoldReleased'>> {
    const d = trigger.data;
    const fee =
      trigger.type === 'BookingCancelled'
        ? {
            fee: trigger.data.fee,
            tutorShare: trigger.data.tutorShare,
            commission: trigger.data.commission,
            ...(trigger.data.commissionTax ? { commissionTax: trigger.data.commissionTax } : {}),
          }
        : { fee: 0, tutorShare: 0, commission: 0 };
    const result = await this.runStep(
      trigger,
      'release-hold',
      walletDecider,
      studentWallet(trigger),
      (ctx) => ({
        type: 'ReleaseWalletHold',
        studentId: d.studentId,
        holdId: d.holdId,
        reason: trigger.type === 'BookingCancelled' ? 'cancelled' : 'expired',
        ...fee,
        entryId: entryIdFor(ctx, 'ReleaseWalletHold'),
      }),
    );
    await releasePromoCodes(this, trigger);
    return triggerOf(result, 'WalletHoldReleased');
  }

  /**
   * WalletHoldCaptured / WalletHoldReleased with a fee -> TutorEarningsRecorded. clearableAt comes from
   * the booking's own event, so a late or repeated step never shifts it. Nothing to record: null.
   */
  async recordEarningsAfterResolution(
    trigger: Trigger<'WalletHoldCaptured' | 'WalletHoldReleased'>,
  ): Promise<Trigger<'TutorEarningsRecorded'> | null> {
    const d = trigger.data;
    const amount = d.tutorShare;
    if (amount === 0) return null;
    const t = trigger.tenantId;
    const bookingId = d.bookingId;
    const completion = trigger.type === 'WalletHoldCaptured';
    const stream = bookingStream(t, bookingId);
    const source = completion
      ? (await this.findEvent(stream, 'BookingCompleted')).data
      : (await this.findEvent(stream, 'BookingCancelled')).data;
    const clearableAt = source.earningsClearableAt;
    if (clearableAt === null) {
      throw new InvariantViolation(
        `booking ${bookingId}: BookingCancelled has no earningsClearableAt for a fee of ${amount}`,
      );
    }
    const earnedAt = 'completedAt' in source ? source.completedAt : source.cancelledAt;
    const tutorId = d.tutorId;
    const result = await this.runStep(
      trigger,
      'record-earnings',
      tutorDecider,
      tutorStream(t, tutorId),
      () => ({
        type: 'RecordEarnings',
        tutorId,
        bookingId,
        amount,
        currency: d.currency,
        source: completion ? 'completion' : 'cancellation_fee',
        earnedAt,
        clearableAt,
      }),
    );
    return triggerOf(result, 'TutorEarningsRecorded');
  }

  /** BookingRefunded -> WalletRefunded (Dr refund clearing + commission, Cr wallet). */
  async refundWalletAfterBookingRefund(
    trigger: Trigger<'BookingRefunded'>,
  ): Promise<Trigger<'WalletRefunded'>> {
    const d = trigger.data;
    const result = await this.runStep(
      trigger,
      'refund-wallet',
      walletDecider,
      studentWallet(trigger),
      (ctx) => ({
        type: 'RefundToWallet',
        studentId: d.studentId,
        refundId: d.refundId,
        bookingId: d.bookingId,
        amount: d.amount - discountTotal(d.discounts),
        ...(d.discounts ? { discounts: d.discounts } : {}),
        tutorPart: d.tutorPart,
        commissionPart: d.commissionPart,
        ...(d.commissionTax ? { commissionTax: d.commissionTax } : {}),
        currency: d.currency,
        entryId: entryIdFor(ctx, 'RefundToWallet'),
      }),
    );
    return triggerOf(result, 'WalletRefunded');
  }

  /** WalletRefunded -> TutorEarningsReversed (closes the refund clearing account). Nothing to reverse: null. */
  async reverseEarningsAfterWalletRefund(
    trigger: Trigger<'WalletRefunded'>,
  ): Promise<Trigger<'TutorEarningsReversed'> | null> {
    const d = trigger.data;
    const amount = d.tutorPart;
    if (amount === 0) return null;
    const tutorId = d.tutorId;
    const stream = tutorStream(trigger.tenantId, tutorId);
    const result = await this.runStep(trigger, 'reverse-earnings', tutorDecider, stream, (ctx) => ({
      type: 'ReverseEarnings',
      tutorId,
      bookingId: d.bookingId,
      refundId: d.refundId,
      amount,
      currency: d.currency,
      entryId: entryIdFor(ctx, 'ReverseEarnings'),
    }));
    return triggerOf(result, 'TutorEarningsReversed');
  }

  /** TopUpSucceeded -> WalletToppedUp (Dr stripe:balance, Cr wallet). */
  async creditWalletAfterTopUp(trigger: Trigger<'TopUpSucceeded'>): Promise<Trigger<'WalletToppedUp'>> {
    const d = trigger.data;
    const result = await this.runStep(
      trigger,
      'credit-wallet',
      walletDecider,
      studentWallet(trigger),
      (ctx) => ({
        type: 'CreditTopUp',
        studentId: d.studentId,
        topUpId: d.topUpId,
        paymentIntentId: d.paymentIntentId,
        amount: d.amount,
        currency: d.currency,
        entryId: entryIdFor(ctx, 'CreditTopUp'),
      }),
    );
    return triggerOf(result, 'WalletToppedUp');
  }

  /** WalletRefundedToCard -> TopUpRefundedToCard (the top-up's record of the card refund). */
  async recordCardRefundAfterWalletRefund(trigger: Trigger<'WalletRefundedToCard'>): Promise<void> {
    const d = trigger.data;
    const stream = topUpStream(trigger.tenantId, d.topUpId);
    await this.runStep(trigger, 'record-card-refund', topUpDecider, stream, () => ({
      type: 'RecordTopUpRefundToCard',
      stripeRefundId: d.stripeRefundId,
      amount: d.amount,
      currency: d.currency,
      refundedAt: trigger.metadata.occurredAt,
    }));
  }

  /** WalletCardRefundFailed -> TopUpCardRefundFailed (the top-up's refundable amount reopens). */
  async recordCardRefundFailureAfterReversal(trigger: Trigger<'WalletCardRefundFailed'>): Promise<void> {
    const d = trigger.data;
    const stream = topUpStream(trigger.tenantId, d.topUpId);
    await this.runStep(trigger, 'record-card-refund-failure', topUpDecider, stream, () => ({
      type: 'RecordTopUpCardRefundFailed',
      stripeRefundId: d.stripeRefundId,
      amount: d.amount,
      currency: d.currency,
      failureReason: d.failureReason,
      failedAt: trigger.metadata.occurredAt,
    }));
  }

  /** TutorPayoutHoldPlaced -> PayoutRequested. If the payout cannot be requested, the hold is released. */
  async requestPayoutAfterHold(
    trigger: Trigger<'TutorPayoutHoldPlaced'>,
  ): Promise<HandleResult<PayoutState>> {
    const d = trigger.data;
    const t = trigger.tenantId;
    const { payoutId, tutorId } = d;
    try {
      return await this.runStep(trigger, 'request-payout', payoutDecider, payoutStream(t, payoutId), () => ({
        type: 'RequestPayout',
        payoutId,
        tutorId,
        amount: d.amount,
        currency: d.currency,
        holdId: d.holdId,
        requestedAt: trigger.metadata.occurredAt,
      }));
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      // The payout can never be requested: give the tutor the money back.
      await this.runStep(
        trigger,
        'release-unrequested-payout',
        tutorDecider,
        tutorStream(t, tutorId),
        (ctx) => ({
          type: 'ReleasePayoutHold',
          tutorId,
          payoutId,
          reason: `payout could not be requested: ${error.code}`,
          entryId: entryIdFor(ctx, 'ReleasePayoutHold'),
        }),
      ).catch(ignoreRefusal);
      throw error;
    }
  }

  /**
   * TutorPayoutHoldPosted -> PayoutPaid; TutorPayoutHoldReleased -> PayoutFailed. A hold released because
   * its payout could never be requested has no open payout to close: null.
   */
  async closePayoutAfterHoldResolved(
    trigger: Trigger<'TutorPayoutHoldPosted' | 'TutorPayoutHoldReleased'>,
    stripeIds: { stripeTransferId?: string | null; stripePayoutId?: string | null } = {},
  ): Promise<HandleResult<PayoutState> | null> {
    const stream = payoutStream(trigger.tenantId, trigger.data.payoutId);
    const step = trigger.type === 'TutorPayoutHoldPosted' ? 'payout-paid' : 'payout-failed';
    const current = await this.handler.load(payoutDecider, stream);
    const open = current.state.status === 'requested' || current.state.status === 'submitted';
    const close = () =>
      this.runStep(trigger, step, payoutDecider, stream, () =>
        trigger.type === 'TutorPayoutHoldPosted'
          ? markPaid(open ? stripeIds : {}, trigger)
          : markFailed(trigger),
      );
    if (open) return close();
    // Already closed by this very step (a repeat) or never opened: the handler replays or we skip.
    return close().catch((error: unknown) => {
      if (error instanceof DomainError) return null;
      throw error;
    });
  }

  /** TutorPayoutReversed -> PayoutFailed (after PayoutPaid), with Stripe's failure code. */
  async failPaidPayoutAfterReversal(
    trigger: Trigger<'TutorPayoutReversed'>,
  ): Promise<HandleResult<PayoutState> | null> {
    const stream = payoutStream(trigger.tenantId, trigger.data.payoutId);
    const code = trigger.data.failureCode;
    return this.runStep(trigger, 'payout-failed-after-paid', payoutDecider, stream, () => ({
      type: 'MarkPayoutFailed' as const,
      reason: `stripe ${code}: the payout failed after Stripe had reported it paid`,
      failureCode: code,
      failedAt: trigger.metadata.occurredAt,
    })).catch((error: unknown) => {
      // Already failed (this very step repeated is a replay, not an error).
      if (error instanceof DomainError && error.code === 'invalid_state') return null;
      throw error;
    });
  }

  /**
   * One step of a flow: the command `build` makes, on `streamName`, under the step's context (its
   * idempotency key, and so its event and entry ids, derive from the trigger's id). `const` keeps the
   * built command's literal `type`, so the decider's command union checks it as the handler would.
   */
  async runStep<const C extends { type: string }, E extends DomainEventLike, S>(
    trigger: Trigger,
    step: string,
    decider: Decider<C, E, S>,
    streamName: string,
    build: (ctx: CommandContext) => C,
  ): Promise<HandleResult<S>> {
    const ctx = stepContext(trigger, step);
    const command = build(ctx);
    return this.handler.handle(decider, streamName, command, ctx, {
      commandType: command.type,
      payloadHash: stepPayloadHash(trigger, step),
    });
  }

  /** The first event of `type` in a short stream (a booking's lifecycle event), decoded. */
  async findEvent<T extends LedgerEventType>(streamName: string, type: T): Promise<Trigger<T>> {
    const found = (await this.readShortStream(streamName)).find((e) => e.type === type);
    if (!found) throw new DomainError('not_found', `${streamName} has no ${type}`);
    return decodeEventOf(found, [type]);
  }

  private async readShortStream(streamName: string): Promise<RecordedEvent[]> {
    try {
      return await this.store.readStream(streamName, { maxCount: SHORT_STREAM_MAX_EVENTS });
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw error;
    }
  }
}

/** The wallet stream of the trigger's student. */
const studentWallet = (
  trigger: Trigger<
    'BookingCompleted' | 'BookingCancelled' | 'BookingExpired' | 'BookingRefunded' | 'TopUpSucceeded'
  >,
) => walletStream(trigger.tenantId, trigger.data.studentId);

/** A compensating step refused because it already ran (a retry): the original rejection is what matters. */
function ignoreRefusal(error: unknown): void {
  if (!(error instanceof DomainError)) throw error;
}

function markPaid(
  ids: { stripeTransferId?: string | null; stripePayoutId?: string | null },
  trigger: Trigger<'TutorPayoutHoldPosted'>,
): {
  type: 'MarkPayoutPaid';
  stripeTransferId: string | null;
  stripePayoutId: string | null;
  paidAt: string;
} {
  return {
    type: 'MarkPayoutPaid',
    stripeTransferId: ids.stripeTransferId ?? null,
    stripePayoutId: ids.stripePayoutId ?? null,
    paidAt: trigger.metadata.occurredAt,
  };
}

function markFailed(trigger: Trigger<'TutorPayoutHoldReleased'>): {
  type: 'MarkPayoutFailed';
  reason: string;
  failedAt: string;
} {
  return {
    type: 'MarkPayoutFailed',
    reason: trigger.data.reason,
    failedAt: trigger.metadata.occurredAt,
  };
}
