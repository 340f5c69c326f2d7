import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addIntervals,
  periodBounds,
  type SubscriptionEvent,
  type SubscriptionTerms,
  subscriptionDecider,
  upgradeCharge,
} from '../../src/domain/subscription.js';
import { planCatalogDecider } from '../../src/domain/subscriptionPlans.js';
import { type WalletEvent, walletDecider } from '../../src/domain/wallet.js';
import { spec } from './spec.js';

const DAY = 86_400_000;
const ENTRY = '00000000-0000-5000-8000-000000000001';
const terms = (planId: string, price: number): SubscriptionTerms => ({
  planId,
  name: planId,
  tier: planId,
  interval: 'month',
  price,
  currency: 'usd',
  benefits: { bookingDiscountBps: 0, lateCancellationFeeBps: null, includedCredits: 0, creditPriceCap: 0 },
  catalogVersion: 1,
});
const START = '2026-01-31T12:00:00.000Z';

const started = (price = 3_100): SubscriptionEvent[] =>
  subscriptionDecider.decide(
    {
      type: 'StartSubscription',
      subscriptionId: 'sub1',
      studentId: 's1',
      terms: terms('silver', price),
      chargeId: 'period-0',
      amount: price,
      startedAt: START,
    },
    subscriptionDecider.initialState(),
  );

describe('subscription calendar and rounding', () => {
  it('a month from the 31st ends on the last day of a shorter month, and the anchor keeps its day', () => {
    const anchor = Date.parse(START);
    expect(new Date(addIntervals(anchor, 'month', 1)).toISOString()).toBe('2026-02-28T12:00:00.000Z');
    expect(new Date(addIntervals(anchor, 'month', 2)).toISOString()).toBe('2026-03-31T12:00:00.000Z');
    expect(new Date(addIntervals(anchor, 'year', 1)).toISOString()).toBe('2027-01-31T12:00:00.000Z');
    expect(periodBounds(anchor, 'month', 0).days).toBe(28);
    expect(periodBounds(Date.parse('2024-01-01T00:00:00Z'), 'year', 0).days).toBe(366);
    expect(periodBounds(Date.parse('2024-02-29T00:00:00Z'), 'year', 0).days).toBe(365);
  });

  it('daily parts add up to the price exactly, for any price and any order of catch-up days', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000_000_000 }),
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 40 }),
        (price, steps) => {
          let state = started(price).reduce(subscriptionDecider.evolve, subscriptionDecider.initialState());
          let day = 0;
          let recognized = 0;
          for (const step of steps) {
            day = Math.min(28, day + step);
            const events = subscriptionDecider.decide(
              {
                type: 'RecognizeSubscriptionRevenue',
                asOf: new Date(Date.parse(START) + day * DAY).toISOString(),
                entryId: ENTRY,
              },
              state,
            );
            for (const e of events) {
              if (e.type === 'SubscriptionRevenueRecognized') recognized += e.data.amount;
              state = subscriptionDecider.evolve(state, e);
            }
            expect(recognized).toBe(Number((BigInt(price) * BigInt(day)) / 28n));
          }
          if (day === 28) expect(recognized).toBe(price);
        },
      ),
    );
  });

  it('an upgrade costs the difference for the days left, floored', () => {
    expect(upgradeCharge(1_000, 3_100, 11, 31)).toBe(1_354);
    expect(upgradeCharge(1_000, 3_100, 31, 31)).toBe(0);
    expect(upgradeCharge(3_100, 1_000, 0, 31)).toBe(0);
  });
});

describe('subscription decider', () => {
  it('recognises through the elapsed days only, and nothing twice', () => {
    const history = started();
    const day3 = new Date(Date.parse(START) + 3 * DAY + 5).toISOString();
    const [event] = spec(subscriptionDecider)
      .given(history)
      .when({ type: 'RecognizeSubscriptionRevenue', asOf: day3, entryId: ENTRY })
      .thenEmits((events) => expect(events).toHaveLength(1));
    expect(event).toMatchObject({ data: { throughDay: 3, amount: Math.floor((3_100 * 3) / 28) } });
    spec(subscriptionDecider)
      .given([...history, event!])
      .when({ type: 'RecognizeSubscriptionRevenue', asOf: day3, entryId: ENTRY })
      .thenEmits([]);
  });

  it('refuses to renew before the period ends, or a period that is not the next', () => {
    const renew = (period: number, renewedAt: string) =>
      spec(subscriptionDecider)
        .given(started())
        .when({
          type: 'RenewSubscription',
          period,
          terms: terms('silver', 3_100),
          chargeId: `period-${period}`,
          amount: 3_100,
          renewedAt,
          entryId: ENTRY,
        });
    renew(1, '2026-02-27T12:00:00.000Z').thenFails('invalid_state', /not ended/);
    renew(2, '2026-02-28T12:00:00.000Z').thenFails('invalid_state', /not the next/);
    renew(1, '2026-02-28T12:00:00.000Z').thenEmits((events) =>
      expect(events[0]).toMatchObject({
        type: 'SubscriptionRenewed',
        data: { recognized: 3_100, period: 1 },
      }),
    );
  });

  it('cancel now: the day in progress is used, the rest refunded; with policy none, all recognised', () => {
    const at = new Date(Date.parse(START) + 6 * DAY + 1).toISOString(); // day 7 in progress
    const cancel = (refund: 'prorated' | 'none') =>
      spec(subscriptionDecider)
        .given(started(2_800))
        .when({ type: 'CancelSubscription', mode: 'now', refund, refundId: 'r1', at, entryId: ENTRY });
    cancel('prorated').thenEmits((events) =>
      expect(events[0]).toMatchObject({ data: { recognized: 700, refund: 2_100, refundId: 'r1' } }),
    );
    cancel('none').thenEmits((events) =>
      expect(events[0]).toMatchObject({ data: { recognized: 2_800, refund: 0, refundId: null } }),
    );
  });

  it('past due after the last retry is canceled; retries count in order', () => {
    const fail = (attempt: number) => ({
      type: 'RecordRenewalFailure' as const,
      period: 1,
      attempt,
      reason: 'insufficient funds',
      failedAt: '2026-03-01T12:00:00.000Z',
      policy: { dunningRetryDays: [1], cancelNowRefund: 'prorated' as const },
      entryId: ENTRY,
    });
    const first = spec(subscriptionDecider)
      .given(started())
      .when(fail(0))
      .thenEmits((events) =>
        expect(events[0]).toMatchObject({
          type: 'SubscriptionPastDue',
          data: { nextAttemptAt: '2026-03-01T12:00:00.000Z' },
        }),
      );
    spec(subscriptionDecider)
      .given([...started(), ...first])
      .when(fail(0))
      .thenFails('invalid_state');
    spec(subscriptionDecider)
      .given([...started(), ...first])
      .when(fail(1))
      .thenEmits((events) =>
        expect(events[0]).toMatchObject({ type: 'SubscriptionCanceled', data: { reason: 'payment_failed' } }),
      );
  });
});

function entryOf(event: WalletEvent) {
  if (!('entry' in event.data) || event.data.entry === undefined)
    throw new Error(`${event.type} carries no entry`);
  return event.data.entry;
}

describe('the wallet side of subscriptions', () => {
  const topUp: WalletEvent[] = walletDecider.decide(
    {
      type: 'CreditTopUp',
      studentId: 's1',
      topUpId: 'tu1',
      paymentIntentId: 'pi_1',
      amount: 10_000,
      currency: 'usd',
      entryId: ENTRY,
    },
    walletDecider.initialState(),
  );
  const charge = (subscriptionId: string, chargeId: string, period = 0, amount = 1_000) => ({
    type: 'ChargeSubscription' as const,
    studentId: 's1',
    subscriptionId,
    chargeId,
    kind: 'period' as const,
    period,
    planId: 'gold',
    startDay: 0,
    amount,
    currency: 'usd',
    entryId: ENTRY,
  });

  it('charges a period once, one live subscription at a time, and refunds never exceed the charges', () => {
    const charged = spec(walletDecider)
      .given(topUp)
      .when(charge('sub1', 'period-0'))
      .thenEmits((events) =>
        expect(entryOf(events[0]!).postings.map((p) => [p.account, p.side, p.amount])).toEqual([
          ['student:s1:wallet', 'debit', 1_000],
          ['platform:deferred-revenue:subscriptions', 'credit', 1_000],
        ]),
      );
    const history = [...topUp, ...charged];
    spec(walletDecider)
      .given(history)
      .when(charge('sub1', 'period-0'))
      .thenFails('invalid_state', /already charged/);
    spec(walletDecider)
      .given(history)
      .when(charge('sub2', 'period-0'))
      .thenFails('invalid_state', /already has/);
    spec(walletDecider)
      .given(topUp)
      .when(charge('sub1', 'period-0', 0, 20_000))
      .thenFails('insufficient_funds');
    const end = (refund: number) => ({
      type: 'EndSubscription' as const,
      studentId: 's1',
      subscriptionId: 'sub1',
      refund,
      refundId: refund > 0 ? 'r1' : null,
      currency: 'usd',
      entryId: ENTRY,
    });
    spec(walletDecider).given(history).when(end(1_001)).thenFails('limit_exceeded');
    const ended = spec(walletDecider)
      .given(history)
      .when(end(400))
      .thenEmits((events) => expect(events).toHaveLength(1));
    spec(walletDecider)
      .given([...history, ...ended])
      .when(charge('sub2', 'period-0'))
      .thenEmits((events) => expect(events).toHaveLength(1));
  });
});

describe('plan catalog', () => {
  const plan = {
    planId: 'gold',
    name: 'Gold',
    tier: 'gold',
    interval: 'month',
    price: 1_000,
    currency: 'usd',
    active: true,
    benefits: {
      bookingDiscountBps: 1_000,
      lateCancellationFeeBps: 0,
      includedCredits: 2,
      creditPriceCap: 5_000,
    },
  };
  const policy = { dunningRetryDays: [1, 3, 5], cancelNowRefund: 'prorated' };
  const update = (plans: unknown, p: unknown = policy) => ({
    type: 'UpdatePlans' as const,
    plans,
    policy: p,
    updatedAt: START,
  });

  it('keeps every plan ever defined and its currency and interval; an unchanged catalog appends nothing', () => {
    const first = spec(planCatalogDecider)
      .given([])
      .when(update([plan]))
      .thenEmits((events) => expect(events).toHaveLength(1));
    spec(planCatalogDecider)
      .given(first)
      .when(update([]))
      .thenFails('validation_failed', /cannot be removed/);
    spec(planCatalogDecider)
      .given(first)
      .when(update([{ ...plan, interval: 'year' }]))
      .thenFails('validation_failed');
    spec(planCatalogDecider)
      .given(first)
      .when(update([plan]))
      .thenEmits([]);
    spec(planCatalogDecider)
      .given(first)
      .when(update([{ ...plan, price: 1_200 }]))
      .thenEmits((events) => expect(events[0]!.data.version).toBe(2));
  });

  it('refuses retries that are not increasing or leave the period, and credits without a cap', () => {
    spec(planCatalogDecider)
      .given([])
      .when(update([plan], { ...policy, dunningRetryDays: [3, 1] }))
      .thenFails('validation_failed');
    spec(planCatalogDecider)
      .given([])
      .when(update([plan], { ...policy, dunningRetryDays: [28] }))
      .thenFails('validation_failed');
    spec(planCatalogDecider)
      .given([])
      .when(update([{ ...plan, benefits: { ...plan.benefits, creditPriceCap: 0 } }]))
      .thenFails('validation_failed');
  });
});
