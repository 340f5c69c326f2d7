import { describe, expect, it } from 'vitest';
import { nextPeriod, periodEndMs, periodOf, periodStartMs } from '../../src/domain/effectiveTime.js';
import { PERIOD_CLOSE_GRACE_MS, type PeriodsEvent, periodsDecider } from '../../src/domain/periods.js';
import { spec } from './spec.js';

const fin = { id: 'fin_a', role: 'finance_admin' };
const closeAt = (period: string, extraMs = 0) =>
  new Date(periodEndMs(period) + PERIOD_CLOSE_GRACE_MS + extraMs).toISOString();
const closed = (period: string): PeriodsEvent => ({
  type: 'PeriodClosed',
  data: {
    period,
    from: new Date(periodStartMs(period)).toISOString(),
    to: new Date(periodEndMs(period)).toISOString(),
    closedAt: closeAt(period),
    actor: fin,
  },
});
const backdated = (effectiveAt: string, adjustedAt: string) => ({
  type: 'AdjustLedgerBackdated' as const,
  adjustmentId: 'adj_1',
  account: 'platform:revenue:commission',
  direction: 'credit' as const,
  amount: 500,
  currency: 'usd',
  reason: 'late invoice',
  actor: fin,
  entryId: '00000000-0000-5000-8000-000000000001',
  adjustedAt,
  allowedCurrencies: ['usd'],
  effectiveAt,
});

describe('periods decider', () => {
  it('closes an ended month, an hour after it ends, and only then', () => {
    spec(periodsDecider)
      .given([])
      .when({ type: 'ClosePeriod', period: '2026-10', actor: fin, now: closeAt('2026-10') })
      .thenEmits([closed('2026-10')]);
    spec(periodsDecider)
      .given([])
      .when({ type: 'ClosePeriod', period: '2026-10', actor: fin, now: closeAt('2026-10', -1) })
      .thenFails('invalid_state', /can be closed from 2026-11-01T01:00:00.000Z/);
  });

  it('closes in order, once, by a finance admin', () => {
    const given = spec(periodsDecider).given([closed('2026-09')]);
    given
      .when({ type: 'ClosePeriod', period: '2026-11', actor: fin, now: closeAt('2026-11') })
      .thenFails('invalid_state', /close 2026-10 first/);
    given
      .when({ type: 'ClosePeriod', period: '2026-08', actor: fin, now: closeAt('2026-11') })
      .thenFails('invalid_state', /already closed/);
    given
      .when({
        type: 'ClosePeriod',
        period: '2026-10',
        actor: { id: 'x', role: 'tenant_admin' },
        now: closeAt('2026-11'),
      })
      .thenFails('forbidden');
    given
      .when({ type: 'ClosePeriod', period: '2026-13', actor: fin, now: closeAt('2026-11') })
      .thenFails('validation_failed');
    expect(given.state.closedThrough).toBe('2026-09');
  });

  it('books an adjustment backdated into an open month, refuses one inside a closed month, naming it', () => {
    spec(periodsDecider)
      .given([closed('2026-09')])
      .when(backdated('2026-10-15T12:00:00.000Z', '2026-11-03T09:00:00.000Z'))
      .thenEmits((events) => {
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          type: 'LedgerAdjustedBackdated',
          data: { effectiveAt: '2026-10-15T12:00:00.000Z', adjustedAt: '2026-11-03T09:00:00.000Z' },
        });
      });
    const refused = spec(periodsDecider)
      .given([closed('2026-09'), closed('2026-10')])
      .when(backdated('2026-10-15T12:00:00.000Z', '2026-11-03T09:00:00.000Z'))
      .thenFails('period_closed', /period 2026-10 is closed/);
    expect(refused.details).toMatchObject({ period: '2026-10', closedThrough: '2026-10' });
  });

  it('refuses a "backdated" adjustment in its own month or in the future (the adjustment stream books those)', () => {
    const given = spec(periodsDecider).given([]);
    given
      .when(backdated('2026-11-02T00:00:00.000Z', '2026-11-03T09:00:00.000Z'))
      .thenFails('validation_failed');
    given
      .when(backdated('2026-11-04T00:00:00.000Z', '2026-11-03T09:00:00.000Z'))
      .thenFails('validation_failed');
  });

  it('months: next, start and end in UTC', () => {
    expect(nextPeriod('2026-12')).toBe('2027-01');
    expect(periodOf(Date.parse('2026-02-28T23:59:59.999Z'))).toBe('2026-02');
    expect(new Date(periodEndMs('2024-02')).toISOString()).toBe('2024-03-01T00:00:00.000Z');
    expect(new Date(periodStartMs('0001-01')).toISOString()).toBe('0001-01-01T00:00:00.000Z');
  });
});
