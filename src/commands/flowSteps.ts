import { type BookingState, bookingDecider } from '../domain/booking.js';
import type { Decider } from '../domain/decider.js';
import { DomainError } from '../domain/errors.js';
import { type PayoutState, payoutDecider } from '../domain/payout.js';
import {
  type BookingPolicy,
  bookingPolicyFrom,
  type TenantSettings,
  tenantSettingsDecider,
} from '../domain/tenantSettings.js';
import { topUpDecider } from '../domain/topUp.js';
import { tutorDecider } from '../domain/tutor.js';
import { walletDecider } from '../domain/wallet.js';
import type { EventStore, JsonObject, RecordedEvent } from '../eventstore/port.js';
import { StreamNotFoundError } from '../eventstore/port.js';
import { CoalescedStreamReads } from './coalescedReads.js';
import type { CommandHandler, DomainEventLike, HandleResult } from './commandHandler.js';
import type { CommandContext } from './context.js';
import { entryIdFor, stepContext, stepPayloadHash, type Trigger, triggerOf } from './flowContext.js';
import {
  bookingStream,
  payoutStream,
  settingsStream,
  topUpStream,
  tutorStream,
  walletStream,
} from './streams.js';

/** Bound on events read from one short stream (settings, booking) when looking something up. */
const SHORT_STREAM_MAX_EVENTS = 10_000;

const num = (d: JsonObject, f: string): number => {
  const v = d[f];
  if (typeof v !== 'number') throw new Error(`event field ${f} is not a number`);
  return v;
};
const str = (d: JsonObject, f: string): string => {
  const v = d[f];
  if (typeof v !== 'string') throw new Error(`event field ${f} is not a string`);
  return v;
};

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
      state = tenantSettingsDecider.evolve(state, { type: 'TenantSettingsUpdated', data: e.data } as never);
    }
    return state.settings;
  }

  async policyAsOf(tenantId: string, position: bigint): Promise<BookingPolicy> {
    return bookingPolicyFrom(await this.settingsAsOf(tenantId, position));
  }

  /** WalletHoldPlaced -> BookingPlaced (policy as of the hold). If the booking cannot be placed, the hold is released. */
  async placeBookingAfterHold(trigger: Trigger): Promise<HandleResult<BookingState>> {
    const d = trigger.data;
    const t = trigger.metadata.tenantId;
    const bookingId = str(d, 'bookingId');
    try {
      const policy = await this.policyAsOf(t, trigger.position);
      return await this.runStep(
        trigger,
        'place-booking',
        bookingDecider,
        bookingStream(t, bookingId),
        () => ({
          type: 'PlaceBooking',
          bookingId,
          studentId: str(d, 'studentId'),
          tutorId: str(d, 'tutorId'),
          price: num(d, 'amount'),
          currency: str(d, 'currency'),
          scheduledAt: str(d, 'scheduledAt'),
          holdId: str(d, 'holdId'),
          policy,
          placedAt: trigger.metadata.occurredAt,
        }),
      );
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      // The booking can never be placed (e.g. its id is taken): give the student the money back.
      const studentId = str(d, 'studentId');
      await this.runStep(
        trigger,
        'release-unplaced-hold',
        walletDecider,
        walletStream(t, studentId),
        (ctx) => ({
          type: 'ReleaseWalletHold',
          studentId,
          holdId: str(d, 'holdId'),
          reason: 'cancelled',
          fee: 0,
          tutorShare: 0,
          commission: 0,
          entryId: entryIdFor(ctx, 'ReleaseWalletHold'),
        }),
      ).catch(ignoreRefusal);
      throw error;
    }
  }

  /** BookingCompleted -> WalletHoldCaptured. */
  async captureAfterCompletion(trigger: Trigger): Promise<Trigger> {
    const d = trigger.data;
    const result = await this.runStep(
      trigger,
      'capture-hold',
      walletDecider,
      studentWallet(trigger),
      (ctx) => ({
        type: 'CaptureWalletHold',
        studentId: str(d, 'studentId'),
        holdId: str(d, 'holdId'),
        captured: num(d, 'captured'),
        tutorShare: num(d, 'tutorShare'),
        commission: num(d, 'commission'),
        entryId: entryIdFor(ctx, 'CaptureWalletHold'),
      }),
    );
    return triggerOf(result, 'WalletHoldCaptured');
  }

  /** BookingCancelled / BookingExpired -> WalletHoldReleased (with the late fee, if any). */
  async releaseAfterBookingEnded(trigger: Trigger): Promise<Trigger> {
    const d = trigger.data;
    const cancelled = trigger.type === 'BookingCancelled';
    const result = await this.runStep(
      trigger,
      'release-hold',
      walletDecider,
      studentWallet(trigger),
      (ctx) => ({
        type: 'ReleaseWalletHold',
        studentId: str(d, 'studentId'),
        holdId: str(d, 'holdId'),
        reason: cancelled ? 'cancelled' : 'expired',
        fee: cancelled ? num(d, 'fee') : 0,
        tutorShare: cancelled ? num(d, 'tutorShare') : 0,
        commission: cancelled ? num(d, 'commission') : 0,
        entryId: entryIdFor(ctx, 'ReleaseWalletHold'),
      }),
    );
    return triggerOf(result, 'WalletHoldReleased');
  }

  /**
   * WalletHoldCaptured / WalletHoldReleased with a fee -> TutorEarningsRecorded. clearableAt comes from
   * the booking's own event, so a late or repeated step never shifts it. Nothing to record: null.
   */
  async recordEarningsAfterResolution(trigger: Trigger): Promise<Trigger | null> {
    const d = trigger.data;
    const amount = num(d, 'tutorShare');
    if (amount === 0) return null;
    const t = trigger.metadata.tenantId;
    const bookingId = str(d, 'bookingId');
    const completion = trigger.type === 'WalletHoldCaptured';
    const source = await this.findEvent(
      bookingStream(t, bookingId),
      completion ? 'BookingCompleted' : 'BookingCancelled',
    );
    const clearableAt = source.data.earningsClearableAt;
    if (typeof clearableAt !== 'string') {
      throw new Error(
        `booking ${bookingId}: ${source.type} has no earningsClearableAt for a fee of ${amount}`,
      );
    }
    const tutorId = str(d, 'tutorId');
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
        currency: str(d, 'currency'),
        source: completion ? 'completion' : 'cancellation_fee',
        earnedAt: str(source.data, completion ? 'completedAt' : 'cancelledAt'),
        clearableAt,
      }),
    );
    return triggerOf(result, 'TutorEarningsRecorded');
  }

  /** BookingRefunded -> WalletRefunded (Dr refund clearing + commission, Cr wallet). */
  async refundWalletAfterBookingRefund(trigger: Trigger): Promise<Trigger> {
    const d = trigger.data;
    const result = await this.runStep(
      trigger,
      'refund-wallet',
      walletDecider,
      studentWallet(trigger),
      (ctx) => ({
        type: 'RefundToWallet',
        studentId: str(d, 'studentId'),
        refundId: str(d, 'refundId'),
        bookingId: str(d, 'bookingId'),
        amount: num(d, 'amount'),
        tutorPart: num(d, 'tutorPart'),
        commissionPart: num(d, 'commissionPart'),
        currency: str(d, 'currency'),
        entryId: entryIdFor(ctx, 'RefundToWallet'),
      }),
    );
    return triggerOf(result, 'WalletRefunded');
  }

  /** WalletRefunded -> TutorEarningsReversed (closes the refund clearing account). Nothing to reverse: null. */
  async reverseEarningsAfterWalletRefund(trigger: Trigger): Promise<Trigger | null> {
    const d = trigger.data;
    const amount = num(d, 'tutorPart');
    if (amount === 0) return null;
    const tutorId = str(d, 'tutorId');
    const stream = tutorStream(trigger.metadata.tenantId, tutorId);
    const result = await this.runStep(trigger, 'reverse-earnings', tutorDecider, stream, (ctx) => ({
      type: 'ReverseEarnings',
      tutorId,
      bookingId: str(d, 'bookingId'),
      refundId: str(d, 'refundId'),
      amount,
      currency: str(d, 'currency'),
      entryId: entryIdFor(ctx, 'ReverseEarnings'),
    }));
    return triggerOf(result, 'TutorEarningsReversed');
  }

  /** TopUpSucceeded -> WalletToppedUp (Dr stripe:balance, Cr wallet). */
  async creditWalletAfterTopUp(trigger: Trigger): Promise<Trigger> {
    const d = trigger.data;
    const result = await this.runStep(
      trigger,
      'credit-wallet',
      walletDecider,
      studentWallet(trigger),
      (ctx) => ({
        type: 'CreditTopUp',
        studentId: str(d, 'studentId'),
        topUpId: str(d, 'topUpId'),
        paymentIntentId: str(d, 'paymentIntentId'),
        amount: num(d, 'amount'),
        currency: str(d, 'currency'),
        entryId: entryIdFor(ctx, 'CreditTopUp'),
      }),
    );
    return triggerOf(result, 'WalletToppedUp');
  }

  /** WalletRefundedToCard -> TopUpRefundedToCard (the top-up's record of the card refund). */
  async recordCardRefundAfterWalletRefund(trigger: Trigger): Promise<void> {
    const d = trigger.data;
    const stream = topUpStream(trigger.metadata.tenantId, str(d, 'topUpId'));
    await this.runStep(trigger, 'record-card-refund', topUpDecider, stream, () => ({
      type: 'RecordTopUpRefundToCard',
      stripeRefundId: str(d, 'stripeRefundId'),
      amount: num(d, 'amount'),
      currency: str(d, 'currency'),
      refundedAt: trigger.metadata.occurredAt,
    }));
  }

  /** TutorPayoutHoldPlaced -> PayoutRequested. If the payout cannot be requested, the hold is released. */
  async requestPayoutAfterHold(trigger: Trigger): Promise<HandleResult<PayoutState>> {
    const d = trigger.data;
    const t = trigger.metadata.tenantId;
    const payoutId = str(d, 'payoutId');
    const tutorId = str(d, 'tutorId');
    try {
      return await this.runStep(trigger, 'request-payout', payoutDecider, payoutStream(t, payoutId), () => ({
        type: 'RequestPayout',
        payoutId,
        tutorId,
        amount: num(d, 'amount'),
        currency: str(d, 'currency'),
        holdId: str(d, 'holdId'),
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
    trigger: Trigger,
    stripeIds: { stripeTransferId?: string | null; stripePayoutId?: string | null } = {},
  ): Promise<HandleResult<PayoutState> | null> {
    const d = trigger.data;
    const t = trigger.metadata.tenantId;
    const stream = payoutStream(t, str(d, 'payoutId'));
    const paid = trigger.type === 'TutorPayoutHoldPosted';
    const step = paid ? 'payout-paid' : 'payout-failed';
    const current = await this.handler.load(payoutDecider, stream);
    const open = current.state.status === 'requested' || current.state.status === 'submitted';
    const close = () =>
      this.runStep(trigger, step, payoutDecider, stream, () =>
        paid ? markPaid(open ? stripeIds : {}, trigger) : markFailed(trigger),
      );
    if (open) return close();
    // Already closed by this very step (a repeat) or never opened: the handler replays or we skip.
    return close().catch((error: unknown) => {
      if (error instanceof DomainError) return null;
      throw error;
    });
  }

  /**
   * One step of a flow: the command `build` makes, on `streamName`, under the step's context (its
   * idempotency key, and so its event and entry ids, derive from the trigger's id). `const` keeps the
   * built command's literal `type`, so the decider's command union checks it as the handler would.
   */
  private async runStep<const C extends { type: string }, E extends DomainEventLike, S>(
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

  /** The first event of `type` in a short stream (a booking's lifecycle event). */
  async findEvent(streamName: string, type: string): Promise<RecordedEvent> {
    const found = (await this.readShortStream(streamName)).find((e) => e.type === type);
    if (!found) throw new DomainError('not_found', `${streamName} has no ${type}`);
    return found;
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
const studentWallet = (trigger: Trigger) =>
  walletStream(trigger.metadata.tenantId, str(trigger.data, 'studentId'));

/** A compensating step refused because it already ran (a retry): the original rejection is what matters. */
function ignoreRefusal(error: unknown): void {
  if (!(error instanceof DomainError)) throw error;
}

function markPaid(
  ids: { stripeTransferId?: string | null; stripePayoutId?: string | null },
  trigger: Trigger,
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

function markFailed(trigger: Trigger): { type: 'MarkPayoutFailed'; reason: string; failedAt: string } {
  return {
    type: 'MarkPayoutFailed',
    reason: str(trigger.data, 'reason'),
    failedAt: trigger.metadata.occurredAt,
  };
}
