import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeEventOf } from '../../src/domain/events.js';
import { allEvents, type LedgerHarness, postedBalances, startLedgerHarness } from './ledgerHarness.js';

/**
 * Money events that happen at Stripe, not through the app (docs/ledger-flows.md "Disputes" and
 * "Payout failed after paid, or canceled"), over HTTP webhooks from the fake, each delivered twice:
 * a dispute inquiry moves nothing, funds withdrawn/reinstated/won/lost book what Stripe moved, a
 * payout canceled releases the hold, a payout failed after paid is reversed with Stripe's code.
 */
const STRIPE = 'stripe:balance|usd';
/** Posted balance of one account (postedBalances leaves out zeros). */
const bal = (balances: Record<string, number>, key: string): number => balances[key] ?? 0;
const DISPUTES = 'platform:expense:disputes|usd';

describe('money events from outside the app (webhooks from the fake, duplicated)', () => {
  let h: LedgerHarness;
  beforeEach(async () => {
    // Onboarded accounts and available funds: these cases are about what Stripe does afterwards.
    h = await startLedgerHarness();
    h.fake.setWebhookFaults({ duplicate: true });
  });
  afterEach(async () => {
    await h.close();
  });

  const ofType = async (type: string) => (await allEvents(h.store)).filter((e) => e.type === type);

  async function paidTopUp(topUpId: string, amount: number): Promise<string> {
    const { topUp } = await h.service.initiateTopUp(h.ctx(`init-${topUpId}`, 'student'), {
      topUpId,
      studentId: 's1',
      amount: { amount, currency: 'usd' },
      paymentMethod: 'pm_card_visa',
    });
    await h.fake.flushWebhooks();
    return topUp.paymentIntentId as string;
  }

  it('a dispute inquiry moves no money; escalated and lost, the withdrawal stays booked', async () => {
    const pi = await paidTopUp('d1', 4_000);
    const before = await postedBalances(h.store);
    const inquiry = h.fake.state.openDispute({ paymentIntent: pi, inquiry: true });
    await h.fake.flushWebhooks();
    expect(await ofType('StripeDisputeOpened')).toEqual([]);
    expect(await postedBalances(h.store)).toEqual(before);
    h.fake.state.escalateDispute(inquiry.id);
    await h.fake.flushWebhooks();
    expect(await ofType('StripeDisputeOpened')).toHaveLength(1);
    expect((await postedBalances(h.store))[DISPUTES]).toBe(4_000);
    h.fake.state.closeDispute(inquiry.id, 'lost');
    await h.fake.flushWebhooks();
    const closed = await ofType('StripeDisputeClosed');
    expect(closed.map((e) => e.data.outcome)).toEqual(['lost']);
    expect((await postedBalances(h.store))[DISPUTES]).toBe(4_000);
  });

  it('an inquiry closed without a chargeback books nothing at all', async () => {
    const pi = await paidTopUp('d2', 2_500);
    const head = await h.store.headPosition();
    const inquiry = h.fake.state.openDispute({ paymentIntent: pi, inquiry: true });
    h.fake.state.closeDispute(inquiry.id, 'won');
    await h.fake.flushWebhooks();
    expect(await h.store.headPosition()).toBe(head);
  });

  it('a chargeback withdraws the funds once and a win reinstates them once', async () => {
    const pi = await paidTopUp('d3', 3_000);
    const stripeBefore = bal(await postedBalances(h.store), STRIPE);
    const dispute = h.fake.state.openDispute({ paymentIntent: pi });
    await h.fake.flushWebhooks();
    expect(await ofType('StripeDisputeOpened')).toHaveLength(1);
    expect(bal(await postedBalances(h.store), STRIPE)).toBe(stripeBefore - 3_000);
    h.fake.state.closeDispute(dispute.id, 'won');
    await h.fake.flushWebhooks();
    const closed = await ofType('StripeDisputeClosed');
    expect(closed.map((e) => e.data.outcome)).toEqual(['won']);
    expect(bal(await postedBalances(h.store), STRIPE)).toBe(stripeBefore);
    expect(bal(await postedBalances(h.store), DISPUTES)).toBe(0);
  });

  async function submittedPayout(tutorId: string, payoutId: string, amount: number) {
    // Funds for the transfer (net of Stripe's card fee).
    await paidTopUp(`fund-${tutorId}`, 2 * amount);
    await h.service.openPayoutAccount(h.ctx(`acct-${tutorId}`, 'tutor'), { tutorId });
    await h.service.adjust(h.ctx(`earn-${tutorId}`, 'finance_admin'), {
      account: `tutor:${tutorId}:earnings:available`,
      direction: 'credit',
      amount: { amount, currency: 'usd' },
      reason: 'test earnings',
    });
    await h.service.requestPayout(h.ctx(`payout-${tutorId}`, 'tutor'), {
      payoutId,
      tutorId,
      amount: { amount, currency: 'usd' },
    });
    const requested = (await ofType('PayoutRequested')).find((e) => e.data.payoutId === payoutId)!;
    await h.service.submitPayout(decodeEventOf(requested, ['PayoutRequested']));
    const submitted = (await ofType('PayoutSubmitted')).find((e) => e.data.payoutId === payoutId)!;
    return { stripePayoutId: submitted.data.stripePayoutId as string };
  }

  const tutorAvailable = async (tutorId: string) =>
    0 - bal(await postedBalances(h.store), `tutor:${tutorId}:earnings:available|usd`);

  it('a payout canceled at Stripe releases the hold', async () => {
    const { stripePayoutId } = await submittedPayout('u1', 'pc', 2_000);
    const account = (await h.service.getPayoutAccount('t1', 'u1'))!.stripeAccountId;
    await h.gateway.stripe.payouts.cancel(stripePayoutId, {}, { stripeAccount: account });
    await h.fake.flushWebhooks();
    const failed = await ofType('PayoutFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.data.reason).toMatch(/^canceled/);
    expect(await ofType('TutorPayoutHoldReleased')).toHaveLength(1);
    expect(await tutorAvailable('u1')).toBe(2_000);
  });

  it('a payout failed after paid is reversed, PayoutFailed after PayoutPaid with the failure code', async () => {
    const { stripePayoutId } = await submittedPayout('u2', 'pf', 2_500);
    const stripeBefore = bal(await postedBalances(h.store), STRIPE);
    h.fake.state.settlePayout(stripePayoutId, 'paid');
    await h.fake.flushWebhooks();
    expect(await ofType('PayoutPaid')).toHaveLength(1);
    expect(await tutorAvailable('u2')).toBe(0);
    expect(bal(await postedBalances(h.store), STRIPE)).toBe(stripeBefore - 2_500);
    h.fake.state.settlePayout(stripePayoutId, 'failed', 'account_closed');
    await h.fake.flushWebhooks();
    const reversed = await ofType('TutorPayoutReversed');
    expect(reversed).toHaveLength(1);
    expect(reversed[0]?.data).toMatchObject({ payoutId: 'pf', amount: 2_500, failureCode: 'account_closed' });
    const failed = await ofType('PayoutFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.data).toMatchObject({ payoutId: 'pf', failureCode: 'account_closed', afterPaid: true });
    const types = (await allEvents(h.store))
      .filter((e) => e.streamName.startsWith('payout-'))
      .map((e) => e.type);
    expect(types.slice(-2)).toEqual(['PayoutPaid', 'PayoutFailed']);
    expect(await tutorAvailable('u2')).toBe(2_500);
    expect(bal(await postedBalances(h.store), STRIPE)).toBe(stripeBefore);
    // Redelivered once more: nothing changes.
    const head = await h.store.headPosition();
    const event = h.fake.webhooks.deliveries.find((d) => d.type === 'payout.failed')!;
    h.fake.webhooks.enqueue(h.fake.state.retrieveEvent(event.eventId));
    await h.fake.flushWebhooks();
    expect(await h.store.headPosition()).toBe(head);
  });
});
