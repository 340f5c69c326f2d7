import type { Registry } from 'prom-client';
import { DomainError, InvariantViolation } from '../domain/errors.js';
import { decodeEvent, type LedgerEventType } from '../domain/events.js';
import type { EventStore, RecordedEvent } from '../eventstore/port.js';
import { carryOutApprovedProposal } from './adjustmentProposals.js';
import type { CheckpointStore } from './checkpointStore.js';
import { IdempotencyKeyReusedError } from './errors.js';
import type { Trigger } from './flowContext.js';
import type { LedgerService } from './ledgerService.js';
import type { Logger } from './logger.js';
import {
  type FailureKind,
  type ProcessManagerHandle,
  type ProcessManagerRunnerOptions,
  startProcessManagerRunner,
} from './processManagerRunner.js';

/** The next step of a flow for each trigger event type. */
type FlowTable = {
  [T in LedgerEventType]?: (service: LedgerService, trigger: Trigger<T>) => Promise<unknown>;
};

/**
 * The flow table of docs/ledger-flows.md ("Process managers"): for each trigger event, the next step.
 * The command path performs the same steps inline; these only matter when a request died halfway (or
 * for steps that never run in a request, like submitting a payout to Stripe).
 */
const FLOW_TABLE = {
  // A promo code refused after the hold ends the flow (hold released): not a poison event.
  WalletHoldPlaced: (s, t) => s.steps.placeBookingAfterHold(t).catch(ignorePromoRefusal),
  BookingCompleted: (s, t) => s.steps.captureAfterCompletion(t),
  WalletHoldCaptured: async (s, t) => {
    await s.steps.recordEarningsAfterResolution(t);
    await s.referrals.qualifyAfterCapture(t);
  },
  WalletHoldReleased: async (s, t) => {
    if (t.data.fee > 0) await s.steps.recordEarningsAfterResolution(t);
  },
  BookingCancelled: (s, t) => s.steps.releaseAfterBookingEnded(t),
  BookingExpired: (s, t) => s.steps.releaseAfterBookingEnded(t),
  BookingRefunded: async (s, t) => {
    await s.steps.refundWalletAfterBookingRefund(t);
    await s.referrals.clawBackAfterRefund(t);
  },
  WalletRefunded: (s, t) => s.steps.reverseEarningsAfterWalletRefund(t),
  TopUpSucceeded: (s, t) => s.steps.creditWalletAfterTopUp(t),
  WalletRefundedToCard: (s, t) => s.steps.recordCardRefundAfterWalletRefund(t),
  WalletCardRefundFailed: (s, t) => s.steps.recordCardRefundFailureAfterReversal(t),
  TutorPayoutHoldPlaced: (s, t) => s.steps.requestPayoutAfterHold(t),
  PayoutRequested: (s, t) => s.submitPayout(t),
  TutorPayoutHoldPosted: (s, t) => s.steps.closePayoutAfterHoldResolved(t),
  TutorPayoutHoldReleased: (s, t) => s.steps.closePayoutAfterHoldResolved(t),
  TutorPayoutReversed: (s, t) => s.steps.failPaidPayoutAfterReversal(t),
  AdjustmentApproved: (s, t) => carryOutApprovedProposal(s, t),
  // A charge the subscription refused is refunded by the step itself; the refusal is the request's answer.
  WalletSubscriptionCharged: (s, t) => s.subscriptions.recordCharge(t).catch(ignoreDomainRefusal),
  SubscriptionCanceled: (s, t) => s.subscriptions.endInWallet(t),
  ReferralQualified: (s, t) => s.referrals.rewardReferrer(t),
  ReferralClawedBack: (s, t) => s.referrals.clawBackReferrer(t),
} satisfies FlowTable;

function ignoreDomainRefusal(error: unknown): void {
  if (!(error instanceof DomainError)) throw error;
}

type FlowTriggerType = keyof typeof FLOW_TABLE;

function ignorePromoRefusal(error: unknown): void {
  if (!(error instanceof DomainError) || error.code !== 'promo_code_rejected') throw error;
}

/** The event types that start a flow step: the process managers' subscription filter. */
export const FLOW_TRIGGER_TYPES = Object.keys(FLOW_TABLE) as FlowTriggerType[];

/** Runs the flow step a recorded event triggers (none for the other events). */
export function flowStepFor(service: LedgerService): (event: RecordedEvent) => Promise<void> {
  const steps: FlowTable = FLOW_TABLE;
  return async (recorded) => {
    if (!Object.hasOwn(FLOW_TABLE, recorded.type)) return;
    const trigger = decodeEvent(recorded);
    // The table pairs each type with its step; TypeScript cannot correlate the two through the lookup.
    const step = steps[trigger.type] as ((s: LedgerService, t: Trigger) => Promise<unknown>) | undefined;
    if (step) await step(service, trigger);
  };
}

/** Rejections and bugs can never succeed on retry (poison); everything else is worth retrying. */
export function classifyStepFailure(error: unknown): { kind: FailureKind; code: string } {
  if (error instanceof DomainError) return { kind: 'poison', code: error.code };
  if (error instanceof IdempotencyKeyReusedError) return { kind: 'poison', code: error.code };
  if (error instanceof InvariantViolation) return { kind: 'poison', code: 'invariant_violation' };
  const code = (error as { code?: unknown })?.code;
  return { kind: 'transient', code: typeof code === 'string' ? code : 'error' };
}

export interface StartProcessManagersOptions {
  service: LedgerService;
  store: EventStore;
  checkpoints: CheckpointStore;
  /** Checkpoint name; one active runner per name is the intended deployment. */
  name?: string;
  logger?: Logger;
  registry?: Registry;
  tuning?: Pick<
    ProcessManagerRunnerOptions,
    'maxAttemptsPerEvent' | 'backoff' | 'restartDelayMs' | 'maxBuffered'
  >;
}

export function startProcessManagers(options: StartProcessManagersOptions): ProcessManagerHandle {
  return startProcessManagerRunner({
    name: options.name ?? 'ledger-flows',
    store: options.store,
    checkpoints: options.checkpoints,
    filter: { eventTypes: FLOW_TRIGGER_TYPES },
    handle: flowStepFor(options.service),
    classify: classifyStepFailure,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
    ...options.tuning,
  });
}
