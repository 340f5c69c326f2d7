import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack } from './support/realStack.js';

/** Promo codes over real HTTP against the real stack (event store, read models, projections). */
const T = 'promoe2e';

describe('promo codes over HTTP', () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  const tok: Record<string, string> = {};
  beforeAll(async () => {
    s = await startRealStack();
    call = client(s.baseUrl);
    tok.student = await token(T, 'stu_p', 'student');
    tok.tutor = await token(T, 'tut_p', 'tutor');
    tok.finance = await token(T, 'fin_p', 'finance_admin');
    tok.admin = await token(T, 'adm_p', 'tenant_admin');
    await s.service.initiateTopUp(s.ctx(T, 'tu-p'), {
      topUpId: 'tu_p',
      studentId: 'stu_p',
      amount: { amount: 10_000, currency: 'usd' },
    });
    await s.service.succeedTopUp(s.ctx(T, 'tu-p-ok'), {
      topUpId: 'tu_p',
      paymentIntentId: 'pi_p',
      amountReceived: 10_000,
      currency: 'usd',
    });
  }, 180_000);
  afterAll(() => s.close());

  const scheduledAt = () => new Date(Date.now() + 3 * 86_400_000).toISOString();

  it('create, redeem on a booking, confirm on completion, read usage; refusals are 422 and change nothing', async () => {
    const created = await call('POST', '/v1/promo-codes', {
      token: tok.admin!,
      key: 'pc-1',
      body: {
        code: 'welcome10',
        currency: 'usd',
        discount: { type: 'percentage', bps: 1_000, maxAmount: 150 },
        appliesTo: ['bookings', 'courses'],
        validUntil: new Date(Date.now() + 30 * 86_400_000).toISOString(),
        maxRedemptions: 2,
        maxRedemptionsPerStudent: 1,
        minimumSpend: 500,
        budget: 1_000,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.promoCode).toMatchObject({ code: 'WELCOME10', status: 'active', budget: 1_000 });
    const again = await call('POST', '/v1/promo-codes', {
      token: tok.admin!,
      key: 'pc-1b',
      body: {
        code: 'WELCOME10',
        currency: 'usd',
        discount: { type: 'fixed', amount: 5 },
        appliesTo: ['bookings'],
        validUntil: new Date(Date.now() + 86_400_000).toISOString(),
        maxRedemptions: 1,
      },
    });
    expect(again.status).toBe(422);
    expect(again.body).toMatchObject({ code: 'invalid_state' });

    const tooSmall = await call('POST', '/v1/bookings', {
      token: tok.student!,
      key: 'bk-small',
      body: {
        studentId: 'stu_p',
        tutorId: 'tut_p',
        price: { amount: 400, currency: 'usd' },
        scheduledAt: scheduledAt(),
        promoCode: 'WELCOME10',
      },
    });
    expect(tooSmall.status).toBe(422);
    expect(tooSmall.body).toMatchObject({
      code: 'promo_code_rejected',
      details: { reason: 'minimum_spend' },
    });
    const unknown = await call('POST', '/v1/bookings', {
      token: tok.student!,
      key: 'bk-unknown',
      body: {
        studentId: 'stu_p',
        tutorId: 'tut_p',
        price: { amount: 2_000, currency: 'usd' },
        scheduledAt: scheduledAt(),
        promoCode: 'NOPE123',
      },
    });
    expect(unknown.body).toMatchObject({ code: 'promo_code_rejected', details: { reason: 'unknown_code' } });

    const booked = await call('POST', '/v1/bookings', {
      token: tok.student!,
      key: 'bk-1',
      body: {
        bookingId: 'bk_p1',
        studentId: 'stu_p',
        tutorId: 'tut_p',
        price: { amount: 2_000, currency: 'usd' },
        scheduledAt: scheduledAt(),
        promoCode: 'welcome10',
      },
    });
    expect(booked.status, JSON.stringify(booked.body)).toBe(201);
    expect(booked.body).toMatchObject({
      price: { amount: 2_000, currency: 'usd' },
      discounts: [{ kind: 'promo_code', reference: 'WELCOME10', amount: 150 }],
    });
    const wallet = await call('GET', `/v1/wallets/stu_p?consistentWith=${booked.body.position}`, {
      token: tok.student!,
    });
    expect(wallet.body).toMatchObject({ available: 10_000 - 1_850, pending: 1_850 });

    const second = await call('POST', '/v1/bookings', {
      token: tok.student!,
      key: 'bk-2',
      body: {
        studentId: 'stu_p',
        tutorId: 'tut_p',
        price: { amount: 2_000, currency: 'usd' },
        scheduledAt: scheduledAt(),
        promoCode: 'WELCOME10',
      },
    });
    expect(second.body).toMatchObject({
      code: 'promo_code_rejected',
      details: { reason: 'per_student_limit' },
    });

    const completed = await call('POST', '/v1/bookings/bk_p1/complete', { token: tok.tutor!, key: 'c-1' });
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);
    const code = await call('GET', '/v1/promo-codes/Welcome10', { token: tok.finance! });
    expect(code.body).toMatchObject({
      usage: { reserved: 0, confirmed: 1, discountConfirmed: 150, redemptionsLeft: 1, budgetLeft: 850 },
    });
    const booking = await call('GET', `/v1/bookings/bk_p1?consistentWith=${completed.body.position}`, {
      token: tok.student!,
    });
    expect(booking.body).toMatchObject({
      status: 'completed',
      captured: 2_000,
      discounts: [{ kind: 'promo_code', reference: 'WELCOME10', amount: 150 }],
    });
    const promotions = await call(
      'GET',
      `/v1/accounts/platform:expense:promotions/balance?consistentWith=${completed.body.position}`,
      { token: tok.finance! },
    );
    expect(promotions.status, JSON.stringify(promotions.body)).toBe(200);
    expect(JSON.stringify(promotions.body)).toContain('150');

    const deactivated = await call('PATCH', '/v1/promo-codes/WELCOME10', {
      token: tok.admin!,
      key: 'pc-off',
      body: { active: false },
    });
    expect(deactivated.status, JSON.stringify(deactivated.body)).toBe(200);
    expect(deactivated.body.promoCode).toMatchObject({ status: 'inactive' });
    const shorter = await call('PATCH', '/v1/promo-codes/WELCOME10', {
      token: tok.admin!,
      key: 'pc-short',
      body: { validUntil: new Date(Date.now() + 86_400_000).toISOString() },
    });
    expect(shorter.status).toBe(400);
    expect(shorter.body).toMatchObject({ code: 'validation_failed' });
    const empty = await call('PATCH', '/v1/promo-codes/WELCOME10', {
      token: tok.admin!,
      key: 'pc-e',
      body: {},
    });
    expect(empty.status).toBe(400);
    const missing = await call('GET', '/v1/promo-codes/NOSUCH', { token: tok.admin! });
    expect(missing.status).toBe(404);
  });
});
