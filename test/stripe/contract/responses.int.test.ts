import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCEPTED_PARAMS } from '../../../src/stripe/fake/accepted.js';
import type { FakeStripeServer } from '../../../src/stripe/fake/server.js';
import type { FakeEvent } from '../../../src/stripe/fake/types.js';
import { GatewayError } from '../../../src/stripe/gateway.js';
import type { StripeGateway } from '../../../src/stripe/stripeGateway.js';
import { startFakeStripe } from '../support.js';
import { stripeFixtures } from './fixtures.js';
import { type StripeContract, stripeContract } from './stripeSchemas.js';

/**
 * The fake held to the `stripe` SDK's declarations of the pinned API version, not to our own code:
 * every response it gives (objects, lists, errors) and every event it sends is validated against JSON
 * Schemas generated from node_modules/stripe (stripeSchemas.ts). A field the types declare and the
 * fake leaves out, a wrong type, an enum value the version does not have, or a field the version does
 * not have, fails here.
 */

interface Recorded {
  method: string;
  path: string;
  status: number;
  body: string;
}

const KIND: Array<[RegExp, string]> = [
  [/^\/v1\/payment_intents(\/[^/]+(\/confirm)?)?$/, 'payment_intent'],
  [/^\/v1\/refunds(\/[^/]+)?$/, 'refund'],
  [/^\/v1\/customers(\/[^/]+)?$/, 'customer'],
  [/^\/v1\/payment_methods\/[^/]+(\/attach)?$/, 'payment_method'],
  [/^\/v1\/setup_intents(\/[^/]+(\/confirm)?)?$/, 'setup_intent'],
  [/^\/v1\/accounts(\/[^/]+)?$/, 'account'],
  [/^\/v1\/account_links$/, 'account_link'],
  [/^\/v1\/transfers(\/[^/]+)?$/, 'transfer'],
  [/^\/v1\/payouts(\/[^/]+(\/cancel)?)?$/, 'payout'],
  [/^\/v1\/disputes\/[^/]+$/, 'dispute'],
  [/^\/v1\/balance$/, 'balance'],
  [/^\/v1\/balance_transactions\/[^/]+$/, 'balance_transaction'],
];

const meta = { tenantId: 't1', topUpId: 'tu1', studentId: 's1' };

describe('the fake Stripe against the SDK types of the pinned API version', () => {
  let fake: FakeStripeServer;
  let gateway: StripeGateway;
  let stripe: Stripe;
  let stop: () => Promise<void>;
  let base: string;
  const responses: Recorded[] = [];
  const events: FakeEvent[] = [];
  let contract: { objects: StripeContract; events: StripeContract; params: StripeContract };

  beforeAll(async () => {
    contract = stripeContract();
    ({
      fake,
      gateway,
      stop,
      url: base,
    } = await startFakeStripe({
      fake: { onResponse: (r) => responses.push(r) },
    }));
    stripe = gateway.stripe;
    const forward = fake.state.onEvent;
    fake.state.onEvent = (e) => {
      events.push(e);
      forward(e);
    };
    await driveEveryEndpoint();
  }, 120_000);
  afterAll(async () => {
    await stop();
  });

  async function refusal(
    p: Promise<unknown>,
  ): Promise<GatewayError | InstanceType<typeof Stripe.errors.StripeError>> {
    try {
      await p;
    } catch (error) {
      if (error instanceof GatewayError || error instanceof Stripe.errors.StripeError) return error;
      throw error;
    }
    throw new Error('expected a refusal');
  }

  /** Every endpoint the gateway and the reconciler call, and those wallet auto-reload will, once or more. */
  async function driveEveryEndpoint(): Promise<void> {
    // Top-ups: confirmed at once, declined, left for the client, then confirmed by it.
    const paid = await gateway.createPaymentIntent({
      idempotencyKey: 'c-paid',
      amount: 10_000,
      currency: 'usd',
      paymentMethod: 'pm_card_visa',
      metadata: meta,
    });
    await refusal(
      gateway.createPaymentIntent({
        idempotencyKey: 'c-declined',
        amount: 1_000,
        currency: 'usd',
        paymentMethod: 'pm_card_chargeDeclined',
        metadata: meta,
      }),
    );
    const open = await gateway.createPaymentIntent({
      idempotencyKey: 'c-open',
      amount: 2_000,
      currency: 'usd',
      metadata: meta,
    });
    await stripe.paymentIntents.confirm(open.paymentIntentId, { payment_method: 'pm_card_mastercard' });
    await stripe.paymentIntents.retrieve(paid.paymentIntentId, {
      expand: ['latest_charge', 'latest_charge.balance_transaction'],
    });
    await gateway.lookupPaymentIntent(open.paymentIntentId);
    const instant = await gateway.createPaymentIntent({
      idempotencyKey: 'c-0077',
      amount: 50_000,
      currency: 'usd',
      paymentMethod: 'pm_card_bypassPending',
      metadata: meta,
    });
    // Refunds: by the app, from the Dashboard, one that fails later.
    const refund = await gateway.refundPaymentIntent({
      idempotencyKey: 'c-refund',
      paymentIntentId: paid.paymentIntentId,
      amount: 1_000,
      metadata: { topUpId: 'tu1' },
    });
    await stripe.refunds.retrieve(refund.refundId);
    const dashboard = fake.state.refundFromDashboard({ paymentIntent: paid.paymentIntentId, amount: 500 });
    fake.state.failRefund(dashboard.id);
    await stripe.refunds.retrieve(dashboard.id);
    await refusal(
      gateway.refundPaymentIntent({
        idempotencyKey: 'c-refund-big',
        paymentIntentId: paid.paymentIntentId,
        amount: 99_999,
        metadata: {},
      }),
    );
    // Saving a card (SetupIntent) and charging it off session, as wallet auto-reload will.
    const customer = await stripe.customers.create({
      email: 's1@example.com',
      metadata: { studentId: 's1' },
    });
    await stripe.customers.retrieve(customer.id);
    const setup = await stripe.setupIntents.create({
      customer: customer.id,
      payment_method: 'pm_card_visa',
      confirm: true,
      usage: 'off_session',
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
    });
    await stripe.setupIntents.retrieve(setup.id, { expand: ['payment_method'] });
    const saved = setup.payment_method as string;
    await stripe.paymentMethods.retrieve(saved);
    await stripe.paymentIntents.create({
      amount: 2_500,
      currency: 'usd',
      customer: customer.id,
      payment_method: saved,
      off_session: true,
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
    });
    const strong = await stripe.setupIntents.create({
      customer: customer.id,
      allowed_payment_method_types: ['card'],
    });
    await stripe.setupIntents.confirm(strong.id, { payment_method: 'pm_card_authenticationRequired' });
    const strongMethod = (await stripe.setupIntents.retrieve(strong.id)).payment_method as string;
    await refusal(
      stripe.paymentIntents.create({
        amount: 2_500,
        currency: 'usd',
        customer: customer.id,
        payment_method: strongMethod,
        off_session: true,
        confirm: true,
        allowed_payment_method_types: ['card'],
      }),
    );
    await stripe.paymentMethods.attach('pm_card_mastercard', { customer: customer.id });
    await stripe.paymentIntents.create({
      amount: 1_000,
      currency: 'usd',
      payment_method: 'pm_card_authenticationRequired',
      confirm: true,
      return_url: 'https://app.example/return',
    });
    // Connect: a restricted account, its onboarding link, transfers (pending funds, source_transaction).
    const account = await gateway.createConnectedAccount({
      idempotencyKey: 'c-acct',
      tutorId: 'tu',
      tenantId: 't1',
    });
    await refusal(
      gateway.createTransfer({
        idempotencyKey: 'c-tr-early',
        amount: 100,
        currency: 'usd',
        destinationAccountId: account.stripeAccountId,
        metadata: {},
      }),
    );
    const link = await gateway.createAccountLink({
      accountId: account.stripeAccountId,
      refreshUrl: 'https://app.example/refresh',
      returnUrl: 'https://app.example/return',
    });
    await fetch(link.url, { redirect: 'manual' });
    await gateway.retrieveConnectedAccount(account.stripeAccountId);
    await refusal(
      gateway.createTransfer({
        idempotencyKey: 'c-tr-big',
        amount: 1_000_000,
        currency: 'usd',
        destinationAccountId: account.stripeAccountId,
        metadata: {},
      }),
    );
    const paidCharge = (await stripe.paymentIntents.retrieve(paid.paymentIntentId)).latest_charge as string;
    await stripe.transfers.create({
      amount: 3_000,
      currency: 'usd',
      destination: account.stripeAccountId,
      source_transaction: paidCharge,
    });
    const { transferId } = await gateway.createTransfer({
      idempotencyKey: 'c-tr',
      amount: 20_000,
      currency: 'usd',
      destinationAccountId: account.stripeAccountId,
      metadata: { payoutId: 'p1' },
    });
    await stripe.transfers.retrieve(transferId, { expand: ['destination_payment'] });
    // Payouts: paid (through in_transit), canceled, failed after paid, automatic.
    const p1 = await gateway.createPayout({
      idempotencyKey: 'c-po1',
      amount: 5_000,
      currency: 'usd',
      connectedAccountId: account.stripeAccountId,
      metadata: { payoutId: 'p1' },
    });
    fake.state.settlePayout(p1.payoutId, 'in_transit');
    fake.state.settlePayout(p1.payoutId, 'paid');
    await gateway.retrievePayout(account.stripeAccountId, p1.payoutId);
    const p2 = await gateway.createPayout({
      idempotencyKey: 'c-po2',
      amount: 1_000,
      currency: 'usd',
      connectedAccountId: account.stripeAccountId,
      metadata: {},
    });
    await stripe.payouts.cancel(p2.payoutId, {}, { stripeAccount: account.stripeAccountId });
    fake.state.settlePayout(p1.payoutId, 'failed', 'account_closed');
    const auto = fake.state.automaticPayout(account.stripeAccountId, 'usd');
    fake.state.settlePayout(auto.id, 'paid');
    await refusal(
      gateway.createPayout({
        idempotencyKey: 'c-po3',
        amount: 999_999,
        currency: 'usd',
        connectedAccountId: account.stripeAccountId,
        metadata: {},
      }),
    );
    // Disputes: a chargeback won, one lost, an inquiry closed.
    const won = fake.state.openDispute({ paymentIntent: instant.paymentIntentId });
    fake.state.closeDispute(won.id, 'won');
    const lost = fake.state.openDispute({ paymentIntent: open.paymentIntentId });
    fake.state.closeDispute(lost.id, 'lost');
    const inquiry = fake.state.openDispute({ paymentIntent: paid.paymentIntentId, inquiry: true });
    await stripe.disputes.retrieve(inquiry.id);
    fake.state.closeDispute(inquiry.id, 'won');
    await stripe.disputes.retrieve(won.id);
    // Balances and balance transactions, platform and connected, sources expanded.
    await gateway.retrieveBalance();
    await gateway.retrieveBalance(account.stripeAccountId);
    for await (const _ of gateway.listBalanceTransactions({ pageSize: 5 })) void _;
    for await (const _ of gateway.listBalanceTransactions({
      connectedAccountId: account.stripeAccountId,
      payout: auto.id,
    }))
      void _;
    const [first] = (await stripe.balanceTransactions.list({ limit: 1 })).data;
    if (first) await stripe.balanceTransactions.retrieve(first.id, { expand: ['source'] });
    const [anEvent] = events;
    if (anEvent) await stripe.events.retrieve(anEvent.id);
    // Refusals: idempotency conflict, a key over 255 characters, an unknown parameter, a missing object.
    await refusal(
      gateway.createPaymentIntent({
        idempotencyKey: 'c-paid',
        amount: 10_001,
        currency: 'usd',
        metadata: meta,
      }),
    );
    await fetch(`${base}/v1/refunds`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk_test_x',
        'idempotency-key': 'k'.repeat(256),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: `payment_intent=${paid.paymentIntentId}&amount=1`,
    });
    await refusal(stripe.payouts.retrieve('po_missing'));
    await refusal(stripe.paymentIntents.retrieve(paid.paymentIntentId, { expand: ['amount'] }));
  }

  function kindOf(path: string): string | undefined {
    return KIND.find(([pattern]) => pattern.test(path))?.[1];
  }

  it('answers every request with an object, list or error whose every declared field is present and well typed', () => {
    const seen = new Set<string>();
    const failures: string[] = [];
    for (const r of responses) {
      const body: unknown = JSON.parse(r.body);
      if (r.status >= 400) {
        seen.add('error');
        failures.push(
          ...contract.objects.errors('error', body).map((e) => `${r.method} ${r.path} ${r.status}: ${e}`),
        );
        continue;
      }
      if (r.path === '/v1/balance_transactions') {
        const list = body as { object: string; data: unknown[]; has_more: boolean; url: string };
        expect(list).toMatchObject({
          object: 'list',
          has_more: expect.any(Boolean),
          url: '/v1/balance_transactions',
        });
        for (const t of list.data)
          failures.push(...contract.objects.errors('balance_transaction', t).map((e) => `${r.path}: ${e}`));
        seen.add('balance_transaction');
        continue;
      }
      if (r.path.startsWith('/v1/events/')) {
        const e = body as { type: string };
        failures.push(...contract.events.errors(e.type, body));
        continue;
      }
      const kind = kindOf(r.path);
      if (!kind) throw new Error(`no schema for ${r.method} ${r.path}`);
      seen.add(kind);
      failures.push(...contract.objects.errors(kind, body).map((e) => `${r.method} ${r.path}: ${e}`));
    }
    expect(failures).toEqual([]);
    // Every object kind of the contract was answered at least once.
    expect([...seen].sort()).toEqual(
      [
        'account',
        'account_link',
        'balance',
        'balance_transaction',
        'customer',
        'dispute',
        'error',
        'payment_intent',
        'payment_method',
        'payout',
        'refund',
        'setup_intent',
        'transfer',
      ].sort(),
    );
  });

  it('sends events whose envelope and object match the SDK type of their event type', () => {
    const failures = events.flatMap((e) => contract.events.errors(e.type, JSON.parse(JSON.stringify(e))));
    expect(failures).toEqual([]);
    const types = new Set(events.map((e) => e.type));
    for (const t of [
      'payment_intent.succeeded',
      'payment_intent.payment_failed',
      'refund.created',
      'refund.failed',
      'charge.dispute.created',
      'charge.dispute.funds_withdrawn',
      'charge.dispute.funds_reinstated',
      'charge.dispute.closed',
      'account.updated',
      'payout.updated',
      'payout.paid',
      'payout.failed',
      'payout.canceled',
      'payout.reconciliation_completed',
      'setup_intent.succeeded',
    ])
      expect(types, t).toContain(t);
    // Events of connected accounts name the account, as Stripe does (Connect endpoints get those).
    for (const e of events) {
      if (e.type.startsWith('payout.') || e.type === 'account.updated')
        expect(e.account, e.type).toMatch(/^acct_/);
      else expect(e.account, e.type).toBeUndefined();
    }
  });

  it('accepts only parameters the SDK declares for each endpoint', () => {
    for (const [endpoint, accepted] of Object.entries(ACCEPTED_PARAMS)) {
      const declared = new Set(contract.params.paramNames(endpoint));
      expect(declared.size, endpoint).toBeGreaterThan(0);
      expect(
        accepted.filter((p) => !declared.has(p)),
        endpoint,
      ).toEqual([]);
    }
  });

  it('shapes errors as Stripe does: type, code, param, message, doc_url', () => {
    const errors = responses
      .filter((r) => r.status >= 400)
      .map((r) => (JSON.parse(r.body) as { error: Record<string, unknown> }).error);
    const byCode = new Map(errors.map((e) => [e.code ?? e.type, e]));
    expect(byCode.get('card_declined')).toMatchObject({
      type: 'card_error',
      decline_code: 'generic_decline',
      doc_url: 'https://docs.stripe.com/error-codes/card-declined',
      payment_intent: expect.objectContaining({ status: 'requires_payment_method' }),
    });
    expect(byCode.get('authentication_required')).toMatchObject({ type: 'card_error' });
    expect(byCode.get('amount_too_large')).toMatchObject({ type: 'invalid_request_error', param: 'amount' });
    expect(byCode.get('balance_insufficient')).toMatchObject({
      type: 'invalid_request_error',
      doc_url: 'https://docs.stripe.com/error-codes/balance-insufficient',
    });
    expect(byCode.get('insufficient_capabilities_for_transfer')).toMatchObject({ param: 'destination' });
    expect(byCode.get('resource_missing')).toMatchObject({
      param: 'id',
      message: "No such payout: 'po_missing'",
    });
    expect(byCode.get('idempotency_error')).toMatchObject({ type: 'idempotency_error' });
    expect(errors.find((e) => String(e.message).includes('cannot be expanded'))).toMatchObject({
      param: 'expand',
    });
    expect(errors.find((e) => e.param === 'Idempotency-Key')).toMatchObject({
      type: 'invalid_request_error',
    });
  });
});

describe('the generated schemas themselves', () => {
  const fixtures = stripeFixtures();

  it("accept Stripe's own published fixture objects (where the fixture snapshot has this version's fields)", () => {
    const { objects } = stripeContract();
    for (const kind of [
      'refund',
      'transfer',
      'payout',
      'balance',
      'balance_transaction',
      'payment_method',
      'customer',
      'account_link',
    ]) {
      expect(objects.errors(kind, fixtures[kind]), kind).toEqual([]);
    }
  });

  it('refuse a missing always-present field, a wrong type, a wrong constant and a field this version lacks', () => {
    const { objects } = stripeContract();
    const payout = fixtures.payout as Record<string, unknown>;
    const { reconciliation_status: _, ...withoutField } = payout;
    expect(objects.errors('payout', withoutField).join()).toMatch(/reconciliation_status/);
    expect(objects.errors('payout', { ...payout, amount: '1100' }).join()).toMatch(/amount must be number/);
    expect(objects.errors('payout', { ...payout, object: 'transfer' }).join()).toMatch(/constant/);
    expect(objects.errors('payout', { ...payout, settled: true }).join()).toMatch(/additional/);
  });
});
