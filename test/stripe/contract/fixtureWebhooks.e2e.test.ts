import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEventOf } from '../../../src/domain/events.js';
import {
  allEvents,
  CONNECT_WEBHOOK_SECRET,
  countEvents,
  type LedgerHarness,
  postedBalances,
  startLedgerHarness,
  TENANT,
  WEBHOOK_SECRET,
} from '../ledgerHarness.js';
import { fixture } from './fixtures.js';

/**
 * Webhooks built from Stripe's own published objects (fixtures3.json), not from our fake: each event
 * type the app handles gets a fixture object with our ids, amounts and metadata, an event envelope from
 * the fixture event, a signature from the SDK's `generateTestHeaderString`, and its ledger effect is
 * checked; delivering it again changes nothing.
 */

function event(type: string, object: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const envelope = fixture('event');
  return {
    ...envelope,
    id: `evt_fx_${type.replaceAll('.', '_')}_${String(object.id)}`,
    api_version: Stripe.API_VERSION,
    created: Math.floor(Date.now() / 1000),
    type,
    data: { object },
    ...extra,
  };
}

/** Events naming a connected account go to the Connect endpoint with its secret, as Stripe sends them. */
async function deliver(
  h: LedgerHarness,
  body: Record<string, unknown>,
): Promise<{ status: number; outcome: unknown }> {
  const payload = JSON.stringify(body);
  const connect = typeof body.account === 'string';
  const header = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: connect ? CONNECT_WEBHOOK_SECRET : WEBHOOK_SECRET,
  });
  const res = await fetch(connect ? h.connectWebhookUrl : h.webhookUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': header },
    body: payload,
  });
  const json = (await res.json()) as { outcome?: unknown };
  return { status: res.status, outcome: json.outcome };
}

/** Delivers twice: the second delivery is a duplicate that books nothing. */
async function deliverTwice(h: LedgerHarness, body: Record<string, unknown>): Promise<unknown> {
  const first = await deliver(h, body);
  expect(first.status).toBe(200);
  const before = (await allEvents(h.store)).length;
  const second = await deliver(h, body);
  expect(second).toEqual({ status: 200, outcome: 'duplicate' });
  expect((await allEvents(h.store)).length).toBe(before);
  return first.outcome;
}

describe('webhooks built from Stripe fixture objects, signed with the SDK, booked by the ledger', () => {
  let h: LedgerHarness;
  let paymentIntentId: string;

  beforeAll(async () => {
    h = await startLedgerHarness();
    // A top-up the student has not confirmed yet: the PaymentIntent exists at Stripe and in the ledger.
    const { topUp } = await h.service.initiateTopUp(h.ctx('fx-init', 'student'), {
      topUpId: 'fx1',
      studentId: 's1',
      amount: { amount: 12_000, currency: 'usd' },
    });
    paymentIntentId = topUp.paymentIntentId as string;
  });
  afterAll(async () => {
    await h.close();
  });

  it('payment_intent.succeeded credits the wallet once', async () => {
    const pi = {
      ...fixture('payment_intent'),
      id: paymentIntentId,
      amount: 12_000,
      amount_received: 12_000,
      currency: 'usd',
      status: 'succeeded',
      last_payment_error: null,
      next_action: null,
      processing: null,
      metadata: { tenantId: TENANT, topUpId: 'fx1', studentId: 's1' },
    };
    expect(await deliverTwice(h, event('payment_intent.succeeded', pi))).toBe('applied');
    expect(await postedBalances(h.store)).toMatchObject({ 'student:s1:wallet|usd': -12_000 });
  });

  it('payment_intent.payment_failed fails a pending top-up and moves no money', async () => {
    const { topUp } = await h.service.initiateTopUp(h.ctx('fx-init-2', 'student'), {
      topUpId: 'fx2',
      studentId: 's2',
      amount: { amount: 3_000, currency: 'usd' },
    });
    const pi = {
      ...fixture('payment_intent'),
      id: topUp.paymentIntentId,
      amount: 3_000,
      currency: 'usd',
      status: 'requires_payment_method',
      last_payment_error: {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'generic_decline',
        message: 'Your card was declined.',
      },
      metadata: { tenantId: TENANT, topUpId: 'fx2', studentId: 's2' },
    };
    expect(await deliverTwice(h, event('payment_intent.payment_failed', pi))).toBe('applied');
    expect(await countEvents(h.store, 'TopUpFailed')).toBe(1);
    expect((await postedBalances(h.store))['student:s2:wallet|usd']).toBeUndefined();
  });

  it('refund.created (a Dashboard refund: empty metadata) debits the wallet', async () => {
    // The refund must exist at Stripe against the top-up's charge; its event is Stripe's fixture.
    await h.gateway.stripe.paymentIntents.confirm(paymentIntentId, { payment_method: 'pm_card_visa' });
    await h.fake.flushWebhooks();
    const refund = {
      ...fixture('refund'),
      id: 're_fx_dashboard1',
      amount: 2_000,
      currency: 'usd',
      payment_intent: paymentIntentId,
      status: 'succeeded',
      metadata: {},
    };
    expect(await deliverTwice(h, event('refund.created', refund))).toBe('applied');
    expect(await postedBalances(h.store)).toMatchObject({ 'student:s1:wallet|usd': -10_000 });
  });

  it('refund.updated and refund.failed of a failed refund credit the wallet back once, in either order', async () => {
    const failed = {
      ...fixture('refund'),
      id: 're_fx_dashboard1',
      amount: 2_000,
      currency: 'usd',
      payment_intent: paymentIntentId,
      status: 'failed',
      failure_reason: 'expired_or_canceled_card',
      metadata: {},
    };
    const previous = { data: { object: failed, previous_attributes: { status: 'succeeded' } } };
    expect(await deliverTwice(h, event('refund.failed', failed, previous))).toBe('applied');
    expect(await postedBalances(h.store)).toMatchObject({ 'student:s1:wallet|usd': -12_000 });
    // The same failure told again by refund.updated (and its older name): one reversal, nothing more.
    const before = (await allEvents(h.store)).length;
    expect(await deliverTwice(h, event('refund.updated', failed, previous))).toBe('applied');
    expect(await deliverTwice(h, event('charge.refund.updated', failed, previous))).toBe('applied');
    expect((await allEvents(h.store)).length).toBe(before);
    expect(await countEvents(h.store, 'WalletCardRefundFailed')).toBe(1);
    expect(await countEvents(h.store, 'TopUpCardRefundFailed')).toBe(1);
    // The top-up's refundable amount reopens: no card refund of it stands any more.
    const recorded = (await allEvents(h.store)).filter((e) => e.type === 'TopUpCardRefundFailed');
    expect(recorded.map((e) => [e.data.topUpId, e.data.refundedTotal])).toEqual([['fx1', 0]]);
    // A late redelivery of the refund's creation (another event id) replays its command: no second debit.
    const succeeded = { ...failed, status: 'succeeded', failure_reason: null };
    const late = await deliver(h, event('refund.created', succeeded, { id: 'evt_fx_late_created' }));
    expect(late.status).toBe(200);
    expect((await allEvents(h.store)).length).toBe(before);
    expect(await postedBalances(h.store)).toMatchObject({ 'student:s1:wallet|usd': -12_000 });
  });

  it('a refund.failed arriving before its refund books the refund and its reversal: the wallet is unchanged', async () => {
    const failed = {
      ...fixture('refund'),
      id: 're_fx_early1',
      amount: 1_500,
      currency: 'usd',
      payment_intent: paymentIntentId,
      status: 'failed',
      failure_reason: 'lost_or_stolen_card',
      metadata: {},
    };
    const stripeBefore = (await postedBalances(h.store))['stripe:balance|usd'];
    expect(await deliverTwice(h, event('refund.failed', failed))).toBe('applied');
    const balances = await postedBalances(h.store);
    expect(balances['student:s1:wallet|usd']).toBe(-12_000);
    expect(balances['stripe:balance|usd']).toBe(stripeBefore);
    const reversal = (await allEvents(h.store)).filter(
      (e) => e.type === 'WalletCardRefundFailed' && e.data.stripeRefundId === 're_fx_early1',
    );
    expect(reversal.map((e) => e.data.failureReason)).toEqual(['lost_or_stolen_card']);
    const succeeded = { ...failed, status: 'succeeded', failure_reason: null };
    const late = await deliver(h, event('refund.created', succeeded));
    expect(late).toEqual({ status: 200, outcome: 'stale' });
    expect((await postedBalances(h.store))['student:s1:wallet|usd']).toBe(-12_000);
    expect(await countEvents(h.store, 'WalletRefundedToCard')).toBe(2);
  });

  it('a refund naming a PaymentIntent Stripe does not know is not ours, and books nothing', async () => {
    const before = (await allEvents(h.store)).length;
    const stranger = {
      ...fixture('refund'),
      id: 're_fx_stranger',
      amount: 700,
      currency: 'usd',
      payment_intent: 'pi_fx_nobody',
      status: 'failed',
      failure_reason: 'unknown',
      metadata: {},
    };
    expect(await deliver(h, event('charge.refund.updated', stranger))).toEqual({
      status: 200,
      outcome: 'not_ours',
    });
    expect((await allEvents(h.store)).length).toBe(before);
  });

  it('charge.dispute.created and charge.dispute.closed (won) book the withdrawal and its reversal', async () => {
    const dispute = {
      ...fixture('dispute'),
      id: 'dp_fx_1',
      amount: 5_000,
      currency: 'usd',
      payment_intent: paymentIntentId,
      status: 'needs_response',
      metadata: {},
    };
    expect(await deliverTwice(h, event('charge.dispute.created', dispute))).toBe('applied');
    expect(await postedBalances(h.store)).toMatchObject({ 'platform:expense:disputes|usd': 5_000 });
    expect(await deliverTwice(h, event('charge.dispute.closed', { ...dispute, status: 'won' }))).toBe(
      'applied',
    );
    expect((await postedBalances(h.store))['platform:expense:disputes|usd']).toBeUndefined();
  });

  it('payout.paid and payout.failed (Connect events naming the account) settle the tutor payouts', async () => {
    for (const tutor of ['fa', 'fb']) {
      await h.service.openPayoutAccount(h.ctx(`fx-account-${tutor}`, 'tutor'), { tutorId: tutor });
      await h.service.adjust(h.ctx(`fx-earn-${tutor}`, 'finance_admin'), {
        account: `tutor:${tutor}:earnings:available`,
        direction: 'credit',
        amount: { amount: 4_000, currency: 'usd' },
        reason: 'fixture test earnings',
      });
      await h.service.requestPayout(h.ctx(`fx-payout-${tutor}`, 'tutor'), {
        payoutId: `fxp-${tutor}`,
        tutorId: tutor,
        amount: { amount: 4_000, currency: 'usd' },
      });
    }
    for (const e of (await allEvents(h.store)).filter((x) => x.type === 'PayoutRequested')) {
      await h.service.submitPayout(decodeEventOf(e, ['PayoutRequested']));
    }
    const submitted = (await allEvents(h.store)).filter((e) => e.type === 'PayoutSubmitted');
    expect(submitted).toHaveLength(2);
    for (const e of submitted) {
      const payoutId = String(e.data.payoutId);
      const failed = payoutId === 'fxp-fb';
      const payout = {
        ...fixture('payout'),
        id: String(e.data.stripePayoutId),
        amount: 4_000,
        currency: 'usd',
        automatic: false,
        status: failed ? 'failed' : 'paid',
        failure_code: failed ? 'account_closed' : null,
        failure_message: failed ? 'The bank account has been closed.' : null,
        metadata: { tenantId: TENANT, payoutId },
      };
      const type = failed ? 'payout.failed' : 'payout.paid';
      expect(await deliverTwice(h, event(type, payout, { account: 'acct_fx_tutor' }))).toBe('applied');
    }
    expect(await countEvents(h.store, 'PayoutPaid')).toBe(1);
    expect(await countEvents(h.store, 'PayoutFailed')).toBe(1);
    const balances = await postedBalances(h.store);
    expect(balances['tutor:fa:earnings:available|usd']).toBeUndefined();
    expect(balances['tutor:fb:earnings:available|usd']).toBe(-4_000);
  });
});
