import { describe, expect, it } from 'vitest';
import { type AdjustLedger, adjustmentDecider } from '../../src/domain/adjustment.js';
import { BAD_AMOUNTS, FINANCE_ADMIN, uuid } from './fixtures.js';
import { history, spec } from './spec.js';

const NOW = '2026-04-01T10:00:00.000Z';
const adjust = (overrides: Partial<AdjustLedger> = {}): AdjustLedger => ({
  type: 'AdjustLedger',
  adjustmentId: 'adj1',
  account: 'clearing:booking:b1',
  direction: 'debit',
  amount: 300,
  currency: 'usd',
  reason: 'stuck clearing balance after incident 42',
  actor: FINANCE_ADMIN,
  entryId: uuid('adj1'),
  adjustedAt: NOW,
  allowedCurrencies: ['usd', 'eur'],
  ...overrides,
});

describe('adjustment: AdjustLedger', () => {
  it('posts the account against platform:adjustments with reason and actor', () => {
    spec(adjustmentDecider)
      .given([])
      .when(adjust())
      .thenEmits([
        {
          type: 'LedgerAdjusted',
          data: {
            adjustmentId: 'adj1',
            account: 'clearing:booking:b1',
            direction: 'debit',
            amount: 300,
            currency: 'usd',
            reason: 'stuck clearing balance after incident 42',
            actor: FINANCE_ADMIN,
            adjustedAt: NOW,
            entry: {
              entryId: uuid('adj1'),
              description:
                'Manual adjustment adj1 (debit clearing:booking:b1 3.00 USD): stuck clearing balance after incident 42',
              postings: [
                {
                  account: 'clearing:booking:b1',
                  side: 'debit',
                  effect: 'post',
                  amount: 300,
                  currency: 'usd',
                },
                {
                  account: 'platform:adjustments',
                  side: 'credit',
                  effect: 'post',
                  amount: 300,
                  currency: 'usd',
                },
              ],
            },
          },
        },
      ]);
  });
  it.each([
    'platform:revenue:commission',
    'stripe:balance',
    'platform:expense:promotions',
    'clearing:refund:r1',
  ])('adjusts unconstrained account %s', (account) => {
    spec(adjustmentDecider)
      .given([])
      .when(adjust({ account, direction: 'credit' }))
      .thenEmits((e) => expect(e[0]!.data.account).toBe(account));
  });
  it.each([
    'student:s1:wallet',
    'tutor:t1:earnings:available',
    'tutor:t1:earnings:pending',
    'tutor:t1:receivable',
    'platform:adjustments',
    'nowhere:at:all',
  ])('refuses %s (adjusted in its owning stream, or not an account)', (account) => {
    spec(adjustmentDecider).given([]).when(adjust({ account })).thenFails('validation_failed');
  });
  it.each(BAD_AMOUNTS)('rejects a %s amount', (_why, amount) => {
    spec(adjustmentDecider)
      .given([])
      .when(adjust({ amount: amount as number }))
      .thenFails('validation_failed');
  });
  it('requires a reason, a finance admin, an allowed currency, and is made once', () => {
    spec(adjustmentDecider)
      .given([])
      .when(adjust({ reason: '' }))
      .thenFails('validation_failed');
    spec(adjustmentDecider)
      .given([])
      .when(adjust({ reason: 'x'.repeat(501) }))
      .thenFails('validation_failed');
    spec(adjustmentDecider)
      .given([])
      .when(adjust({ actor: { id: 'u1', role: 'tenant_admin' } }))
      .thenFails('forbidden');
    spec(adjustmentDecider)
      .given([])
      .when(adjust({ currency: 'gbp' }))
      .thenFails('validation_failed');
    spec(adjustmentDecider)
      .given(history(adjustmentDecider, [adjust()]))
      .when(adjust())
      .thenFails('invalid_state');
  });
});
