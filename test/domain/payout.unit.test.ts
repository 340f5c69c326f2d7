import { describe, it } from 'vitest';
import {
  type DeferPayoutSubmission,
  type PayoutCommand,
  payoutDecider,
  type RequestPayout,
} from '../../src/domain/payout.js';
import { BAD_AMOUNTS, uuid } from './fixtures.js';
import { history, spec } from './spec.js';

const NOW = '2026-04-01T10:00:00.000Z';
const request = (amount = 2000): RequestPayout => ({
  type: 'RequestPayout',
  payoutId: 'p1',
  tutorId: 't1',
  amount,
  currency: 'usd',
  holdId: uuid('payout-hold-p1'),
  requestedAt: NOW,
});
const submit = (): PayoutCommand => ({
  type: 'SubmitPayout',
  stripeTransferId: 'tr_1',
  stripePayoutId: 'po_1',
  submittedAt: NOW,
});
const paid = (): PayoutCommand => ({ type: 'MarkPayoutPaid', paidAt: NOW });
const failed = (): PayoutCommand => ({ type: 'MarkPayoutFailed', reason: 'account_closed', failedAt: NOW });
const ref = { payoutId: 'p1', tutorId: 't1', amount: 2000, currency: 'usd' };

const requested = () => history(payoutDecider, [request()]);
const submitted = () => history(payoutDecider, [request(), submit()]);

describe('payout', () => {
  it('records a request', () => {
    spec(payoutDecider)
      .given([])
      .when(request())
      .thenEmits([
        { type: 'PayoutRequested', data: { ...ref, holdId: uuid('payout-hold-p1'), requestedAt: NOW } },
      ]);
  });
  it.each(BAD_AMOUNTS)('rejects a %s amount', (_why, amount) => {
    spec(payoutDecider)
      .given([])
      .when(request(amount as number))
      .thenFails('validation_failed');
  });
  it('rejects a second request and bad fields', () => {
    spec(payoutDecider).given(requested()).when(request()).thenFails('invalid_state');
    spec(payoutDecider)
      .given([])
      .when({ ...request(), currency: 'xx' })
      .thenFails('validation_failed');
    spec(payoutDecider)
      .given([])
      .when({ ...request(), holdId: 'h' })
      .thenFails('validation_failed');
  });
  it('records the Stripe transfer and payout', () => {
    spec(payoutDecider)
      .given(requested())
      .when(submit())
      .thenEmits([
        {
          type: 'PayoutSubmitted',
          data: { ...ref, stripeTransferId: 'tr_1', stripePayoutId: 'po_1', submittedAt: NOW },
        },
      ]);
    spec(payoutDecider).given(submitted()).when(submit()).thenFails('invalid_state');
    spec(payoutDecider)
      .given(requested())
      .when({ type: 'SubmitPayout', stripeTransferId: '', stripePayoutId: null, submittedAt: NOW })
      .thenFails('validation_failed');
    spec(payoutDecider)
      .given(requested())
      .when({ type: 'MarkPayoutPaid', paidAt: 'yesterday' })
      .thenFails('validation_failed');
    spec(payoutDecider).given([]).when(submit()).thenFails('not_found');
  });
  it('marks paid from requested or submitted, keeping the Stripe ids', () => {
    spec(payoutDecider)
      .given(submitted())
      .when(paid())
      .thenEmits([
        {
          type: 'PayoutPaid',
          data: { ...ref, stripeTransferId: 'tr_1', stripePayoutId: 'po_1', paidAt: NOW },
        },
      ]);
    spec(payoutDecider)
      .given(requested())
      .when({ type: 'MarkPayoutPaid', stripeTransferId: 'tr_9', paidAt: NOW })
      .thenEmits([
        { type: 'PayoutPaid', data: { ...ref, stripeTransferId: 'tr_9', stripePayoutId: null, paidAt: NOW } },
      ]);
  });
  it('marks failed from requested or submitted', () => {
    spec(payoutDecider)
      .given(submitted())
      .when(failed())
      .thenEmits([{ type: 'PayoutFailed', data: { ...ref, reason: 'account_closed', failedAt: NOW } }]);
    spec(payoutDecider)
      .given(requested())
      .when({ type: 'MarkPayoutFailed', reason: '', failedAt: NOW })
      .thenFails('validation_failed');
  });
  it('paid and failed are final; unknown payouts are not_found', () => {
    const paidOut = history(payoutDecider, [request(), paid()]);
    const failedOut = history(payoutDecider, [request(), failed()]);
    spec(payoutDecider).given(paidOut).when(paid()).thenFails('invalid_state');
    spec(payoutDecider).given(paidOut).when(failed()).thenFails('invalid_state');
    spec(payoutDecider).given(failedOut).when(paid()).thenFails('invalid_state');
    spec(payoutDecider).given(failedOut).when(failed()).thenFails('invalid_state');
    spec(payoutDecider).given(failedOut).when(submit()).thenFails('invalid_state');
    spec(payoutDecider).given([]).when(paid()).thenFails('not_found');
    spec(payoutDecider).given([]).when(failed()).thenFails('not_found');
  });
});

describe('payout waiting for Stripe funds (PayoutSubmissionDeferred)', () => {
  const LATER = '2026-04-01T10:15:00.000Z';
  const defer = (attempt: number, stripeTransferId: string | null = null): DeferPayoutSubmission => ({
    type: 'DeferPayoutSubmission',
    attempt,
    code: 'balance_insufficient',
    message: 'You have insufficient available funds in your Stripe account.',
    stripeTransferId,
    retryAt: LATER,
    deferredAt: NOW,
  });
  it('records the refused attempt, in order, keeping a transfer that went through', () => {
    spec(payoutDecider)
      .given(requested())
      .when(defer(0))
      .thenEmits([
        {
          type: 'PayoutSubmissionDeferred',
          data: {
            ...ref,
            attempt: 0,
            code: 'balance_insufficient',
            message: 'You have insufficient available funds in your Stripe account.',
            stripeTransferId: null,
            retryAt: LATER,
            deferredAt: NOW,
          },
        },
      ]);
    const once = history(payoutDecider, [request(), defer(0)]);
    spec(payoutDecider)
      .given(once)
      .when(defer(0))
      .thenFails('invalid_state', /current attempt \(1\)/);
    spec(payoutDecider).given(once).when(defer(2)).thenFails('invalid_state');
    spec(payoutDecider)
      .given(once)
      .when(defer(1, 'tr_9'))
      .thenEmits((e) => e);
    const transferred = history(payoutDecider, [request(), defer(0, 'tr_9')]);
    spec(payoutDecider).given(transferred).when(defer(1, 'tr_other')).thenFails('invalid_state');
    spec(payoutDecider)
      .given(transferred)
      .when({ type: 'SubmitPayout', stripeTransferId: 'tr_9', stripePayoutId: 'po_1', submittedAt: LATER })
      .thenEmits((e) => e);
  });
  it('only an open, requested payout is deferred, with retryAt after deferredAt', () => {
    spec(payoutDecider).given([]).when(defer(0)).thenFails('not_found');
    spec(payoutDecider).given(submitted()).when(defer(0)).thenFails('invalid_state');
    spec(payoutDecider)
      .given(requested())
      .when({ ...defer(0), retryAt: NOW })
      .thenFails('validation_failed');
    spec(payoutDecider)
      .given(history(payoutDecider, [request(), defer(0)]))
      .when(failed())
      .thenEmits((e) => e);
  });
});
