import { describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import {
  PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS,
  PLATFORM_REVENUE_SUBSCRIPTIONS,
  studentWallet,
} from '../../src/domain/accounts.js';
import { DomainError } from '../../src/domain/errors.js';
import type { Plan } from '../../src/domain/subscriptionPlans.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore } from '../../src/eventstore/port.js';
import { LedgerFold } from '../property/ledgerFold.js';

const T = 'subs';
const DAY = 86_400_000;
let seq = 0;
const ctx = (role = 'student', id = `${role}-1`): CommandContext => {
  const key = `key-${++seq}`;
  return { tenantId: T, actor: { id, role }, idempotencyKey: key, correlationId: key, causationId: key };
};

const plan = (planId: string, price: number, extra: Partial<Plan> = {}): Plan => ({
  planId,
  name: planId,
  tier: planId,
  interval: 'month',
  price,
  currency: 'usd',
  benefits: { bookingDiscountBps: 1000, lateCancellationFeeBps: null, includedCredits: 0, creditPriceCap: 0 },
  active: true,
  ...extra,
});
const PLANS = [plan('bronze', 1_000), plan('silver', 3_100), plan('gold', 6_200)];

function setup() {
  // 2026-03-01: March has 31 days, so a month's daily parts are not round.
  let nowMs = Date.parse('2026-03-01T10:00:00.000Z');
  const store = new MemoryEventStore();
  const service = createLedgerService({ store, clock: () => new Date(nowMs) });
  return {
    store,
    service,
    now: () => new Date(nowMs),
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

async function fund(service: LedgerService, studentId: string, amount: number): Promise<void> {
  const topUpId = `tu-${++seq}`;
  await service.initiateTopUp(ctx(), { topUpId, studentId, amount: { amount, currency: 'usd' } });
  await service.succeedTopUp(ctx('service'), {
    topUpId,
    paymentIntentId: `pi_${topUpId}`,
    amountReceived: amount,
    currency: 'usd',
  });
}

async function fold(store: EventStore): Promise<LedgerFold> {
  const f = new LedgerFold();
  await f.catchUp(store);
  f.assertTrialBalance('subscriptions');
  return f;
}

const deferred = (f: LedgerFold) => f.creditBalance(T, PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS, 'usd');
const revenue = (f: LedgerFold) => f.creditBalance(T, PLATFORM_REVENUE_SUBSCRIPTIONS, 'usd');
const wallet = (f: LedgerFold, s = 's1') => f.creditBalance(T, studentWallet(s), 'usd');

async function withPlans(service: LedgerService) {
  await service.subscriptions.updatePlans(ctx('tenant_admin'), {
    plans: PLANS,
    policy: { dunningRetryDays: [1, 3], cancelNowRefund: 'prorated' },
  });
}

describe('VIP subscriptions over the ledger service', () => {
  it('charges the first period to deferred revenue and recognises it day by day, exactly', async () => {
    const { store, service, now, advance } = setup();
    await withPlans(service);
    await fund(service, 's1', 10_000);
    const { subscription } = await service.subscriptions.subscribe(ctx(), {
      studentId: 's1',
      planId: 'silver',
    });
    expect(subscription).toMatchObject({ status: 'active', paid: 3_100, deferred: 3_100 });
    expect(subscription.currentPeriod.days).toBe(31);
    let f = await fold(store);
    expect(wallet(f)).toBe(6_900);
    expect(deferred(f)).toBe(3_100);

    // Day by day: each day's part is floor(3100 * d / 31) - floor(3100 * (d - 1) / 31) = 100.
    for (let d = 1; d <= 10; d++) {
      advance(DAY);
      await service.runDueTasks(T, now());
      f = await fold(store);
      expect(revenue(f)).toBe(100 * d);
      expect(deferred(f)).toBe(3_100 - 100 * d);
    }
    // A second subscription while one is live is refused, and appends nothing.
    const head = await store.headPosition();
    await expect(
      service.subscriptions.subscribe(ctx(), { studentId: 's1', planId: 'bronze' }),
    ).rejects.toThrow(DomainError);
    expect(await store.headPosition()).toBe(head);
  });

  it('renews at the period end once, however often the scheduler runs', async () => {
    const { store, service, now, advance } = setup();
    await withPlans(service);
    await fund(service, 's1', 10_000);
    const { subscription } = await service.subscriptions.subscribe(ctx(), {
      studentId: 's1',
      planId: 'bronze',
    });
    advance(31 * DAY);
    await service.runDueTasks(T, now());
    await service.runDueTasks(T, now());
    const renewed = await service.subscriptions.get(T, subscription.subscriptionId);
    expect(renewed).toMatchObject({ status: 'active', paid: 2_000, recognized: 1_000 });
    expect(renewed?.currentPeriod.period).toBe(1);
    const f = await fold(store);
    expect(wallet(f)).toBe(8_000);
    expect(revenue(f)).toBe(1_000);
    expect(deferred(f)).toBe(1_000);
    // The renewal again (another process, the same key) appends nothing.
    const head = await store.headPosition();
    expect(await service.subscriptions.renew(T, subscription.subscriptionId, 1, 0, now())).toBe(false);
    expect(await store.headPosition()).toBe(head);
  });

  it('goes past due when the wallet cannot pay, retries, then cancels; benefits meanwhile', async () => {
    const { store, service, now, advance } = setup();
    await withPlans(service);
    await fund(service, 's1', 1_000);
    const { subscription } = await service.subscriptions.subscribe(ctx(), {
      studentId: 's1',
      planId: 'bronze',
    });
    const id = subscription.subscriptionId;
    advance(31 * DAY);
    await service.runDueTasks(T, now());
    expect(await service.subscriptions.get(T, id)).toMatchObject({
      status: 'past_due',
      pastDue: { period: 1, attempt: 0 },
      recognized: 1_000,
      deferred: 0,
    });
    advance(1 * DAY);
    await service.runDueTasks(T, now());
    expect((await service.subscriptions.get(T, id))?.pastDue?.attempt).toBe(1);
    advance(2 * DAY);
    await service.runDueTasks(T, now());
    expect(await service.subscriptions.get(T, id)).toMatchObject({
      status: 'canceled',
      canceledReason: 'payment_failed',
    });
    expect(await service.subscriptions.forStudent(T, 's1')).toBeNull();
    const f = await fold(store);
    expect(deferred(f)).toBe(0);
    expect(revenue(f)).toBe(1_000);
  });

  it('a retry that finds money renews the period on the original calendar', async () => {
    const { service, now, advance } = setup();
    await withPlans(service);
    await fund(service, 's1', 1_000);
    const { subscription } = await service.subscriptions.subscribe(ctx(), {
      studentId: 's1',
      planId: 'bronze',
    });
    advance(31 * DAY);
    await service.runDueTasks(T, now());
    await fund(service, 's1', 5_000);
    advance(1 * DAY);
    await service.runDueTasks(T, now());
    const view = await service.subscriptions.get(T, subscription.subscriptionId);
    expect(view).toMatchObject({ status: 'active', pastDue: null, paid: 2_000 });
    expect(view?.currentPeriod.start).toBe('2026-04-01T10:00:00.000Z');
    expect(view?.currentPeriod.end).toBe('2026-05-01T10:00:00.000Z');
  });

  it('upgrades now with a prorated charge and cancels now with a prorated refund; deferred returns to zero', async () => {
    const { store, service, now, advance } = setup();
    await withPlans(service);
    await fund(service, 's1', 10_000);
    const { subscription } = await service.subscriptions.subscribe(ctx(), {
      studentId: 's1',
      planId: 'bronze',
    });
    const id = subscription.subscriptionId;
    advance(10 * DAY + 3_600_000); // day 11 in progress: 11 days used, 20 left
    await service.runDueTasks(T, now());
    const upgraded = await service.subscriptions.changePlan(ctx(), { subscriptionId: id, planId: 'silver' });
    // (3100 - 1000) * 20 / 31 = 1354.8..., floored.
    expect(upgraded).toMatchObject({ effective: 'now', charged: 1_354 });
    expect(upgraded.subscription.plan.planId).toBe('silver');
    advance(5 * DAY);
    await service.runDueTasks(T, now());
    const canceled = await service.subscriptions.cancel(ctx(), { subscriptionId: id, atPeriodEnd: false });
    expect(canceled.subscription).toMatchObject({ status: 'canceled', deferred: 0 });
    const f = await fold(store);
    expect(deferred(f)).toBe(0);
    // 16 days used of bronze (floor(1000 * 16 / 31) = 516), 5 of the upgrade's 20 (floor(1354 * 5 / 20) = 338).
    expect(revenue(f)).toBe(516 + 338);
    expect(wallet(f)).toBe(10_000 - 516 - 338);
    expect(canceled.subscription.refunded).toBe(1_000 + 1_354 - 516 - 338);
    expect(await service.subscriptions.forStudent(T, 's1')).toBeNull();
  });

  it('downgrades and cancels at the period end', async () => {
    const { store, service, now, advance } = setup();
    await withPlans(service);
    await fund(service, 's1', 20_000);
    const { subscription } = await service.subscriptions.subscribe(ctx(), {
      studentId: 's1',
      planId: 'gold',
    });
    const id = subscription.subscriptionId;
    const down = await service.subscriptions.changePlan(ctx(), { subscriptionId: id, planId: 'bronze' });
    expect(down).toMatchObject({ effective: 'period_end', charged: 0 });
    expect(down.subscription.pendingPlanId).toBe('bronze');
    advance(31 * DAY);
    await service.runDueTasks(T, now());
    const renewed = await service.subscriptions.get(T, id);
    expect(renewed?.plan.planId).toBe('bronze');
    expect(renewed?.paid).toBe(6_200 + 1_000);
    await service.subscriptions.cancel(ctx(), { subscriptionId: id, atPeriodEnd: true });
    expect((await service.subscriptions.get(T, id))?.cancelAtPeriodEnd).toBe(true);
    advance(30 * DAY); // April has 30 days
    await service.runDueTasks(T, now());
    expect(await service.subscriptions.get(T, id)).toMatchObject({
      status: 'canceled',
      canceledReason: 'period_end',
    });
    const f = await fold(store);
    expect(deferred(f)).toBe(0);
    expect(revenue(f)).toBe(7_200);
    expect(wallet(f)).toBe(20_000 - 7_200);
  });

  it('refuses a retired plan and a plan in a currency the tenant does not allow', async () => {
    const { service } = setup();
    await withPlans(service);
    await expect(
      service.subscriptions.updatePlans(ctx('tenant_admin'), {
        plans: [plan('x', 100, { currency: 'jpy' })],
      }),
    ).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(
      service.subscriptions.updatePlans(ctx('tenant_admin'), { plans: PLANS.slice(1) }),
    ).rejects.toMatchObject({ code: 'validation_failed' });
    await service.subscriptions.updatePlans(ctx('tenant_admin'), {
      plans: [{ ...PLANS[0]!, active: false }, ...PLANS.slice(1)],
    });
    await fund(service, 's1', 5_000);
    await expect(
      service.subscriptions.subscribe(ctx(), { studentId: 's1', planId: 'bronze' }),
    ).rejects.toMatchObject({
      code: 'invalid_state',
    });
  });
});
