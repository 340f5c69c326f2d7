import Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signStripePayload } from '../../src/stripe/fake/webhookDispatcher.js';
import {
  allEvents,
  CONNECT_WEBHOOK_SECRET,
  countEvents,
  type LedgerHarness,
  postedBalances,
  runScenario,
  startLedgerHarness,
  WEBHOOK_SECRET,
} from './ledgerHarness.js';

const wallet = (s: string) => `student:${s}:wallet|usd`;

async function topUp(h: LedgerHarness, topUpId: string, amount: number, paymentMethod?: string) {
  return h.service.initiateTopUp(h.ctx(`init-${topUpId}`, 'student'), {
    topUpId,
    studentId: 's1',
    amount: { amount, currency: 'usd' },
    ...(paymentMethod ? { paymentMethod } : {}),
  });
}

async function post(
  url: string,
  body: string,
  signature: string | undefined,
): Promise<{ status: number; json: Record<string, unknown>; contentType: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature ? { 'stripe-signature': signature } : {}) },
    body,
  });
  return {
    status: res.status,
    json: (await res.json()) as Record<string, unknown>,
    contentType: res.headers.get('content-type') ?? '',
  };
}

describe('Stripe webhooks -> ledger (real SDK, fake Stripe, real command layer on MemoryEventStore)', () => {
  let h: LedgerHarness;
  beforeEach(async () => {
    h = await startLedgerHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('top-up: client confirms the PaymentIntent, the signed webhook credits the wallet', async () => {
    const { topUp: view } = await topUp(h, 'tu1', 10_000);
    expect(view.status).toBe('pending');
    expect(view.clientSecret).toBeTruthy();
    // The student's browser confirms the PaymentIntent with Stripe directly.
    await h.gateway.stripe.paymentIntents.confirm(view.paymentIntentId as string, {
      payment_method: 'pm_card_visa',
    });
    await h.fake.flushWebhooks();
    expect(await postedBalances(h.store)).toEqual({ [wallet('s1')]: -10_000, 'stripe:balance|usd': 10_000 });
    const delivered = h.fake.webhooks.deliveries.filter((d) => d.type === 'payment_intent.succeeded');
    expect(delivered.map((d) => d.status)).toEqual([200]);
  });

  it('the synchronous confirmation and the webhook both report success: the wallet is credited once', async () => {
    const { topUp: view } = await topUp(h, 'tu-sync', 5_000, 'pm_card_visa');
    expect(view.status).toBe('succeeded');
    await h.fake.flushWebhooks();
    expect(await countEvents(h.store, 'WalletToppedUp')).toBe(1);
    expect((await postedBalances(h.store))[wallet('s1')]).toBe(-5_000);
  });

  it('rejects forged, expired and re-signed (wrong secret) webhooks with 400 problem+json and changes nothing', async () => {
    const { topUp: view } = await topUp(h, 'tu2', 7_000);
    const pi = await h.gateway.stripe.paymentIntents.retrieve(view.paymentIntentId as string);
    const event = {
      id: 'evt_forged_1',
      object: 'event',
      type: 'payment_intent.succeeded',
      api_version: '2026-10-28.endive',
      created: 1,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object: { ...pi, status: 'succeeded', amount_received: 7_000 } },
    };
    const body = JSON.stringify(event);
    const now = Math.floor(Date.now() / 1000);
    const headBefore = await h.store.headPosition();

    const forged = await post(h.webhookUrl, body, signStripePayload(body, 'whsec_not_the_secret', now));
    const expired = await post(h.webhookUrl, body, signStripePayload(body, WEBHOOK_SECRET, now - 301));
    const otherPayload = signStripePayload('{"id":"evt_real"}', WEBHOOK_SECRET, now); // a real signature, replayed on another body
    const replayed = await post(h.webhookUrl, body, otherPayload);
    const missing = await post(h.webhookUrl, body, undefined);
    for (const r of [forged, expired, replayed, missing]) {
      expect(r.status).toBe(400);
      expect(r.contentType).toMatch(/application\/problem\+json/);
      expect(r.json).toMatchObject({ status: 400, code: 'validation_failed' });
    }
    expect(await h.store.headPosition()).toBe(headBefore);
    // The same body, properly signed (as the SDK's test helper does), is accepted.
    const good = await post(
      h.webhookUrl,
      body,
      Stripe.webhooks.generateTestHeaderString({ payload: body, secret: WEBHOOK_SECRET }),
    );
    expect(good).toMatchObject({ status: 200, json: { outcome: 'applied' } });
  });

  it("refuses each endpoint's events signed with the other endpoint's secret, and events of the wrong kind", async () => {
    const { topUp: view } = await topUp(h, 'tu9', 4_000);
    const pi = await h.gateway.stripe.paymentIntents.retrieve(view.paymentIntentId as string);
    const platformEvent = JSON.stringify({
      id: 'evt_platform_1',
      object: 'event',
      type: 'payment_intent.succeeded',
      api_version: '2026-10-28.endive',
      created: 1,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object: { ...pi, status: 'succeeded', amount_received: 4_000 } },
    });
    const { account } = await h.service.openPayoutAccount(h.ctx('acct-9', 'tutor'), { tutorId: 'x' });
    const connectEvent = JSON.stringify({
      id: 'evt_connect_1',
      object: 'event',
      type: 'account.updated',
      account: account.stripeAccountId,
      api_version: '2026-10-28.endive',
      created: 1,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object: await h.gateway.stripe.accounts.retrieve(account.stripeAccountId) },
    });
    const sign = (payload: string, secret: string) =>
      Stripe.webhooks.generateTestHeaderString({ payload, secret });
    const headBefore = await h.store.headPosition();
    const refused = [
      // A platform event signed with the Connect secret, at the platform endpoint.
      await post(h.webhookUrl, platformEvent, sign(platformEvent, CONNECT_WEBHOOK_SECRET)),
      // A Connect event signed with the platform secret, at the Connect endpoint.
      await post(h.connectWebhookUrl, connectEvent, sign(connectEvent, WEBHOOK_SECRET)),
      // Correctly signed for the endpoint, but of the other kind (the endpoints are misconfigured).
      await post(h.connectWebhookUrl, platformEvent, sign(platformEvent, CONNECT_WEBHOOK_SECRET)),
      await post(h.webhookUrl, connectEvent, sign(connectEvent, WEBHOOK_SECRET)),
    ];
    for (const r of refused) expect(r).toMatchObject({ status: 400, json: { code: 'validation_failed' } });
    expect(await h.store.headPosition()).toBe(headBefore);
    expect(await post(h.webhookUrl, platformEvent, sign(platformEvent, WEBHOOK_SECRET))).toMatchObject({
      status: 200,
      json: { outcome: 'applied' },
    });
    expect(
      await post(h.connectWebhookUrl, connectEvent, sign(connectEvent, CONNECT_WEBHOOK_SECRET)),
    ).toMatchObject({
      status: 200,
    });
  });

  it('the fake sends connected-account events to the Connect endpoint signed with its secret', async () => {
    const { account } = await h.service.openPayoutAccount(h.ctx('acct-10', 'tutor'), { tutorId: 'y' });
    h.fake.state.setAccountEnabled(account.stripeAccountId, false);
    const { topUp: view } = await topUp(h, 'tu10', 2_000);
    await h.gateway.stripe.paymentIntents.confirm(view.paymentIntentId as string, {
      payment_method: 'pm_card_visa',
    });
    await h.fake.flushWebhooks();
    const updated = h.fake.webhooks.deliveries.filter((d) => d.type === 'account.updated');
    expect(updated.length).toBeGreaterThan(0);
    expect(updated.every((d) => d.status === 200)).toBe(true);
    expect(h.fake.state.retrieveEvent(updated[0]?.eventId as string).account).toBe(account.stripeAccountId);
    expect((await postedBalances(h.store))[wallet('s1')]).toBe(-2_000);
  });

  it('a duplicated webhook applies once', async () => {
    h.fake.setWebhookFaults({ duplicate: true });
    const { topUp: view } = await topUp(h, 'tu3', 3_000);
    await h.gateway.stripe.paymentIntents.confirm(view.paymentIntentId as string, {
      payment_method: 'pm_card_visa',
    });
    await h.fake.flushWebhooks();
    const deliveries = h.fake.webhooks.deliveries.filter((d) => d.type === 'payment_intent.succeeded');
    expect(deliveries).toHaveLength(2);
    expect(await countEvents(h.store, 'WalletToppedUp')).toBe(1);
    expect((await postedBalances(h.store))[wallet('s1')]).toBe(-3_000);
    // A later redelivery of the same event id is answered from the dedupe store and changes nothing.
    const headBefore = await h.store.headPosition();
    const succeeded = (await allEvents(h.store)).find((e) => e.type === 'WalletToppedUp');
    expect(succeeded).toBeDefined();
    const original = h.fake.webhooks.deliveries.find((d) => d.type === 'payment_intent.succeeded');
    const body = JSON.stringify(h.fake.state.retrieveEvent(original?.eventId as string));
    const again = await post(
      h.webhookUrl,
      body,
      Stripe.webhooks.generateTestHeaderString({ payload: body, secret: WEBHOOK_SECRET }),
    );
    expect(again).toMatchObject({ status: 200, json: { outcome: 'duplicate' } });
    expect(await h.store.headPosition()).toBe(headBefore);
  });

  it('acknowledges unknown event types and events that are not ours with 200', async () => {
    const body = JSON.stringify({
      id: 'evt_x',
      object: 'event',
      type: 'customer.created',
      data: { object: { id: 'cus_1' } },
    });
    const r = await post(
      h.webhookUrl,
      body,
      Stripe.webhooks.generateTestHeaderString({ payload: body, secret: WEBHOOK_SECRET }),
    );
    expect(r).toMatchObject({ status: 200, json: { outcome: 'ignored' } });
    const foreign = await h.gateway.createPaymentIntent({
      idempotencyKey: 'foreign',
      amount: 1_000,
      currency: 'usd',
      paymentMethod: 'pm_card_visa',
      metadata: { tenantId: '', topUpId: '', studentId: '' },
    });
    expect(foreign.status).toBe('succeeded');
    await h.fake.flushWebhooks();
    expect(await postedBalances(h.store)).toEqual({});
  });
});

describe('reordered and duplicated webhooks converge', () => {
  it('gives the same ledger as in-order delivery', async () => {
    const inOrder = await runScenario({ reorder: false }, (h) => postedBalances(h.store));
    const reordered = await runScenario({ reorder: true }, (h) => postedBalances(h.store));
    expect(reordered).toEqual(inOrder);
    // a (20000) - refund (4000) + b (6000) in the wallet; tA paid out (0 left), tB's payout failed (5000
    // back to available); the dispute opened and won nets to 0; the declined top-up c moved nothing.
    expect(inOrder).toEqual({
      [wallet('s1')]: -(20_000 - 4_000 + 6_000),
      'stripe:balance|usd': 20_000 - 4_000 + 6_000 - 5_000,
      'tutor:tB:earnings:available|usd': -5_000,
      'platform:adjustments|usd': 10_000,
    });
  });
});
