import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptionRoutes } from '../../src/api/routes/subscriptions.js';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack } from './support/realStack.js';

/**
 * VIP subscriptions over HTTP against the real stack (docs/ledger-flows.md, "VIP subscriptions"): plans
 * set by the tenant admin, a student subscribing from the wallet, reading their own subscription (and
 * not another's), an upgrade with its prorated charge, cancel now with the refund, statements of the
 * deferred and recognised revenue accounts, bad input refused with nothing appended.
 */
const T = 'vip';
const STUDENT = 'stu_v';
const plan = (planId: string, price: number) => ({
  planId,
  name: `${planId[0]!.toUpperCase()}${planId.slice(1)}`,
  tier: planId,
  interval: 'month',
  price,
  currency: 'usd',
  benefits: {
    bookingDiscountBps: 1000,
    lateCancellationFeeBps: 2500,
    includedCredits: 2,
    creditPriceCap: 5000,
  },
  active: true,
});

describe(`VIP subscriptions over HTTP (${process.env.DATABASE_URL ? 'Postgres' : 'PGlite'})`, () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  const tok: Record<string, string> = {};
  let n = 0;

  beforeAll(async () => {
    s = await startRealStack({
      features: (parts) => ({
        routes: [subscriptionRoutes({ subscriptions: parts.service.subscriptions })],
        close: async () => undefined,
      }),
    });
    call = client(s.baseUrl);
    tok.student = await token(T, STUDENT, 'student');
    tok.other = await token(T, 'stu_other', 'student');
    tok.admin = await token(T, 'adm_v', 'tenant_admin');
    tok.finance = await token(T, 'fin_v', 'finance_admin');
    await s.service.initiateTopUp(s.ctx(T, 'fund', 'student'), {
      topUpId: 'fund',
      studentId: STUDENT,
      amount: { amount: 50_000, currency: 'usd' },
    });
    await s.service.succeedTopUp(s.ctx(T, 'fund-webhook'), {
      topUpId: 'fund',
      paymentIntentId: 'pi_fund',
      amountReceived: 50_000,
      currency: 'usd',
    });
  }, 180_000);
  afterAll(() => s?.close());

  let subscriptionId = '';

  it('the tenant admin sets plans; everyone reads them; bad plans are 400 and change nothing', async () => {
    const bad = await call('PUT', '/v1/tenant/plans', {
      token: tok.admin!,
      key: `p-${n++}`,
      body: { plans: [{ ...plan('gold', 0) }] },
    });
    expect(bad.status, JSON.stringify(bad.body)).toBe(400);
    const forbidden = await call('PUT', '/v1/tenant/plans', {
      token: tok.student!,
      key: `p-${n++}`,
      body: { plans: [plan('gold', 9_000)] },
    });
    expect(forbidden.status).toBe(403);
    const set = await call('PUT', '/v1/tenant/plans', {
      token: tok.admin!,
      key: `p-${n++}`,
      body: {
        plans: [plan('bronze', 1_000), plan('gold', 9_000)],
        policy: { dunningRetryDays: [1, 3, 5], cancelNowRefund: 'prorated' },
      },
    });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ version: 1 });
    const read = await call('GET', '/v1/tenant/plans', { token: tok.student! });
    expect(read.status).toBe(200);
    expect((read.body.plans as unknown[]).length).toBe(2);
  });

  it('a student subscribes from the wallet; a retry with the same key is the same subscription', async () => {
    const body = { studentId: STUDENT, planId: 'bronze' };
    const first = await call('POST', '/v1/subscriptions', { token: tok.student!, key: 'sub-1', body });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body).toMatchObject({ status: 'active', paid: 1_000, deferred: 1_000, studentId: STUDENT });
    subscriptionId = first.body.subscriptionId as string;
    const again = await call('POST', '/v1/subscriptions', { token: tok.student!, key: 'sub-1', body });
    expect(again.status).toBe(201);
    expect(again.body.subscriptionId).toBe(subscriptionId);
    const second = await call('POST', '/v1/subscriptions', {
      token: tok.student!,
      key: 'sub-2',
      body: { studentId: STUDENT, planId: 'gold' },
    });
    expect(second.status, JSON.stringify(second.body)).toBe(422);
    expect(second.body).toMatchObject({ code: 'invalid_state' });
    const forOther = await call('POST', '/v1/subscriptions', { token: tok.other!, key: 'sub-3', body });
    expect(forOther.status).toBe(403);
  });

  it('students read their own subscription, another student gets 404, finance admins read any', async () => {
    const own = await call('GET', `/v1/subscriptions/${subscriptionId}`, { token: tok.student! });
    expect(own.status).toBe(200);
    expect(own.body.plan).toMatchObject({ planId: 'bronze', price: 1_000, catalogVersion: 1 });
    const hidden = await call('GET', `/v1/subscriptions/${subscriptionId}`, { token: tok.other! });
    expect(hidden.status).toBe(404);
    const finance = await call('GET', `/v1/students/${STUDENT}/subscription`, { token: tok.finance! });
    expect(finance.status).toBe(200);
    expect(finance.body.subscriptionId).toBe(subscriptionId);
    const none = await call('GET', '/v1/students/stu_other/subscription', { token: tok.other! });
    expect(none.status).toBe(404);
  });

  it('upgrades now with a prorated charge, then cancels now with the unused part back in the wallet', async () => {
    const up = await call('POST', `/v1/subscriptions/${subscriptionId}/change-plan`, {
      token: tok.student!,
      key: 'up-1',
      body: { planId: 'gold' },
    });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    expect(up.body).toMatchObject({ effective: 'now' });
    const charged = up.body.charged as number;
    // The day in progress counts as used: at most (9000 - 1000) * (N - 1) / N of the difference.
    expect(charged).toBeGreaterThan(0);
    expect(charged).toBeLessThan(8_000);
    const hidden = await call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, {
      token: tok.other!,
      key: 'c-0',
      body: { atPeriodEnd: false },
    });
    expect(hidden.status).toBe(404);
    const canceled = await call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, {
      token: tok.student!,
      key: 'c-1',
      body: { atPeriodEnd: false },
    });
    expect(canceled.status, JSON.stringify(canceled.body)).toBe(200);
    expect(canceled.body).toMatchObject({ status: 'canceled', canceledReason: 'canceled_now', deferred: 0 });
    const paid = 1_000 + charged;
    const refunded = canceled.body.refunded as number;
    const recognized = canceled.body.recognized as number;
    expect(refunded + recognized).toBe(paid);
    const position = canceled.body.position as string;
    const wallet = await call('GET', `/v1/wallets/${STUDENT}?consistentWith=${position}`, {
      token: tok.student!,
    });
    expect(wallet.status).toBe(200);
    expect(wallet.body).toMatchObject({ available: 50_000 - recognized });
    const deferred = await call(
      'GET',
      `/v1/accounts/platform:deferred-revenue:subscriptions/balance?consistentWith=${position}`,
      { token: tok.finance! },
    );
    expect(deferred.status, JSON.stringify(deferred.body)).toBe(200);
    expect(deferred.body).toMatchObject({ available: 0, creditsPosted: paid, debitsPosted: paid });
    const revenue = await call(
      'GET',
      `/v1/accounts/platform:revenue:subscriptions/statement?consistentWith=${position}`,
      { token: tok.finance! },
    );
    expect(revenue.status, JSON.stringify(revenue.body)).toBe(200);
    expect(JSON.stringify(revenue.body)).toContain(`Subscription ${subscriptionId} canceled`);
    const after = await call('GET', `/v1/students/${STUDENT}/subscription`, { token: tok.student! });
    expect(after.status).toBe(404);
  });

  it('bad input is a 4xx problem and appends nothing', async () => {
    const before = (await s.events()).length;
    for (const body of [
      { studentId: STUDENT },
      { studentId: STUDENT, planId: 'nope' },
      { studentId: 'x y', planId: 'gold' },
    ]) {
      const res = await call('POST', '/v1/subscriptions', { token: tok.student!, key: `bad-${n++}`, body });
      expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    const cancelBad = await call('POST', `/v1/subscriptions/${subscriptionId}/cancel`, {
      token: tok.student!,
      key: `bad-${n++}`,
      body: { atPeriodEnd: 'soon' },
    });
    expect(cancelBad.status).toBe(400);
    expect((await s.events()).length).toBe(before);
  });

  it('the routes are in the OpenAPI document', async () => {
    const res = await fetch(`${s.baseUrl}/docs/json`);
    const doc = (await res.json()) as { paths: Record<string, unknown> };
    for (const path of [
      '/v1/tenant/plans',
      '/v1/subscriptions',
      '/v1/subscriptions/{subscriptionId}',
      '/v1/students/{studentId}/subscription',
      '/v1/subscriptions/{subscriptionId}/change-plan',
      '/v1/subscriptions/{subscriptionId}/cancel',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
  });
});
