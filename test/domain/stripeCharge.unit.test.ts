import { describe, expect, it } from 'vitest';
import { type StripeChargeCommand, stripeChargeDecider } from '../../src/domain/stripeCharge.js';
import { BAD_AMOUNTS, uuid } from './fixtures.js';
import { history, spec } from './spec.js';

const NOW = '2026-04-01T10:00:00.000Z';
const fee = (amount = 59, stripeObjectId = 'txn_1'): StripeChargeCommand => ({
  type: 'BookStripeFee',
  stripeObjectId,
  amount,
  currency: 'usd',
  description: 'card processing fee',
  entryId: uuid(`fee-${stripeObjectId}`),
  bookedAt: NOW,
});
const open = (amount = 2500): StripeChargeCommand => ({
  type: 'OpenStripeDispute',
  stripeObjectId: 'dp_1',
  amount,
  currency: 'usd',
  description: 'fraudulent',
  entryId: uuid('dp-open'),
  openedAt: NOW,
});
const close = (outcome: 'won' | 'lost'): StripeChargeCommand => ({
  type: 'CloseStripeDispute',
  stripeObjectId: 'dp_1',
  outcome,
  description: 'evidence accepted',
  entryId: uuid('dp-close'),
  closedAt: NOW,
});
const p = (account: string, side: 'debit' | 'credit', amount: number) => ({
  account,
  side,
  effect: 'post',
  amount,
  currency: 'usd',
});

describe('stripe charges', () => {
  it('books a fee: Dr stripe fees expense, Cr stripe:balance', () => {
    spec(stripeChargeDecider)
      .given([])
      .when(fee())
      .thenEmits((e) => {
        expect(e[0]!.type).toBe('StripeFeeBooked');
        expect(e[0]!.data.entry?.postings).toEqual([
          p('platform:expense:stripe-fees', 'debit', 59),
          p('stripe:balance', 'credit', 59),
        ]);
      });
  });
  it('books a fee once; rejects bad amounts and another object id', () => {
    spec(stripeChargeDecider)
      .given(history(stripeChargeDecider, [fee()]))
      .when(fee())
      .thenFails('invalid_state');
    for (const [, amount] of BAD_AMOUNTS) {
      spec(stripeChargeDecider)
        .given([])
        .when(fee(amount as number))
        .thenFails('validation_failed');
    }
    spec(stripeChargeDecider)
      .given(history(stripeChargeDecider, [fee()]))
      .when(fee(1, 'txn_2'))
      .thenFails('validation_failed');
  });
  it('opens a dispute: the disputed amount leaves the Stripe balance', () => {
    spec(stripeChargeDecider)
      .given([])
      .when(open())
      .thenEmits((e) =>
        expect(e[0]!.data.entry?.postings).toEqual([
          p('platform:expense:disputes', 'debit', 2500),
          p('stripe:balance', 'credit', 2500),
        ]),
      );
    spec(stripeChargeDecider)
      .given(history(stripeChargeDecider, [open()]))
      .when(open())
      .thenFails('invalid_state');
  });
  it('a won dispute returns the money; a lost one moves nothing', () => {
    const opened = history(stripeChargeDecider, [open()]);
    spec(stripeChargeDecider)
      .given(opened)
      .when(close('won'))
      .thenEmits((e) =>
        expect(e[0]!.data.entry?.postings).toEqual([
          p('stripe:balance', 'debit', 2500),
          p('platform:expense:disputes', 'credit', 2500),
        ]),
      );
    spec(stripeChargeDecider)
      .given(opened)
      .when(close('lost'))
      .thenEmits((e) => {
        expect(e[0]!.data).toMatchObject({ outcome: 'lost', amount: 2500 });
        expect('entry' in e[0]!.data).toBe(false);
      });
  });
  it('closes a dispute once, and only an opened one', () => {
    spec(stripeChargeDecider).given([]).when(close('won')).thenFails('not_found');
    const closed = history(stripeChargeDecider, [open(), close('lost')]);
    spec(stripeChargeDecider).given(closed).when(close('won')).thenFails('invalid_state');
    spec(stripeChargeDecider)
      .given(history(stripeChargeDecider, [open()]))
      .when({
        ...(close('won') as Extract<StripeChargeCommand, { type: 'CloseStripeDispute' }>),
        outcome: 'draw' as 'won',
      })
      .thenFails('validation_failed');
  });
});
