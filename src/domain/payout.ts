import type { Decider, DomainEvent } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { assertAmount, assertCurrency } from './money.js';
import { parseInstant, requireEntityId, requireText, requireUuid, toIso } from './validate.js';

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
  failedAt: string;
}

export type PayoutCommand = RequestPayout | SubmitPayout | MarkPayoutPaid | MarkPayoutFailed;

interface PayoutRef {
  payoutId: string;
  tutorId: string;
  amount: number;
  currency: string;
}

export type PayoutRequested = DomainEvent<
  'PayoutRequested',
  PayoutRef & { holdId: string; requestedAt: string }
>;
export type PayoutSubmitted = DomainEvent<
  'PayoutSubmitted',
  PayoutRef & { stripeTransferId: string; stripePayoutId: string | null; submittedAt: string }
>;
export type PayoutPaid = DomainEvent<
  'PayoutPaid',
  PayoutRef & { stripeTransferId: string | null; stripePayoutId: string | null; paidAt: string }
>;
export type PayoutFailed = DomainEvent<'PayoutFailed', PayoutRef & { reason: string; failedAt: string }>;

export type PayoutEvent = PayoutRequested | PayoutSubmitted | PayoutPaid | PayoutFailed;

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
      requireOpen(state, 'fail');
      return [{ type: 'PayoutFailed', data: { ...ref, reason, failedAt } }];
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
        state.status === 'requested' || state.status === 'submitted',
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
