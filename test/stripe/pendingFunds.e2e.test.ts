import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeEventOf } from '../../src/domain/events.js';
import { allEvents, type LedgerHarness, startLedgerHarness, TENANT } from './ledgerHarness.js';

/**
 * Pending funds (docs/ledger-flows.md "Payout waiting for Stripe funds"): card money stays pending at
 * Stripe for days, and a transfer the platform's available balance cannot cover is refused with
 * balance_insufficient. The payout then waits, recorded and retried with backoff under new idempotency
 * keys, and goes through once the funds are available; it is never failed silently.
 */
describe('payouts waiting for pending Stripe funds (fake Stripe with pending card funds)', () => {
  let h: LedgerHarness;
  beforeEach(async () => {
    // Card funds pending for an hour of the fake's clock (Stripe: days), so every retry below happens
    // while Stripe still remembers the first attempt's key (24 h): a reused key would replay the refusal.
    h = await startLedgerHarness({ realistic: true, fake: { availableAfterSeconds: 3_600 } });
  });
  afterEach(async () => {
    await h.close();
  });

  async function onboardedTutorWithEarnings(tutorId: string, amount: number): Promise<void> {
    const { account } = await h.service.openPayoutAccount(h.ctx(`acct-${tutorId}`, 'tutor'), { tutorId });
    h.fake.state.setAccountEnabled(account.stripeAccountId, true);
    await h.fake.flushWebhooks();
    await h.service.adjust(h.ctx(`earn-${tutorId}`, 'finance_admin'), {
      account: `tutor:${tutorId}:earnings:available`,
      direction: 'credit',
      amount: { amount, currency: 'usd' },
      reason: 'test earnings',
    });
  }

  async function submitRequested(): Promise<void> {
    for (const e of (await allEvents(h.store)).filter((x) => x.type === 'PayoutRequested')) {
      await h.service.submitPayout(decodeEventOf(e, ['PayoutRequested']));
    }
  }

  const ofType = async (type: string) => (await allEvents(h.store)).filter((e) => e.type === type);

  it('balance_insufficient defers the payout, retries with backoff under new keys, and pays once funds are available', async () => {
    await onboardedTutorWithEarnings('u1', 3_000);
    // The platform's only money: a card top-up, pending for two days on the fake's clock.
    await h.service.initiateTopUp(h.ctx('fund', 'student'), {
      topUpId: 'fund',
      studentId: 's1',
      amount: { amount: 5_000, currency: 'usd' },
      paymentMethod: 'pm_card_visa',
    });
    const balance = await h.gateway.retrieveBalance();
    expect(balance.available.find((b) => b.currency === 'usd')?.amount ?? 0).toBe(0);
    expect(balance.pending.find((b) => b.currency === 'usd')?.amount).toBeGreaterThan(0);

    await h.service.requestPayout(h.ctx('payout', 'tutor'), {
      payoutId: 'p1',
      tutorId: 'u1',
      amount: { amount: 3_000, currency: 'usd' },
    });
    await submitRequested();
    let deferred = await ofType('PayoutSubmissionDeferred');
    expect(deferred).toHaveLength(1);
    expect(deferred[0]?.data).toMatchObject({
      payoutId: 'p1',
      attempt: 0,
      code: 'balance_insufficient',
      stripeTransferId: null,
    });
    expect(await ofType('PayoutFailed')).toEqual([]);
    // The process manager running the same step again (a restart) does not try before retryAt.
    await submitRequested();
    expect(await ofType('PayoutSubmissionDeferred')).toHaveLength(1);

    // Due: the scheduler tries again with a new key (Stripe keeps the refusal under the old one); the
    // funds are still pending, so it is deferred again, twice as long.
    const first = Date.parse(deferred[0]?.data.retryAt as string);
    await h.service.runDueTasks(TENANT, new Date(first + 1_000));
    deferred = await ofType('PayoutSubmissionDeferred');
    expect(deferred.map((e) => e.data.attempt)).toEqual([0, 1]);
    const gap0 = first - Date.parse(deferred[0]?.data.deferredAt as string);
    const gap1 =
      Date.parse(deferred[1]?.data.retryAt as string) - Date.parse(deferred[1]?.data.deferredAt as string);
    expect(gap1).toBe(2 * gap0);
    // Not due yet: nothing happens.
    await h.service.runDueTasks(TENANT, new Date(first + 2_000));
    expect(await ofType('PayoutSubmissionDeferred')).toHaveLength(2);

    // The card funds become available at Stripe; the next attempt transfers and pays out.
    h.fake.state.advanceTime(2 * 3_600);
    await h.service.runDueTasks(TENANT, new Date(Date.parse(deferred[1]?.data.retryAt as string) + 1_000));
    const submitted = await ofType('PayoutSubmitted');
    expect(submitted).toHaveLength(1);
    h.fake.state.settlePayout(submitted[0]?.data.stripePayoutId as string, 'paid');
    await h.fake.flushWebhooks();
    expect(await ofType('PayoutPaid')).toHaveLength(1);
    // One transfer and one payout at Stripe, whatever the number of attempts.
    const transfer = await h.gateway.stripe.transfers.retrieve(submitted[0]?.data.stripeTransferId as string);
    expect(transfer).toMatchObject({ amount: 3_000, metadata: { payoutId: 'p1' } });
    // A later due-task pass finds nothing left to do.
    const head = await h.store.headPosition();
    await h.service.runDueTasks(TENANT, new Date(Date.now() + 30 * 86_400_000));
    expect(await h.store.headPosition()).toBe(head);
  });

  it('a payout never funded within the wait limit fails loudly and releases the hold', async () => {
    await h.close();
    h = await startLedgerHarness({
      realistic: true,
      payoutRetry: { baseDelayMs: 60_000, maxDelayMs: 60_000, maxWaitMs: 3 * 60_000 },
    });
    await onboardedTutorWithEarnings('u1', 3_000);
    await h.service.requestPayout(h.ctx('payout', 'tutor'), {
      payoutId: 'p2',
      tutorId: 'u1',
      amount: { amount: 3_000, currency: 'usd' },
    });
    await submitRequested();
    for (let minute = 1; minute <= 5; minute++) {
      await h.service.runDueTasks(TENANT, new Date(Date.now() + minute * 61_000));
    }
    const failed = await ofType('PayoutFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.data.reason).toMatch(/^stripe balance_insufficient: .* did not cover the payout/);
    expect((await ofType('PayoutSubmissionDeferred')).length).toBeGreaterThanOrEqual(2);
    expect(await ofType('TutorPayoutHoldReleased')).toHaveLength(1);
    expect(await ofType('PayoutSubmitted')).toEqual([]);
  });
});
