import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack, WEBHOOK_SECRET } from './support/realStack.js';

/**
 * Every money flow end to end over real HTTP against the real stack: Postgres event store + read
 * models (PGlite, or the real server with DATABASE_URL) and Redis idempotency/rate limits with REDIS_URL.
 */
const T = 'e2e';

describe(`money flows over HTTP (${process.env.DATABASE_URL ? 'Postgres' : 'PGlite'}${process.env.REDIS_URL ? ' + Redis' : ''})`, () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  const tok: Record<string, string> = {};
  beforeAll(async () => {
    s = await startRealStack();
    call = client(s.baseUrl);
    tok.student = await token(T, 'stu_e', 'student');
    tok.tutor = await token(T, 'tut_e', 'tutor');
    tok.finance = await token(T, 'fin_e', 'finance_admin');
    tok.admin = await token(T, 'adm_e', 'tenant_admin');
    tok.service = await token(T, 'svc_e', 'service');
  }, 180_000); // database start-up is slow on a loaded 2-core machine
  afterAll(() => s.close());

  const at = (position: unknown) => `consistentWith=${String(position)}`;

  it('runs top-up, book, complete, clear, pay out, refund, cancel, adjust, settings, audit', async () => {
    // Settings: no earnings hold so clearing can run now.
    const settings = await call('PUT', '/v1/tenant/settings', {
      token: tok.admin!,
      body: { earningsHoldPeriodDays: 0, commissionRateBps: 2000 },
    });
    expect(settings.status, JSON.stringify(settings.body)).toBe(200);
    expect(settings.body.settings).toMatchObject({ earningsHoldPeriodDays: 0, commissionRateBps: 2000 });
    const readSettings = await call('GET', `/v1/tenant/settings?${at(settings.body.position)}`, {
      token: tok.admin!,
    });
    expect(readSettings.body).toMatchObject({ earningsHoldPeriodDays: 0 });

    // Top-up, confirmed the way the Stripe webhook would.
    const topUp = await call('POST', '/v1/wallets/stu_e/top-ups', {
      token: tok.student!,
      key: 'tu-1',
      body: { amount: 10_000, currency: 'usd' },
    });
    expect(topUp.status, JSON.stringify(topUp.body)).toBe(201);
    expect(topUp.body).toMatchObject({ studentId: 'stu_e', amount: { amount: 10_000, currency: 'usd' } });
    const topUpId = topUp.body.topUpId as string;
    // Stripe's webhook (signed, no JWT) confirms the payment.
    const unsigned = await fetch(`${s.baseUrl}/v1/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(unsigned.status).toBe(400);
    const payload = JSON.stringify({
      id: 'evt_e2e_1',
      object: 'event',
      type: 'payment_intent.succeeded',
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          id: 'pi_e2e_1',
          object: 'payment_intent',
          amount: 10_000,
          amount_received: 10_000,
          currency: 'usd',
          status: 'succeeded',
          metadata: { tenantId: T, topUpId, studentId: 'stu_e' },
        },
      },
    });
    const webhook = await fetch(`${s.baseUrl}/v1/webhooks/stripe`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }),
      },
      body: payload,
    });
    expect(webhook.status, await webhook.clone().text()).toBeLessThan(300);
    const succeeded = { position: await s.store.headPosition() };
    const wallet = await call('GET', `/v1/wallets/stu_e?${at(succeeded.position)}`, { token: tok.student! });
    expect(wallet.status).toBe(200);
    expect(wallet.body).toMatchObject({ available: 10_000, pending: 0, posted: 10_000, currency: 'usd' });
    const topUpRead = await call('GET', `/v1/top-ups/${topUpId}?${at(succeeded.position)}`, {
      token: tok.student!,
    });
    expect(topUpRead.body).toMatchObject({ status: 'succeeded' });

    // Book: a hold on the wallet.
    const booked = await call('POST', '/v1/bookings', {
      token: tok.student!,
      key: 'bk-1',
      body: {
        bookingId: 'bk_e1',
        studentId: 'stu_e',
        tutorId: 'tut_e',
        price: { amount: 3_000, currency: 'usd' },
        scheduledAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
      },
    });
    expect(booked.status, JSON.stringify(booked.body)).toBe(201);
    expect(booked.body).toMatchObject({ bookingId: 'bk_e1', status: 'held' });
    const held = await call('GET', `/v1/wallets/stu_e?${at(booked.body.position)}`, { token: tok.student! });
    expect(held.body).toMatchObject({ available: 7_000, pending: 3_000 });

    // Complete (tutor): capture and split 80/20.
    const completed = await call('POST', '/v1/bookings/bk_e1/complete', { token: tok.tutor!, key: 'cp-1' });
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);
    expect(completed.body).toMatchObject({
      status: 'completed',
      captured: 3_000,
      commission: 600,
      tutorShare: 2_400,
    });

    // Clear earnings (service job), then pay out.
    const due = await call('POST', '/v1/jobs/due-tasks', { token: tok.service!, body: {} });
    expect(due.status, JSON.stringify(due.body)).toBe(200);
    expect(due.body.clearedEarnings).toBe(1);
    const headAfterClear = await s.store.headPosition();
    const earnings = await call('GET', `/v1/tutors/tut_e/earnings?${at(headAfterClear)}`, {
      token: tok.tutor!,
    });
    expect(earnings.body).toMatchObject({ available: 2_400, pending: 0 });
    const payout = await call('POST', '/v1/tutors/tut_e/payouts', {
      token: tok.tutor!,
      key: 'po-1',
      body: { amount: 1_000, currency: 'usd' },
    });
    expect(payout.status, JSON.stringify(payout.body)).toBe(201);
    const payoutId = payout.body.payoutId as string;
    const paid = await s.service.markPayoutPaid(s.ctx(T, `paid-${payoutId}`), {
      payoutId,
      stripeTransferId: 'tr_1',
    });
    const payoutRead = await call('GET', `/v1/payouts/${payoutId}?${at(paid.position)}`, {
      token: tok.tutor!,
    });
    expect(payoutRead.body).toMatchObject({ status: 'paid', amount: { amount: 1_000, currency: 'usd' } });
    const afterPayout = await call('GET', `/v1/tutors/tut_e/earnings?${at(paid.position)}`, {
      token: tok.tutor!,
    });
    expect(afterPayout.body).toMatchObject({ available: 1_400, paidOut: 1_000 });

    // Refund part of the booking (finance admin).
    const refund = await call('POST', '/v1/bookings/bk_e1/refunds', {
      token: tok.finance!,
      key: 'rf-1',
      body: { amount: 500, reason: 'late start' },
    });
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    expect(refund.body.booking).toMatchObject({ refunded: 500 });
    const afterRefund = await call('GET', `/v1/wallets/stu_e?${at(refund.body.position)}`, {
      token: tok.student!,
    });
    expect(afterRefund.body).toMatchObject({ available: 7_500 });

    // A second booking, cancelled in the free window: the hold is released.
    const second = await call('POST', '/v1/bookings', {
      token: tok.student!,
      key: 'bk-2',
      body: {
        bookingId: 'bk_e2',
        studentId: 'stu_e',
        tutorId: 'tut_e',
        price: { amount: 2_000, currency: 'usd' },
        scheduledAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
      },
    });
    expect(second.status).toBe(201);
    const cancelled = await call('POST', '/v1/bookings/bk_e2/cancel', {
      token: tok.student!,
      key: 'cn-2',
      body: { reason: 'changed my mind' },
    });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', cancellationFee: 0 });

    // Insufficient funds: 422, nothing appended.
    const before = (await s.events()).length;
    const tooMuch = await call('POST', '/v1/bookings', {
      token: tok.student!,
      key: 'bk-3',
      body: {
        studentId: 'stu_e',
        tutorId: 'tut_e',
        price: { amount: 1_000_000, currency: 'usd' },
        scheduledAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
      },
    });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.code).toBe('insufficient_funds');
    expect((await s.events()).length).toBe(before);

    // Manual adjustment (finance admin) and the audit trail.
    const adjusted = await call('POST', '/v1/adjustments', {
      token: tok.finance!,
      key: 'adj-1',
      body: {
        account: 'student:stu_e:wallet',
        direction: 'credit',
        amount: 100,
        currency: 'usd',
        reason: 'goodwill',
      },
    });
    expect(adjusted.status, JSON.stringify(adjusted.body)).toBe(201);
    const final = await call('GET', `/v1/wallets/stu_e?${at(adjusted.body.position)}`, {
      token: tok.student!,
    });
    expect(final.body).toMatchObject({ available: 7_600, pending: 0 });

    const entry = await call('GET', `/v1/entries/${String(adjusted.body.entryId)}`, { token: tok.finance! });
    expect(entry.status, JSON.stringify(entry.body)).toBe(200);
    expect(entry.body).toMatchObject({ actor: { id: 'fin_e', role: 'finance_admin' } });
    expect(entry.body.postings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ account: 'student:stu_e:wallet', side: 'credit', amount: 100 }),
      ]),
    );

    const statement = await call('GET', '/v1/wallets/stu_e/transactions?limit=200', { token: tok.student! });
    expect(statement.status).toBe(200);
    const items = statement.body.items as Array<{ balanceAfter: { available: number } }>;
    expect(items.length).toBeGreaterThan(3);
    const balance = await call('GET', '/v1/accounts/student:stu_e:wallet/balance', { token: tok.student! });
    expect(balance.body).toMatchObject({ account: 'student:stu_e:wallet', available: 7_600 });
    const asOf = await call(
      'GET',
      `/v1/accounts/student:stu_e:wallet/balance?position=${String(succeeded.position)}`,
      {
        token: tok.finance!,
      },
    );
    expect(asOf.body).toMatchObject({ available: 10_000 });

    const trial = await call('GET', '/v1/ledger/trial-balance', { token: tok.finance! });
    expect(trial.body).toMatchObject({ balanced: true });
    const stream = await call('GET', '/v1/streams/booking-e2e.bk_e1/events?limit=2', { token: tok.finance! });
    expect(stream.status).toBe(200);
    expect((stream.body.events as unknown[]).length).toBe(2);
    expect(stream.body.nextRevision).toBe('2');

    const metrics = await fetch(`${s.baseUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/ledger_command_outcomes_total\{command="placeBooking",code="ok"\} 2/);
    expect(metrics).toMatch(
      /ledger_command_outcomes_total\{command="placeBooking",code="insufficient_funds"\} 1/,
    );
    expect(metrics).toContain('ledger_eventstore_append_duration_seconds_bucket');
    // The wallet reads above went through the balance cache, fed by the runner's notifications.
    expect(metrics).toMatch(/ledger_balance_cache_reads_total\{outcome="miss"\} [1-9]/);
    expect(metrics).toMatch(/ledger_balance_cache_live 1/);
    const ready = await fetch(`${s.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('idempotency on the real stack: replays, and concurrent same-key requests append one booking', async () => {
    const auth = { token: await token(T, 'stu_i', 'student') };
    await s.service.adjust(s.ctx(T, 'seed-stu_i', 'finance_admin'), {
      account: 'student:stu_i:wallet',
      direction: 'credit',
      amount: { amount: 50_000, currency: 'usd' },
      reason: 'seed',
    });
    const body = {
      studentId: 'stu_i',
      tutorId: 'tut_e',
      price: { amount: 1_000, currency: 'usd' },
      scheduledAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
    };
    const results = await Promise.all(
      Array.from({ length: 8 }, () => call('POST', '/v1/bookings', { ...auth, key: 'same', body })),
    );
    const created = results.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const r of results) expect([201, 409]).toContain(r.status);
    const bookingIds = new Set(created.map((r) => r.body.bookingId));
    expect(bookingIds.size).toBe(1);
    const placed = (await s.events()).filter(
      (e) => e.type === 'BookingPlaced' && e.streamName.endsWith(`.${[...bookingIds][0]}`),
    );
    expect(placed).toHaveLength(1);
    const replay = await call('POST', '/v1/bookings', { ...auth, key: 'same', body });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(created[0]!.body);
    const reused = await call('POST', '/v1/bookings', {
      ...auth,
      key: 'same',
      body: { ...body, price: { amount: 2_000, currency: 'usd' } },
    });
    expect(reused.status).toBe(422);
    expect(reused.body.code).toBe('idempotency_key_reused');
  });
});
