import type { Registry } from 'prom-client';
import { DomainError, InvariantViolation } from '../domain/errors.js';
import type { EventStore, RecordedEvent } from '../eventstore/port.js';
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

/**
 * The flow table of docs/ledger-flows.md ("Process managers"): for each trigger event, the next step.
 * The command path performs the same steps inline; these only matter when a request died halfway (or
 * for steps that never run in a request, like submitting a payout to Stripe).
 */
export function flowStepFor(service: LedgerService): (event: RecordedEvent) => Promise<void> {
  const steps = service.steps;
  const table: Record<string, (trigger: Trigger) => Promise<unknown>> = {
    WalletHoldPlaced: (t) => steps.placeBookingAfterHold(t),
    BookingCompleted: (t) => steps.captureAfterCompletion(t),
    WalletHoldCaptured: (t) => steps.recordEarningsAfterResolution(t),
    WalletHoldReleased: async (t) => {
      if (typeof t.data.fee === 'number' && t.data.fee > 0) await steps.recordEarningsAfterResolution(t);
    },
    BookingCancelled: (t) => steps.releaseAfterBookingEnded(t),
    BookingExpired: (t) => steps.releaseAfterBookingEnded(t),
    BookingRefunded: (t) => steps.refundWalletAfterBookingRefund(t),
    WalletRefunded: (t) => steps.reverseEarningsAfterWalletRefund(t),
    TopUpSucceeded: (t) => steps.creditWalletAfterTopUp(t),
    WalletRefundedToCard: (t) => steps.recordCardRefundAfterWalletRefund(t),
    TutorPayoutHoldPlaced: (t) => steps.requestPayoutAfterHold(t),
    PayoutRequested: (t) => service.submitPayout(t),
    TutorPayoutHoldPosted: (t) => steps.closePayoutAfterHoldResolved(t),
    TutorPayoutHoldReleased: (t) => steps.closePayoutAfterHoldResolved(t),
  };
  return async (event) => {
    const step = table[event.type];
    if (step) await step(event);
  };
}

export const FLOW_TRIGGER_TYPES = [
  'WalletHoldPlaced',
  'BookingCompleted',
  'WalletHoldCaptured',
  'WalletHoldReleased',
  'BookingCancelled',
  'BookingExpired',
  'BookingRefunded',
  'WalletRefunded',
  'TopUpSucceeded',
  'WalletRefundedToCard',
  'TutorPayoutHoldPlaced',
  'PayoutRequested',
  'TutorPayoutHoldPosted',
  'TutorPayoutHoldReleased',
];

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
