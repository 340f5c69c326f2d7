import { type Static, Type } from '@sinclair/typebox';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { assertAmount, assertCurrency } from './money.js';
import {
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  PositiveAmountSchema,
  StripeIdSchema,
  strictObject,
  TextSchema,
  UuidSchema,
} from './schema.js';
import {
  parseInstant,
  requireEntityId,
  requireIntegerInRange,
  requireText,
  requireUuid,
  toIso,
  validationFailed,
} from './validate.js';

/**
 * A payout: stream `payout-{t}.{payoutId}`. The money is held and moved in the tutor stream (the owner
 * of tutor available earnings); this stream tracks the payout's life with Stripe:
 * requested -> submitted (transfer/payout created) -> paid | failed. Paid and failed are final.
 */

export interface RequestPayout {
  type: 'RequestPayout';
  payoutId: string;
  tutorId: string;
  amount: number;
  currency: string;
  /** The tutor stream's hold for this payout (TutorPayoutHoldPlaced.holdId). */
  holdId: string;
  requestedAt: string;
}

export interface SubmitPayout {
  type: 'SubmitPayout';
  stripeTransferId: string;
  stripePayoutId: string | null;
  submittedAt: string;
}

export interface MarkPayoutPaid {
  type: 'MarkPayoutPaid';
  stripeTransferId?: string | null;
  stripePayoutId?: string | null;
  paidAt: string;
}

export interface MarkPayoutFailed {
  type: 'MarkPayoutFailed';
  reason: string;
  /**
   * Stripe's failure_code. Required to fail a payout already paid: Stripe reports some failures after
   * `paid` (the tutor stream reversed the payout first: TutorPayoutReversed).
   */
  failureCode?: string;
  failedAt: string;
}

/**
 * Stripe refused a step of the submission for want of available funds (`balance_insufficient`: card
 * money is pending for days). Not a failure: the submission is tried again at `retryAt` with a new
 * idempotency key (Stripe keeps the refusal under the old one). `stripeTransferId`: the transfer went
 * through and only the payout on the tutor's account waits (its funds are pending there).
 */
export interface DeferPayoutSubmission {
  type: 'DeferPayoutSubmission';
  /** The attempt that was refused (0 = the first); must be the payout's current attempt. */
  attempt: number;
  code: string;
  message: string;
  stripeTransferId: string | null;
  retryAt: string;
  deferredAt: string;
}

export type PayoutCommand =
  | RequestPayout
  | SubmitPayout
  | DeferPayoutSubmission
  | MarkPayoutPaid
  | MarkPayoutFailed;

/** Bound on deferred submissions of one payout (the command layer gives up long before: ledgerService.ts). */
export const MAX_SUBMISSION_ATTEMPTS = 1_000;

const payoutRef = {
  payoutId: EntityIdSchema,
  tutorId: EntityIdSchema,
  amount: PositiveAmountSchema,
  currency: CurrencySchema,
};
type PayoutRef = Static<ReturnType<typeof strictObject<typeof payoutRef>>>;

export const PAYOUT_EVENTS = {
  PayoutRequested: strictObject({ ...payoutRef, holdId: UuidSchema, requestedAt: InstantSchema }),
  PayoutSubmitted: strictObject({
    ...payoutRef,
    stripeTransferId: StripeIdSchema,
    stripePayoutId: Nullable(StripeIdSchema),
    submittedAt: InstantSchema,
  }),
  PayoutSubmissionDeferred: strictObject({
    ...payoutRef,
    attempt: Type.Integer({ minimum: 0, maximum: MAX_SUBMISSION_ATTEMPTS }),
    code: TextSchema(100),
    message: TextSchema(),
    stripeTransferId: Nullable(StripeIdSchema),
    retryAt: InstantSchema,
    deferredAt: InstantSchema,
  }),
  PayoutPaid: strictObject({
    ...payoutRef,
    stripeTransferId: Nullable(StripeIdSchema),
    stripePayoutId: Nullable(StripeIdSchema),
    paidAt: InstantSchema,
  }),
  PayoutFailed: strictObject({
    ...payoutRef,
    reason: TextSchema(),
    /** Stripe's failure_code (absent in events written before it was recorded). */
    failureCode: Type.Optional(TextSchema(100)),
    /** The payout had been reported paid (PayoutPaid) and failed after all. */
    afterPaid: Type.Optional(Type.Literal(true)),
    failedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type PayoutEvent = EventsOf<typeof PAYOUT_EVENTS>;
export type PayoutRequested = EventOf<typeof PAYOUT_EVENTS, 'PayoutRequested'>;
export type PayoutSubmitted = EventOf<typeof PAYOUT_EVENTS, 'PayoutSubmitted'>;
export type PayoutPaid = EventOf<typeof PAYOUT_EVENTS, 'PayoutPaid'>;
export type PayoutFailed = EventOf<typeof PAYOUT_EVENTS, 'PayoutFailed'>;
export type PayoutSubmissionDeferred = EventOf<typeof PAYOUT_EVENTS, 'PayoutSubmissionDeferred'>;

export type PayoutStatus = 'none' | 'requested' | 'submitted' | 'paid' | 'failed';

export interface PayoutState {
  status: PayoutStatus;
  payoutId: string | null;
  tutorId: string | null;
  amount: number;
  currency: string | null;
  holdId: string | null;
  stripeTransferId: string | null;
  stripePayoutId: string | null;
  failureReason: string | null;
  requestedAt: string | null;
  /** Submission attempts Stripe refused for want of funds; the next attempt's number. */
  deferrals: number;
  /** When the next attempt is due (set by a deferral). */
  retryAt: string | null;
  /** Why the last attempt was deferred (`balance_insufficient: …`). */
  deferredReason: string | null;
}

export const initialPayoutState = (): PayoutState => ({
  status: 'none',
  payoutId: null,
  tutorId: null,
  amount: 0,
  currency: null,
  holdId: null,
  stripeTransferId: null,
  stripePayoutId: null,
  failureReason: null,
  requestedAt: null,
  deferrals: 0,
  retryAt: null,
  deferredReason: null,
});

function requirePayout(state: PayoutState): PayoutRef {
  if (state.status === 'none' || !state.payoutId || !state.tutorId || !state.currency) {
    throw new DomainError('not_found', 'payout not found');
  }
  return { payoutId: state.payoutId, tutorId: state.tutorId, amount: state.amount, currency: state.currency };
}

function requireOpen(state: PayoutState, action: string): void {
  if (state.status !== 'requested' && state.status !== 'submitted') {
    throw new DomainError('invalid_state', `cannot ${action} a ${state.status} payout`, {
      status: state.status,
    });
  }
}

const optionalStripeId = (value: unknown, field: string): string | null =>
  value === undefined || value === null ? null : requireText(value, field, 255);

export function decidePayout(command: PayoutCommand, state: PayoutState): PayoutEvent[] {
  switch (command.type) {
    case 'RequestPayout': {
      const payoutId = requireEntityId(command.payoutId, 'payoutId');
      const tutorId = requireEntityId(command.tutorId, 'tutorId');
      const amount = assertAmount(command.amount);
      const currency = assertCurrency(command.currency);
      const holdId = requireUuid(command.holdId, 'holdId');
      const requestedAt = toIso(parseInstant(command.requestedAt, 'requestedAt'));
      if (state.status !== 'none') {
        throw new DomainError('invalid_state', `payout ${payoutId} already exists (${state.status})`, {
          status: state.status,
        });
      }
      return [
        { type: 'PayoutRequested', data: { payoutId, tutorId, amount, currency, holdId, requestedAt } },
      ];
    }
    case 'SubmitPayout': {
      const ref = requirePayout(state);
      const stripeTransferId = requireText(command.stripeTransferId, 'stripeTransferId', 255);
      const stripePayoutId = optionalStripeId(command.stripePayoutId, 'stripePayoutId');
      const submittedAt = toIso(parseInstant(command.submittedAt, 'submittedAt'));
      if (state.status !== 'requested') {
        throw new DomainError('invalid_state', `cannot submit a ${state.status} payout`, {
          status: state.status,
        });
      }
      return [{ type: 'PayoutSubmitted', data: { ...ref, stripeTransferId, stripePayoutId, submittedAt } }];
    }
    case 'DeferPayoutSubmission': {
      const ref = requirePayout(state);
      const attempt = requireIntegerInRange(command.attempt, 'attempt', 0, MAX_SUBMISSION_ATTEMPTS);
      const code = requireText(command.code, 'code', 100);
      const message = requireText(command.message, 'message');
      const deferredAtMs = parseInstant(command.deferredAt, 'deferredAt');
      const retryAtMs = parseInstant(command.retryAt, 'retryAt');
      if (retryAtMs <= deferredAtMs)
        validationFailed('retryAt must be after deferredAt', { field: 'retryAt' });
      const transfer = optionalStripeId(command.stripeTransferId, 'stripeTransferId');
      if (state.status !== 'requested') {
        throw new DomainError('invalid_state', `cannot defer a ${state.status} payout`, {
          status: state.status,
        });
      }
      if (attempt !== state.deferrals) {
        throw new DomainError(
          'invalid_state',
          `attempt ${attempt} is not the payout's current attempt (${state.deferrals})`,
          {
            attempt: state.deferrals,
          },
        );
      }
      if (state.stripeTransferId !== null && transfer !== null && transfer !== state.stripeTransferId) {
        throw new DomainError(
          'invalid_state',
          `payout ${ref.payoutId} already has transfer ${state.stripeTransferId}, not ${transfer}`,
          { stripeTransferId: state.stripeTransferId },
        );
      }
      return [
        {
          type: 'PayoutSubmissionDeferred',
          data: {
            ...ref,
            attempt,
            code,
            message,
            stripeTransferId: transfer,
            retryAt: toIso(retryAtMs),
            deferredAt: toIso(deferredAtMs),
          },
        },
      ];
    }
    case 'MarkPayoutPaid': {
      const ref = requirePayout(state);
      const stripeTransferId = optionalStripeId(command.stripeTransferId, 'stripeTransferId');
      const stripePayoutId = optionalStripeId(command.stripePayoutId, 'stripePayoutId');
      const paidAt = toIso(parseInstant(command.paidAt, 'paidAt'));
      requireOpen(state, 'mark paid');
      return [
        {
          type: 'PayoutPaid',
          data: {
            ...ref,
            stripeTransferId: stripeTransferId ?? state.stripeTransferId,
            stripePayoutId: stripePayoutId ?? state.stripePayoutId,
            paidAt,
          },
        },
      ];
    }
    case 'MarkPayoutFailed': {
      const ref = requirePayout(state);
      const reason = requireText(command.reason, 'reason');
      const failedAt = toIso(parseInstant(command.failedAt, 'failedAt'));
      const failureCode =
        command.failureCode === undefined ? undefined : requireText(command.failureCode, 'failureCode', 100);
      if (state.status === 'paid' && failureCode !== undefined) {
        return [{ type: 'PayoutFailed', data: { ...ref, reason, failureCode, afterPaid: true, failedAt } }];
      }
      requireOpen(state, 'fail');
      return [
        {
          type: 'PayoutFailed',
          data: { ...ref, reason, ...(failureCode !== undefined ? { failureCode } : {}), failedAt },
        },
      ];
    }
    default:
      throw new DomainError('validation_failed', 'unknown payout command');
  }
}

export function evolvePayout(state: PayoutState, event: PayoutEvent): PayoutState {
  switch (event.type) {
    case 'PayoutRequested': {
      invariant(state.status === 'none', 'payout requested twice');
      const e = event.data;
      return {
        ...state,
        status: 'requested',
        payoutId: e.payoutId,
        tutorId: e.tutorId,
        amount: e.amount,
        currency: e.currency,
        holdId: e.holdId,
        requestedAt: e.requestedAt,
      };
    }
    case 'PayoutSubmissionDeferred': {
      const e = event.data;
      invariant(state.status === 'requested', `payout deferred from ${state.status}`);
      invariant(
        e.attempt === state.deferrals,
        `payout deferral ${e.attempt} out of order (${state.deferrals})`,
      );
      return {
        ...state,
        deferrals: state.deferrals + 1,
        retryAt: e.retryAt,
        deferredReason: `${e.code}: ${e.message}`,
        stripeTransferId: e.stripeTransferId ?? state.stripeTransferId,
      };
    }
    case 'PayoutSubmitted':
      invariant(state.status === 'requested', `payout submitted from ${state.status}`);
      return {
        ...state,
        status: 'submitted',
        stripeTransferId: event.data.stripeTransferId,
        stripePayoutId: event.data.stripePayoutId,
      };
    case 'PayoutPaid':
      invariant(
        state.status === 'requested' || state.status === 'submitted',
        `payout paid from ${state.status}`,
      );
      return {
        ...state,
        status: 'paid',
        stripeTransferId: event.data.stripeTransferId,
        stripePayoutId: event.data.stripePayoutId,
      };
    case 'PayoutFailed':
      invariant(
        state.status === 'requested' ||
          state.status === 'submitted' ||
          (state.status === 'paid' && event.data.afterPaid === true),
        `payout failed from ${state.status}`,
      );
      return { ...state, status: 'failed', failureReason: event.data.reason };
  }
}

export const payoutDecider: Decider<PayoutCommand, PayoutEvent, PayoutState> = {
  initialState: initialPayoutState,
  decide: decidePayout,
  evolve: evolvePayout,
};
