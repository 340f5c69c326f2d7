import { describe, expect, it } from 'vitest';
import { eventStoreFactSource } from '../../src/reconciliation/ledgerFacts.js';
import { loadRunFromEvents } from '../../src/reconciliation/readModel.js';
import { Reconciler } from '../../src/reconciliation/reconciler.js';
import { reportCsv } from '../../src/reconciliation/report.js';
import {
  allEvents,
  type LedgerHarness,
  runScenario,
  startLedgerHarness,
  TENANT,
} from '../stripe/ledgerHarness.js';

function reconcilerFor(h: LedgerHarness): Reconciler {
  return new Reconciler({
    stripe: h.gateway,
    ledger: () => eventStoreFactSource(h.store, { pageSize: 50 }),
    store: h.store,
    commands: h.service,
    clock: () => new Date(),
    options: { pageSize: 3 },
  });
}

describe('reconciliation after a full money scenario (real SDK, fake Stripe, webhooks, command layer)', () => {
  it('matches everything, books the fees once, finds the failed payout transfer and reports the drift', async () => {
    await runScenario({ reorder: false }, async (h) => {
      const reconciler = reconcilerFor(h);
      const window = { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 3_600_000) };
      const first = await reconciler.run({ tenantId: TENANT, scope: window, runId: 'run-1' });
      const byClass = (cls: string) => first.items.filter((i) => i.classification === cls);
      // Fees of charge a (20000: 610), charge b (6000: 204) and the dispute (1500) were not booked.
      expect(
        byClass('unbooked_fee')
          .map((i) => i.stripeFee)
          .sort((x, y) => (x ?? 0) - (y ?? 0)),
      ).toEqual([204, 610, 1_500]);
      expect(byClass('unbooked_fee').every((i) => i.feeBooked)).toBe(true);
      // tB's payout failed: the transfer left the platform but the ledger released the hold.
      expect(byClass('missing_in_ledger')).toHaveLength(1);
      expect(byClass('missing_in_ledger')[0]).toMatchObject({ type: 'transfer', stripeAmount: -5_000 });
      expect(first.summary).toMatchObject({
        missingInStripe: 0,
        amountMismatch: 0,
        feesBooked: 3,
        scanned: 7,
        matched: 3,
      });
      // Stripe: 20000-610 -4000 +6000-204 -6000-1500 +6000 -5000 -5000 = 9686; ledger after the fees: 14686.
      expect(first.summary?.drift).toEqual([
        {
          currency: 'usd',
          ledger: 14_686,
          stripe: 9_686,
          difference: 5_000,
          stripeAvailable: 9_686,
          stripePending: 0,
        },
      ]);

      const second = await reconciler.run({ tenantId: TENANT, scope: window, runId: 'run-2' });
      expect(second.items.map((i) => i.classification)).toEqual(['missing_in_ledger']);
      expect(second.summary).toMatchObject({ matched: 6, feesBooked: 0 });
      expect((await allEvents(h.store)).filter((e) => e.type === 'StripeFeeBooked')).toHaveLength(3);

      // The run is its event stream; the report renders as CSV.
      const loaded = await loadRunFromEvents(h.store, TENANT, 'run-1', { maxItems: 100 });
      expect(loaded).toMatchObject({ status: 'completed', summary: first.summary, items: first.items });
      const csv = reportCsv(first).split('\r\n');
      expect(csv[0]).toBe(
        'classification,stripeObjectId,balanceTransactionId,type,currency,stripeAmount,ledgerAmount,stripeFee,ledgerFee,feeBooked,detail',
      );
      expect(csv).toHaveLength(1 + 4 + 1);

      // A payout run: the paid payout on tA's connected account matches the ledger.
      const paid = (await allEvents(h.store)).find((e) => e.type === 'PayoutPaid');
      const stripePayoutId = String(paid?.data.stripePayoutId);
      const account = (h.fake.state.payouts.get(stripePayoutId) as { account: string }).account;
      const payoutRun = await reconciler.run({
        tenantId: TENANT,
        scope: { payout: stripePayoutId, connectedAccountId: account },
      });
      expect(payoutRun.items).toEqual([]);
      expect(payoutRun.summary).toMatchObject({ matched: 1, ignored: 1, scanned: 1 });
    });
  });
});

describe('reconciliation drift with card funds still pending at Stripe', () => {
  it('splits the Stripe side into available and pending; the ledger agrees with their sum', async () => {
    const h = await startLedgerHarness({ realistic: true, fake: { availableAfterSeconds: 3_600 } });
    try {
      await h.service.initiateTopUp(h.ctx('pending-top-up', 'student'), {
        topUpId: 'pending1',
        studentId: 's1',
        amount: { amount: 5_000, currency: 'usd' },
        paymentMethod: 'pm_card_visa',
      });
      const run = await reconcilerFor(h).run({
        tenantId: TENANT,
        scope: { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 3_600_000) },
        runId: 'pending-run',
      });
      const [usd] = run.summary?.drift ?? [];
      // The charge's fee (booked by this run) leaves the net pending at Stripe and in the ledger.
      expect(usd).toMatchObject({ currency: 'usd', stripeAvailable: 0, difference: 0 });
      expect(usd?.stripePending).toBeGreaterThan(0);
      expect(usd?.stripe).toBe(usd?.stripePending);
      expect(usd?.ledger).toBe(usd?.stripe);
    } finally {
      await h.close();
    }
  });
});
