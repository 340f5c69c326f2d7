import Stripe from 'stripe';
import { expect } from 'vitest';
import { token } from '../../api/support/harness.js';
import { client, type RealStack, WEBHOOK_SECRET } from '../../api/support/realStack.js';

/**
 * Money flows of one tenant seeded through the public API, as clients and Stripe would drive them: a
 * top-up confirmed by a signed webhook, a booking completed and partly refunded, a second booking
 * cancelled, earnings cleared and part paid out, a manual adjustment. Returns the ids the console tests
 * look for and a finance admin's token.
 */
export interface Seeded {
  tenant: string;
  studentId: string;
  tutorId: string;
  bookingId: string;
  cancelledBookingId: string;
  topUpId: string;
  paymentIntentId: string;
  payoutId: string;
  refundId: string;
  adjustmentEntryId: string;
  finance: string;
  /** Head of the store after the seed: pass as consistentWith. */
  position: bigint;
}

export async function seedFlows(stack: RealStack, tenant: string, suffix = '1'): Promise<Seeded> {
  const call = client(stack.baseUrl);
  const studentId = `stu_${suffix}`;
  const tutorId = `tut_${suffix}`;
  const bookingId = `bk_${suffix}`;
  const paymentIntentId = `pi_${suffix}Seed${'x'.repeat(12)}`;
  const student = await token(tenant, studentId, 'student');
  const tutor = await token(tenant, tutorId, 'tutor');
  const finance = await token(tenant, `fin_${suffix}`, 'finance_admin');
  const admin = await token(tenant, `adm_${suffix}`, 'tenant_admin');
  const service = await token(tenant, `svc_${suffix}`, 'service');
  const ok = (res: { status: number; body: unknown }, status = 200) =>
    expect(res.status, JSON.stringify(res.body)).toBe(status);

  ok(await call('PUT', '/v1/tenant/settings', { token: admin, body: { earningsHoldPeriodDays: 0 } }));
  const topUp = await call('POST', `/v1/wallets/${studentId}/top-ups`, {
    token: student,
    key: `tu-${suffix}`,
    body: { amount: 10_000, currency: 'usd' },
  });
  ok(topUp, 201);
  const topUpId = String(topUp.body.topUpId);
  const payload = JSON.stringify({
    id: `evt_${suffix}Seed${'y'.repeat(12)}`,
    object: 'event',
    type: 'payment_intent.succeeded',
    created: Math.floor(Date.now() / 1000),
    data: {
      object: {
        id: paymentIntentId,
        object: 'payment_intent',
        amount: 10_000,
        amount_received: 10_000,
        currency: 'usd',
        status: 'succeeded',
        metadata: { tenantId: tenant, topUpId, studentId },
      },
    },
  });
  const webhook = await fetch(`${stack.baseUrl}/v1/webhooks/stripe`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }),
    },
    body: payload,
  });
  expect(webhook.status, await webhook.clone().text()).toBeLessThan(300);

  const scheduledAt = new Date(Date.now() + 7 * 86_400_000).toISOString();
  ok(
    await call('POST', '/v1/bookings', {
      token: student,
      key: `bk-${suffix}`,
      body: { bookingId, studentId, tutorId, price: { amount: 3_000, currency: 'usd' }, scheduledAt },
    }),
    201,
  );
  ok(await call('POST', `/v1/bookings/${bookingId}/complete`, { token: tutor, key: `cp-${suffix}` }));
  ok(await call('POST', '/v1/jobs/due-tasks', { token: service, body: {} }));
  const payout = await call('POST', `/v1/tutors/${tutorId}/payouts`, {
    token: tutor,
    key: `po-${suffix}`,
    body: { amount: 1_000, currency: 'usd' },
  });
  ok(payout, 201);
  const payoutId = String(payout.body.payoutId);
  await stack.service.markPayoutPaid(stack.ctx(tenant, `paid-${payoutId}`), {
    payoutId,
    stripeTransferId: `tr_${suffix}Seed${'z'.repeat(12)}`,
  });
  const refund = await call('POST', `/v1/bookings/${bookingId}/refunds`, {
    token: finance,
    key: `rf-${suffix}`,
    body: { amount: 500, reason: 'late start' },
  });
  ok(refund, 201);
  const cancelledBookingId = `bk_${suffix}c`;
  ok(
    await call('POST', '/v1/bookings', {
      token: student,
      key: `bk-${suffix}c`,
      body: {
        bookingId: cancelledBookingId,
        studentId,
        tutorId,
        price: { amount: 2_000, currency: 'usd' },
        scheduledAt,
      },
    }),
    201,
  );
  ok(
    await call('POST', `/v1/bookings/${cancelledBookingId}/cancel`, {
      token: student,
      key: `cn-${suffix}c`,
      body: { reason: 'changed my mind' },
    }),
  );
  const adjusted = await call('POST', '/v1/adjustments', {
    token: finance,
    key: `adj-${suffix}`,
    body: {
      account: `student:${studentId}:wallet`,
      direction: 'credit',
      amount: 100,
      currency: 'usd',
      reason: 'goodwill',
      metadata: { ticket: `T-${suffix}` },
    },
  });
  ok(adjusted, 201);
  const position = await stack.store.headPosition();
  expect(await stack.queries.waitForPosition(position, 10_000)).toBe(true);
  return {
    tenant,
    studentId,
    tutorId,
    bookingId,
    cancelledBookingId,
    topUpId,
    paymentIntentId,
    payoutId,
    refundId: String(refund.body.refundId),
    adjustmentEntryId: String(adjusted.body.entryId),
    finance,
    position,
  };
}
