import { describe, expect, it } from 'vitest';
import { type InitiateTopUp, type TopUpCommand, topUpDecider } from '../../src/domain/topUp.js';
import { BAD_AMOUNTS } from './fixtures.js';
import { history, spec } from './spec.js';

const NOW = '2026-03-01T10:00:00.000Z';
const LIMITS = { topUpMin: 500, topUpMax: 1_000_000, allowedCurrencies: ['usd', 'eur', 'gbp'] };
const initiate = (amount = 2500, currency = 'usd'): InitiateTopUp => ({
  type: 'InitiateTopUp',
  topUpId: 'tu1',
  studentId: 's1',
  amount,
  currency,
  limits: LIMITS,
  initiatedAt: NOW,
});
const intent = (paymentIntentId = 'pi_1'): TopUpCommand => ({
  type: 'RecordTopUpPaymentIntent',
  paymentIntentId,
  clientSecret: 'pi_1_secret_x',
});
const succeed = (amountReceived = 2500, paymentIntentId = 'pi_1', currency = 'usd'): TopUpCommand => ({
  type: 'SucceedTopUp',
  paymentIntentId,
  amountReceived,
  currency,
  succeededAt: NOW,
});
const fail = (paymentIntentId: string | null = 'pi_1'): TopUpCommand => ({
  type: 'FailTopUp',
  paymentIntentId,
  reason: 'card_declined',
  failedAt: NOW,
});
const cardRefund = (amount: number, stripeRefundId = 're_1'): TopUpCommand => ({
  type: 'RecordTopUpRefundToCard',
  stripeRefundId,
  amount,
  currency: 'usd',
  refundedAt: NOW,
});

const initiated = () => history(topUpDecider, [initiate(), intent()]);
const succeeded = () => history(topUpDecider, [initiate(), intent(), succeed()]);
const failed = () => history(topUpDecider, [initiate(), intent(), fail()]);
const ref = { topUpId: 'tu1', studentId: 's1' };

describe('top-up: InitiateTopUp', () => {
  it('initiates a top-up within the tenant limits', () => {
    spec(topUpDecider)
      .given([])
      .when(initiate())
      .thenEmits([
        { type: 'TopUpInitiated', data: { ...ref, amount: 2500, currency: 'usd', initiatedAt: NOW } },
      ]);
  });
  it('accepts the limits themselves', () => {
    spec(topUpDecider)
      .given([])
      .when(initiate(500))
      .thenEmits(() => {});
    spec(topUpDecider)
      .given([])
      .when(initiate(1_000_000))
      .thenEmits(() => {});
  });
  it('rejects amounts outside the limits with limit_exceeded', () => {
    spec(topUpDecider).given([]).when(initiate(499)).thenFails('limit_exceeded');
    spec(topUpDecider).given([]).when(initiate(1_000_001)).thenFails('limit_exceeded');
  });
  it.each(BAD_AMOUNTS)('rejects a %s amount', (_why, amount) => {
    spec(topUpDecider)
      .given([])
      .when(initiate(amount as number))
      .thenFails('validation_failed');
  });
  it('rejects unknown and tenant-disallowed currencies, and a second initiation', () => {
    spec(topUpDecider).given([]).when(initiate(1000, 'zzz')).thenFails('validation_failed');
    spec(topUpDecider).given([]).when(initiate(1000, 'jpy')).thenFails('validation_failed');
    spec(topUpDecider).given(initiated()).when(initiate()).thenFails('invalid_state');
  });
});

describe('top-up: RecordTopUpPaymentIntent', () => {
  it('records the PaymentIntent and its client secret', () => {
    spec(topUpDecider)
      .given(history(topUpDecider, [initiate()]))
      .when(intent())
      .thenEmits([
        {
          type: 'TopUpPaymentIntentCreated',
          data: { ...ref, paymentIntentId: 'pi_1', clientSecret: 'pi_1_secret_x' },
        },
      ]);
  });
  it('rejects a missing PaymentIntent id or client secret', () => {
    const started = history(topUpDecider, [initiate()]);
    spec(topUpDecider)
      .given(started)
      .when({ type: 'RecordTopUpPaymentIntent', paymentIntentId: '', clientSecret: 'x' })
      .thenFails('validation_failed');
    spec(topUpDecider)
      .given(started)
      .when({ type: 'RecordTopUpPaymentIntent', paymentIntentId: 'pi_1', clientSecret: ' ' })
      .thenFails('validation_failed');
  });
  it('rejects a second PaymentIntent, an unknown top-up and a finished one with another intent', () => {
    spec(topUpDecider).given(initiated()).when(intent('pi_2')).thenFails('invalid_state');
    spec(topUpDecider).given([]).when(intent()).thenFails('not_found');
    spec(topUpDecider).given(failed()).when(intent('pi_2')).thenFails('invalid_state');
    spec(topUpDecider).given(succeeded()).when(intent('pi_2')).thenFails('invalid_state');
    // Refused by the gateway before any intent existed: a late intent does not belong to it.
    spec(topUpDecider)
      .given(history(topUpDecider, [initiate(), fail(null)]))
      .when(intent())
      .thenFails('invalid_state');
  });
  it('records nothing when the webhook already settled the top-up with this intent (the request lost the race)', () => {
    spec(topUpDecider)
      .given(history(topUpDecider, [initiate(), succeed()]))
      .when(intent())
      .thenEmits([]);
    spec(topUpDecider)
      .given(history(topUpDecider, [initiate(), fail()]))
      .when(intent())
      .thenEmits([]);
    spec(topUpDecider).given(succeeded()).when(intent()).thenEmits([]);
    spec(topUpDecider)
      .given(history(topUpDecider, [initiate(), succeed()]))
      .when(intent('pi_2'))
      .thenFails('invalid_state');
  });
});

describe('top-up: SucceedTopUp', () => {
  it('succeeds with the amount initiated', () => {
    spec(topUpDecider)
      .given(initiated())
      .when(succeed())
      .thenEmits([
        {
          type: 'TopUpSucceeded',
          data: { ...ref, paymentIntentId: 'pi_1', amount: 2500, currency: 'usd', succeededAt: NOW },
        },
      ]);
  });
  it('rejects another amount, another currency, another PaymentIntent', () => {
    spec(topUpDecider).given(initiated()).when(succeed(2499)).thenFails('validation_failed');
    spec(topUpDecider)
      .given(initiated())
      .when(succeed(2500, 'pi_1', 'eur'))
      .thenFails('currency_mismatch');
    spec(topUpDecider).given(initiated()).when(succeed(2500, 'pi_other')).thenFails('validation_failed');
  });
  it('rejects succeeding twice, after failure, or an unknown top-up', () => {
    spec(topUpDecider).given(succeeded()).when(succeed()).thenFails('invalid_state');
    spec(topUpDecider).given(failed()).when(succeed()).thenFails('invalid_state');
    spec(topUpDecider).given([]).when(succeed()).thenFails('not_found');
  });
});

describe('top-up: FailTopUp', () => {
  it('fails an initiated top-up with a reason (no money moved)', () => {
    spec(topUpDecider)
      .given(initiated())
      .when(fail())
      .thenEmits([
        {
          type: 'TopUpFailed',
          data: { ...ref, paymentIntentId: 'pi_1', reason: 'card_declined', failedAt: NOW },
        },
      ]);
  });
  it('records nothing when the same failure is reported again, with its intent or with none', () => {
    spec(topUpDecider).given(failed()).when(fail()).thenEmits([]);
    // The request saw the decline after the payment_failed webhook had recorded it.
    spec(topUpDecider)
      .given(history(topUpDecider, [initiate(), fail()]))
      .when(fail(null))
      .thenEmits([]);
  });
  it('rejects failing a succeeded or unknown top-up, another intent of a failed one, and a missing reason', () => {
    spec(topUpDecider).given(succeeded()).when(fail()).thenFails('invalid_state');
    spec(topUpDecider).given(succeeded()).when(fail(null)).thenFails('invalid_state');
    spec(topUpDecider).given(failed()).when(fail('pi_2')).thenFails('invalid_state');
    spec(topUpDecider).given([]).when(fail()).thenFails('not_found');
    spec(topUpDecider)
      .given(initiated())
      .when({ type: 'FailTopUp', paymentIntentId: null, reason: ' ', failedAt: NOW })
      .thenFails('validation_failed');
  });
});

describe('top-up: RecordTopUpRefundToCard', () => {
  it('records card refunds up to the top-up', () => {
    const first = history(topUpDecider, [initiate(), intent(), succeed(), cardRefund(1000)]);
    spec(topUpDecider)
      .given(first)
      .when(cardRefund(1500, 're_2'))
      .thenEmits([
        {
          type: 'TopUpRefundedToCard',
          data: {
            ...ref,
            stripeRefundId: 're_2',
            amount: 1500,
            currency: 'usd',
            refundedTotal: 2500,
            refundedAt: NOW,
          },
        },
      ]);
    spec(topUpDecider).given(first).when(cardRefund(1501, 're_2')).thenFails('limit_exceeded');
    spec(topUpDecider).given(first).when(cardRefund(1, 're_1')).thenFails('invalid_state');
  });
  it('rejects a bad card refund amount or currency', () => {
    spec(topUpDecider).given(succeeded()).when(cardRefund(0)).thenFails('validation_failed');
    spec(topUpDecider)
      .given(succeeded())
      .when({
        type: 'RecordTopUpRefundToCard',
        stripeRefundId: 're_9',
        amount: 10,
        currency: 'eur',
        refundedAt: NOW,
      })
      .thenFails('currency_mismatch');
  });
  it('rejects refunding a top-up that did not succeed', () => {
    spec(topUpDecider).given(initiated()).when(cardRefund(100)).thenFails('invalid_state');
    spec(topUpDecider).given(failed()).when(cardRefund(100)).thenFails('invalid_state');
    spec(topUpDecider).given([]).when(cardRefund(100)).thenFails('not_found');
  });
});

describe('top-up: RecordTopUpCardRefundFailed', () => {
  const failRefund = (amount: number, stripeRefundId = 're_1'): TopUpCommand => ({
    type: 'RecordTopUpCardRefundFailed',
    stripeRefundId,
    amount,
    currency: 'usd',
    failureReason: 'expired_or_canceled_card',
    failedAt: NOW,
  });
  const refunded = () =>
    history(topUpDecider, [initiate(), intent(), succeed(), cardRefund(1000), cardRefund(500, 're_2')]);
  it('records the failure and reopens its amount: the refunds that stand drop by it', () => {
    spec(topUpDecider)
      .given(refunded())
      .when(failRefund(1000))
      .thenEmits([
        {
          type: 'TopUpCardRefundFailed',
          data: {
            ...ref,
            stripeRefundId: 're_1',
            amount: 1000,
            currency: 'usd',
            failureReason: 'expired_or_canceled_card',
            refundedTotal: 500,
            failedAt: NOW,
          },
        },
      ]);
    // The reopened 1000 can be refunded again (under another refund id), not beyond.
    const reopened = history(topUpDecider, [
      initiate(),
      intent(),
      succeed(),
      cardRefund(1000),
      cardRefund(500, 're_2'),
      failRefund(1000),
    ]);
    spec(topUpDecider)
      .given(reopened)
      .when(cardRefund(2000, 're_3'))
      .thenEmits((events) => {
        expect(events[0]?.data).toMatchObject({ refundedTotal: 2500 });
      });
    spec(topUpDecider).given(reopened).when(cardRefund(2001, 're_3')).thenFails('limit_exceeded');
    spec(topUpDecider).given(reopened).when(cardRefund(10, 're_1')).thenFails('invalid_state');
  });
  it('fails a refund once, and only a recorded refund of its amount', () => {
    const once = refunded();
    const failedOnce = history(topUpDecider, [
      initiate(),
      intent(),
      succeed(),
      cardRefund(1000),
      failRefund(1000),
    ]);
    spec(topUpDecider)
      .given(failedOnce)
      .when(failRefund(1000))
      .thenFails('invalid_state', /already failed/);
    spec(topUpDecider).given(once).when(failRefund(1000, 're_9')).thenFails('not_found');
    spec(topUpDecider).given(once).when(failRefund(999)).thenFails('validation_failed');
    spec(topUpDecider)
      .given(once)
      .when({ ...failRefund(1000), currency: 'eur' } as TopUpCommand)
      .thenFails('currency_mismatch');
    spec(topUpDecider).given([]).when(failRefund(1000)).thenFails('not_found');
  });
});
