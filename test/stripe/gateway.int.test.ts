import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FakeStripeServer } from '../../src/stripe/fake/server.js';
import { GatewayError } from '../../src/stripe/gateway.js';
import type { StripeGateway } from '../../src/stripe/stripeGateway.js';
import { startFakeStripe } from './support.js';

const meta = { tenantId: 't1', topUpId: 'tu1', studentId: 's1' };

async function gatewayError(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a GatewayError');
}

describe('StripeGateway (real SDK) against the fake Stripe over HTTP', () => {
  let fake: FakeStripeServer;
  let gateway: StripeGateway;
  let stop: () => Promise<void>;

  beforeEach(async () => {
    ({ fake, gateway, stop } = await startFakeStripe());
  });
  afterEach(async () => {
    await stop();
  });

  it('creates and confirms a PaymentIntent that succeeds, with our metadata and a fee-bearing charge', async () => {
    const pi = await gateway.createPaymentIntent({
      idempotencyKey: 'topup:tu1',
      amount: 10_000,
      currency: 'usd',
      paymentMethod: 'pm_card_visa',
      metadata: meta,
    });
    expect(pi.status).toBe('succeeded');
    expect(pi.amountReceived).toBe(10_000);
    const stored = await gateway.stripe.paymentIntents.retrieve(pi.paymentIntentId);
    expect(stored.metadata).toEqual(meta);
    const txns = [];
    for await (const t of gateway.listBalanceTransactions({})) txns.push(t);
    expect(txns).toHaveLength(1);
    expect(txns[0]).toMatchObject({
      type: 'charge',
      reportingCategory: 'charge',
      amount: 10_000,
      fee: 320, // 2.9% + 30
      net: 9_680,
      currency: 'usd',
      paymentIntentId: pi.paymentIntentId,
      metadata: meta,
    });
    expect(txns[0]?.sourceId).toMatch(/^ch_/);
    // Card funds are pending until available_on (two days on the fake's clock by default).
    expect(txns[0]?.id).toMatch(/^txn_/);
    expect(await gateway.retrieveBalance()).toEqual({
      available: [{ amount: 0, currency: 'usd' }],
      pending: [{ amount: 9_680, currency: 'usd' }],
    });
    fake.state.advanceTime(2 * 86_400);
    expect(await gateway.retrieveBalance()).toEqual({
      available: [{ amount: 9_680, currency: 'usd' }],
      pending: [{ amount: 0, currency: 'usd' }],
    });
  });

  it('makes funds of the test card 4000 0000 0000 0077 (pm_card_bypassPending) available at once', async () => {
    await gateway.createPaymentIntent({
      idempotencyKey: 'k-0077',
      amount: 1_000,
      currency: 'usd',
      paymentMethod: 'pm_card_bypassPending',
      metadata: meta,
    });
    expect(await gateway.retrieveBalance()).toEqual({
      available: [{ amount: 941, currency: 'usd' }],
      pending: [{ amount: 0, currency: 'usd' }],
    });
  });

  it('maps declines to card_declined / insufficient_funds with the PaymentIntent id, and replays them', async () => {
    const declined = await gatewayError(
      gateway.createPaymentIntent({
        idempotencyKey: 'k-dec',
        amount: 5_000,
        currency: 'usd',
        paymentMethod: 'pm_card_chargeDeclined',
        metadata: meta,
      }),
    );
    expect(declined.code).toBe('card_declined');
    expect(declined.details.paymentIntentId).toMatch(/^pi_/);
    const again = await gatewayError(
      gateway.createPaymentIntent({
        idempotencyKey: 'k-dec',
        amount: 5_000,
        currency: 'usd',
        paymentMethod: 'pm_card_chargeDeclined',
        metadata: meta,
      }),
    );
    expect(again.details.paymentIntentId).toBe(declined.details.paymentIntentId);
    const poor = await gatewayError(
      gateway.createPaymentIntent({
        idempotencyKey: 'k-poor',
        amount: 5_000,
        currency: 'usd',
        paymentMethod: 'pm_card_chargeDeclinedInsufficientFunds',
        metadata: meta,
      }),
    );
    expect(poor.code).toBe('insufficient_funds');
    const pi = await gateway.retrievePaymentIntent(poor.details.paymentIntentId as string);
    expect(pi.status).toBe('requires_payment_method');
    expect(pi.lastError).toMatch(/^insufficient_funds/);
  });

  it('leaves an unconfirmed PaymentIntent for the client with a client secret', async () => {
    const pi = await gateway.createPaymentIntent({
      idempotencyKey: 'k-open',
      amount: 2_000,
      currency: 'eur',
      metadata: meta,
    });
    expect(pi.status).toBe('requires_payment_method');
    expect(pi.clientSecret).toMatch(new RegExp(`^${pi.paymentIntentId}_secret_`));
    const confirmed = await gateway.stripe.paymentIntents.confirm(pi.paymentIntentId, {
      payment_method: 'pm_card_visa',
    });
    expect(confirmed.status).toBe('succeeded');
  });

  it('refunds partially then fully, and never more than was captured', async () => {
    const pi = await gateway.createPaymentIntent({
      idempotencyKey: 'k-r',
      amount: 10_000,
      currency: 'usd',
      paymentMethod: 'pm_card_visa',
      metadata: meta,
    });
    const r1 = await gateway.refundPaymentIntent({
      idempotencyKey: 'refund:1',
      paymentIntentId: pi.paymentIntentId,
      amount: 3_000,
      metadata: { topUpId: 'tu1' },
    });
    expect(r1).toMatchObject({ status: 'succeeded', amount: 3_000 });
    expect(r1.refundId).toMatch(/^re_/);
    const tooMuch = await gatewayError(
      gateway.refundPaymentIntent({
        idempotencyKey: 'refund:2',
        paymentIntentId: pi.paymentIntentId,
        amount: 7_001,
        metadata: {},
      }),
    );
    expect(tooMuch.code).toBe('invalid_request');
    expect(tooMuch.stripeCode).toBe('amount_too_large');
    // A validation failure is not stored under its key: the corrected request with a new amount works.
    const r2 = await gateway.refundPaymentIntent({
      idempotencyKey: 'refund:2',
      paymentIntentId: pi.paymentIntentId,
      amount: 7_000,
      metadata: {},
    });
    expect(r2.amount).toBe(7_000);
    const refunds = [];
    for await (const t of gateway.listBalanceTransactions({ type: 'refund' })) refunds.push(t);
    expect(refunds.map((t) => t.amount)).toEqual([-7_000, -3_000]); // newest first
    const full = await gatewayError(
      gateway.refundPaymentIntent({
        idempotencyKey: 'refund:3',
        paymentIntentId: pi.paymentIntentId,
        amount: 1,
        metadata: {},
      }),
    );
    expect(full.stripeCode).toBe('charge_already_refunded');
  });

  it('onboards a connected account, transfers to it and pays out; paid and failed', async () => {
    await gateway.createPaymentIntent({
      idempotencyKey: 'k-fund',
      amount: 50_000,
      currency: 'usd',
      paymentMethod: 'pm_card_bypassPending',
      metadata: meta,
    });
    const account = await gateway.createConnectedAccount({
      idempotencyKey: 'acct:t1:tutor1',
      tutorId: 'tutor1',
      tenantId: 't1',
    });
    // An Express account starts restricted: nothing can be transferred to it before onboarding.
    expect(account.payoutsEnabled).toBe(false);
    const refused = await gatewayError(
      gateway.createTransfer({
        idempotencyKey: 'payout:p0:transfer',
        amount: 100,
        currency: 'usd',
        destinationAccountId: account.stripeAccountId,
        metadata: {},
      }),
    );
    expect(refused.stripeCode).toBe('insufficient_capabilities_for_transfer');
    const link = await gateway.createAccountLink({
      accountId: account.stripeAccountId,
      refreshUrl: 'https://app.example/onboarding/refresh',
      returnUrl: 'https://app.example/onboarding/done',
    });
    const visit = await fetch(link.url, { redirect: 'manual' });
    expect(visit.status).toBe(302);
    expect(visit.headers.get('location')).toBe('https://app.example/onboarding/done');
    // A link works once: the second visit is sent to the refresh URL for a new link.
    const again = await fetch(link.url, { redirect: 'manual' });
    expect(again.headers.get('location')).toBe('https://app.example/onboarding/refresh');
    expect((await gateway.retrieveConnectedAccount(account.stripeAccountId)).payoutsEnabled).toBe(true);
    const same = await gateway.createConnectedAccount({
      idempotencyKey: 'acct:t1:tutor1',
      tutorId: 'tutor1',
      tenantId: 't1',
    });
    expect(same.stripeAccountId).toBe(account.stripeAccountId);
    expect((await gateway.retrieveConnectedAccount(account.stripeAccountId)).detailsSubmitted).toBe(true);

    const { transferId } = await gateway.createTransfer({
      idempotencyKey: 'payout:p1:transfer',
      amount: 8_000,
      currency: 'usd',
      destinationAccountId: account.stripeAccountId,
      metadata: { payoutId: 'p1' },
    });
    expect(transferId).toMatch(/^tr_/);
    const p1 = await gateway.createPayout({
      idempotencyKey: 'payout:p1:payout',
      amount: 5_000,
      currency: 'usd',
      connectedAccountId: account.stripeAccountId,
      metadata: { payoutId: 'p1' },
    });
    expect(p1.status).toBe('pending');
    fake.state.settlePayout(p1.payoutId, 'paid');
    expect((await gateway.retrievePayout(account.stripeAccountId, p1.payoutId)).status).toBe('paid');

    const p2 = await gateway.createPayout({
      idempotencyKey: 'payout:p2:payout',
      amount: 3_000,
      currency: 'usd',
      connectedAccountId: account.stripeAccountId,
      metadata: { payoutId: 'p2' },
    });
    fake.state.settlePayout(p2.payoutId, 'failed');
    expect(await gateway.retrievePayout(account.stripeAccountId, p2.payoutId)).toMatchObject({
      status: 'failed',
      failureCode: 'account_closed',
    });
    // The failed payout's money is back on the connected account.
    expect((await gateway.retrieveBalance(account.stripeAccountId)).available).toEqual([
      { amount: 3_000, currency: 'usd' },
    ]);

    const inPayout = [];
    for await (const t of gateway.listBalanceTransactions({
      connectedAccountId: account.stripeAccountId,
      payout: p1.payoutId,
    }))
      inPayout.push(t);
    expect(inPayout.map((t) => t.type).sort()).toEqual(['payment', 'payout']);
    const overdraw = await gatewayError(
      gateway.createPayout({
        idempotencyKey: 'payout:p3:payout',
        amount: 999_999,
        currency: 'usd',
        connectedAccountId: account.stripeAccountId,
        metadata: {},
      }),
    );
    expect(overdraw.stripeCode).toBe('balance_insufficient');
  });

  it("applies Stripe's idempotency rules: same key + same params replays, different params conflict", async () => {
    const input = {
      idempotencyKey: 'topup:same',
      amount: 1_000,
      currency: 'usd',
      paymentMethod: 'pm_card_visa',
      metadata: meta,
    };
    const a = await gateway.createPaymentIntent(input);
    const b = await gateway.createPaymentIntent(input);
    expect(b.paymentIntentId).toBe(a.paymentIntentId);
    const conflict = await gatewayError(gateway.createPaymentIntent({ ...input, amount: 2_000 }));
    expect(conflict.code).toBe('idempotency_conflict');
    const txns = [];
    for await (const t of gateway.listBalanceTransactions({})) txns.push(t);
    expect(txns).toHaveLength(1);
    // The replay carries Stripe's header.
    const raw = await fetch(
      `http://127.0.0.1:${(gateway.stripe.getApiField('port') as number | string).toString()}/v1/payment_intents`,
      {
        method: 'POST',
        headers: {
          authorization: 'Bearer sk_test_x',
          'idempotency-key': 'raw-key',
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'amount=900&currency=usd',
      },
    );
    const raw2 = await fetch(raw.url, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk_test_x',
        'idempotency-key': 'raw-key',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'currency=usd&amount=900',
    });
    expect(raw2.headers.get('idempotent-replayed')).toBe('true');
    expect(await raw2.json()).toEqual(await raw.json());
  });

  it('rejects bad parameters with Stripe errors (param named), not stored', async () => {
    const bad = await gatewayError(
      gateway.createPaymentIntent({
        idempotencyKey: 'k-bad',
        amount: 1_000,
        currency: 'xxx',
        metadata: meta,
      }),
    );
    expect(bad).toMatchObject({ code: 'invalid_request', stripeCode: 'invalid_currency' });
    const ok = await gateway.createPaymentIntent({
      idempotencyKey: 'k-bad',
      amount: 1_000,
      currency: 'usd',
      metadata: meta,
    });
    expect(ok.status).toBe('requires_payment_method');
    const res = await fetch(
      `http://127.0.0.1:${String(gateway.stripe.getApiField('port'))}/v1/payment_intents`,
      {
        method: 'POST',
        headers: { authorization: 'Bearer sk_test_x', 'content-type': 'application/x-www-form-urlencoded' },
        body: 'amount=1000&currency=usd&bogus=1',
      },
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        type: 'invalid_request_error',
        code: 'parameter_unknown',
        message: 'Received unknown parameter: bogus',
        param: 'bogus',
        doc_url: 'https://docs.stripe.com/error-codes/parameter-unknown',
        request_log_url: expect.stringMatching(/^https:\/\/dashboard\.stripe\.com\/test\/logs\/req_/),
      },
    });
  });

  it('retries a Stripe 500 in the middle of a payout with the same key and pays once', async () => {
    await gateway.createPaymentIntent({
      idempotencyKey: 'k-fund2',
      amount: 20_000,
      currency: 'usd',
      paymentMethod: 'pm_card_bypassPending',
      metadata: meta,
    });
    const account = await gateway.createConnectedAccount({
      idempotencyKey: 'acct:t1:tutor2',
      tutorId: 'tutor2',
      tenantId: 't1',
    });
    fake.state.setAccountEnabled(account.stripeAccountId, true);
    await gateway.createTransfer({
      idempotencyKey: 'po9:transfer',
      amount: 6_000,
      currency: 'usd',
      destinationAccountId: account.stripeAccountId,
      metadata: {},
    });
    // The payout is processed, then the response is lost (500); then a 500 before processing; then 429.
    fake.failNext(1, 500, 'after');
    fake.failNext(1, 500, 'before');
    fake.failNext(1, 429, 'before');
    const payout = await gateway.createPayout({
      idempotencyKey: 'po9:payout',
      amount: 6_000,
      currency: 'usd',
      connectedAccountId: account.stripeAccountId,
      metadata: {},
    });
    expect(fake.requestCounts.get('POST /v1/payouts')).toBe(4);
    const all = [];
    for await (const t of gateway.listBalanceTransactions({
      connectedAccountId: account.stripeAccountId,
      type: 'payout',
    }))
      all.push(t);
    expect(all).toHaveLength(1);
    expect(all[0]?.sourceId).toBe(payout.payoutId);
  });

  it('retries a timed-out request (slow Stripe) and gives up with unavailable after maxRetries', async () => {
    // The timeout leaves room for a busy machine (the retry, answered at once, must fit within it);
    // the delay is well past it, so the first attempt always times out.
    const slow = await startFakeStripe({ gateway: { timeoutMs: 1_000, maxRetries: 1 } });
    try {
      slow.fake.delayNext(1, 3_000);
      await slow.gateway.ping();
      expect(slow.fake.requestCounts.get('GET /v1/balance')).toBe(2);
      slow.fake.failNext(2, 503);
      const err = await gatewayError(slow.gateway.ping());
      expect(err.code).toBe('unavailable');
      slow.fake.failNext(2, 429);
      expect((await gatewayError(slow.gateway.ping())).code).toBe('rate_limited');
    } finally {
      await slow.stop();
    }
  });

  it('opens the circuit after consecutive failures, fails fast, and recovers through half-open', async () => {
    let nowMs = 1_000_000;
    const cb = await startFakeStripe({
      gateway: { maxRetries: 0, breaker: { failureThreshold: 3, cooldownMs: 10_000 }, now: () => nowMs },
    });
    try {
      cb.fake.failNext(3, 500);
      for (let i = 0; i < 3; i++) expect((await gatewayError(cb.gateway.ping())).code).toBe('unavailable');
      expect(cb.gateway.breakerState).toBe('open');
      const before = cb.fake.requestCounts.get('GET /v1/balance');
      const fast = await gatewayError(cb.gateway.ping());
      expect(fast.code).toBe('unavailable');
      expect(fast.message).toMatch(/circuit open/);
      expect(cb.fake.requestCounts.get('GET /v1/balance')).toBe(before); // never reached Stripe
      nowMs += 10_000;
      expect(cb.gateway.breakerState).toBe('half_open');
      cb.fake.failNext(1, 500);
      await gatewayError(cb.gateway.ping()); // the trial fails: open again
      expect(cb.gateway.breakerState).toBe('open');
      nowMs += 10_000;
      await cb.gateway.ping(); // the trial succeeds: closed
      expect(cb.gateway.breakerState).toBe('closed');
      // Declines and bad requests do not count as Stripe being down.
      for (let i = 0; i < 5; i++) {
        await gatewayError(
          cb.gateway.createPaymentIntent({
            idempotencyKey: `d${i}`,
            amount: 1_000,
            currency: 'usd',
            paymentMethod: 'pm_card_chargeDeclined',
            metadata: meta,
          }),
        );
      }
      expect(cb.gateway.breakerState).toBe('closed');
    } finally {
      await cb.stop();
    }
  });

  it('takes faults and test actions through the /_fake admin API (soak harness)', async () => {
    const base = `http://127.0.0.1:${String(gateway.stripe.getApiField('port'))}`;
    const admin = (method: string, path: string, body?: unknown) =>
      fetch(`${base}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    expect((await admin('POST', '/_fake/faults', { failNext: 1, status: 503 })).status).toBe(200);
    await gateway.ping(); // the 503 is retried
    expect(fake.requestCounts.get('GET /v1/balance')).toBe(2);
    const pi = await gateway.createPaymentIntent({
      idempotencyKey: 'adm',
      amount: 1_000,
      currency: 'usd',
      paymentMethod: 'pm_card_visa',
      metadata: meta,
    });
    const dispute = (await (
      await admin('POST', '/_fake/disputes', { payment_intent: pi.paymentIntentId })
    ).json()) as { id: string; status: string };
    expect(dispute.status).toBe('needs_response');
    expect(
      ((await (await admin('POST', `/_fake/disputes/${dispute.id}/won`)).json()) as { status: string })
        .status,
    ).toBe('won');
    expect((await admin('POST', `/_fake/disputes/${dispute.id}/won`)).status).toBe(400);
    const stats = (await (await admin('GET', '/_fake/stats')).json()) as { pendingFaults: number };
    expect(stats.pendingFaults).toBe(0);
    expect((await admin('DELETE', '/_fake/faults')).status).toBe(200);
  });

  it('pages balance transactions with created/type filters and bounded page size', async () => {
    let now = 1_700_000_000;
    const paged = await startFakeStripe({ fake: { nowSeconds: () => now } });
    try {
      for (let i = 0; i < 7; i++) {
        now += 10;
        await paged.gateway.createPaymentIntent({
          idempotencyKey: `p${i}`,
          amount: 1_000 + i,
          currency: 'usd',
          paymentMethod: 'pm_card_visa',
          metadata: meta,
        });
      }
      const all = [];
      for await (const t of paged.gateway.listBalanceTransactions({ pageSize: 2 })) all.push(t.amount);
      expect(all).toEqual([1006, 1005, 1004, 1003, 1002, 1001, 1000]);
      expect(paged.fake.requestCounts.get('GET /v1/balance_transactions')).toBe(4);
      const window = [];
      for await (const t of paged.gateway.listBalanceTransactions({
        pageSize: 3,
        created: { gte: 1_700_000_030, lt: 1_700_000_060 },
      }))
        window.push(t.amount);
      expect(window).toEqual([1004, 1003, 1002]);
      const none = [];
      for await (const t of paged.gateway.listBalanceTransactions({ type: 'refund' })) none.push(t);
      expect(none).toEqual([]);
    } finally {
      await paged.stop();
    }
  });
});
