import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventStoreFactSource } from '../../src/reconciliation/ledgerFacts.js';
import { Reconciler } from '../../src/reconciliation/reconciler.js';
import { PLATFORM } from '../../src/stripe/fake/state.js';
import { postedBalances, startLedgerHarness, TENANT } from './ledgerHarness.js';

/**
 * Issue 14's property: any interleaving of the money events Stripe sends on its own (Dashboard refunds,
 * failed refunds, dispute inquiries, chargebacks won and lost) after card top-ups, delivered as webhooks
 * duplicated and out of order, keeps every ledger invariant: each entry balanced (the trial balance is
 * zero), the wallet equals a model of what Stripe did to it, and after reconciliation books Stripe's fees
 * the ledger's stripe:balance equals the fake's platform balance (available + pending).
 *
 * A failed card refund gives the money back (docs/ledger-flows.md, "Card refund failed"): in the model
 * the wallet gets the refund's amount back and the top-up can be refunded by it again, and the
 * reconciliation that follows finds nothing missing on either side. Found by this property before the
 * reversal existed: seed 1689469511, [top-up 500, refund 25, fail it, top-up 500] left the wallet at 975;
 * kept below as an example.
 */
type Op =
  | { kind: 'topUp'; amount: number }
  | { kind: 'refund'; topUp: number; share: number }
  | { kind: 'failRefund'; refund: number }
  | { kind: 'dispute'; topUp: number; inquiry: boolean; escalate: boolean; outcome: 'won' | 'lost' | 'open' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('topUp' as const),
      amount: fc.integer({ min: 500, max: 20_000 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('refund' as const),
      topUp: fc.nat(),
      share: fc.double({ min: 0.05, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('failRefund' as const), refund: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('dispute' as const),
      topUp: fc.nat(),
      inquiry: fc.boolean(),
      escalate: fc.boolean(),
      outcome: fc.constantFrom('won' as const, 'lost' as const, 'open' as const),
    }),
  },
);

/** Runs `ops` against the fake Stripe and the ledger, then checks every invariant against the model. */
async function checkScenario(ops: readonly Op[], reorder: boolean): Promise<void> {
  const h = await startLedgerHarness();
  try {
    h.fake.setWebhookFaults({ duplicate: true, reorder });
    const topUps: { pi: string; amount: number; refunded: number; disputed: boolean }[] = [];
    const refunds: { id: string; amount: number; topUp: number; failed: boolean }[] = [];
    let wallet = 0;
    for (const [i, o] of ops.entries()) {
      if (o.kind === 'topUp') {
        const { topUp } = await h.service.initiateTopUp(h.ctx(`top-up-${i}`, 'student'), {
          topUpId: `tu${i}`,
          studentId: 's1',
          amount: { amount: o.amount, currency: 'usd' },
          paymentMethod: 'pm_card_visa',
        });
        topUps.push({ pi: topUp.paymentIntentId as string, amount: o.amount, refunded: 0, disputed: false });
        wallet += o.amount;
        continue;
      }
      if (topUps.length === 0) continue;
      if (o.kind === 'refund') {
        // Stripe refuses refunds of a disputed charge; the model stays with refundable ones.
        const index = o.topUp % topUps.length;
        const t = topUps[index]!;
        const amount = Math.max(1, Math.floor((t.amount - t.refunded) * o.share));
        if (t.disputed || t.refunded + amount > t.amount) continue;
        const refund = h.fake.state.refundFromDashboard({ paymentIntent: t.pi, amount });
        t.refunded += amount;
        refunds.push({ id: refund.id, amount, topUp: index, failed: false });
        wallet -= amount;
      } else if (o.kind === 'failRefund') {
        const r = refunds[o.refund % Math.max(1, refunds.length)];
        if (!r || r.failed) continue;
        h.fake.state.failRefund(r.id);
        r.failed = true;
        // The money is back: in the wallet, and refundable again on its top-up.
        topUps[r.topUp]!.refunded -= r.amount;
        wallet += r.amount;
      } else {
        const t = topUps[o.topUp % topUps.length]!;
        if (t.disputed || t.refunded > 0) continue;
        t.disputed = true;
        const dispute = h.fake.state.openDispute({ paymentIntent: t.pi, inquiry: o.inquiry });
        if (o.inquiry && o.escalate) h.fake.state.escalateDispute(dispute.id);
        if (o.outcome !== 'open') h.fake.state.closeDispute(dispute.id, o.outcome);
      }
    }
    await h.fake.flushWebhooks();
    // Reconciliation books the card fees the webhooks do not carry.
    const run = await new Reconciler({
      stripe: h.gateway,
      ledger: () => eventStoreFactSource(h.store),
      store: h.store,
      commands: h.service,
      clock: () => new Date(),
    }).run({
      tenantId: TENANT,
      scope: { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 3_600_000) },
    });

    const balances = await postedBalances(h.store);
    const usd = Object.entries(balances).filter(([k]) => k.endsWith('|usd'));
    expect(
      usd.reduce((sum, [, v]) => sum + v, 0),
      'trial balance',
    ).toBe(0);
    // The wallet is credit-normal: its posted balance is credits - debits, negated here. A refund
    // beyond what the wallet holds would be a receivable; the model never makes one (no bookings).
    expect(0 - (balances['student:s1:wallet|usd'] ?? 0), 'wallet').toBe(wallet);
    const stripe = h.fake.state.balance(PLATFORM);
    const sum = (parts: { amount: number; currency: string }[]) =>
      parts.filter((p) => p.currency === 'usd').reduce((s, p) => s + p.amount, 0);
    expect(balances['stripe:balance|usd'] ?? 0, 'stripe:balance').toBe(
      sum(stripe.available) + sum(stripe.pending),
    );
    expect(run.summary?.drift.find((d) => d.currency === 'usd')?.difference ?? 0, 'drift').toBe(0);
    // Nothing missing on either side and no amount differs: each failed refund's refund_failure is
    // matched by its reversal (re_...:failed), the refund itself by its WalletRefundedToCard. Card fees
    // are listed as unbooked_fee and booked by this run, as before.
    const wrong = run.items.filter((i) => i.classification !== 'unbooked_fee');
    expect(wrong, JSON.stringify(wrong)).toEqual([]);
    expect(run.summary?.missingInLedger, 'missing in ledger').toBe(0);
  } finally {
    await h.close();
  }
}

describe('Stripe events from outside the app, in any order (property)', () => {
  it('keep the trial balance at zero, the wallet equal to the model and stripe:balance equal to Stripe', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), fc.boolean(), checkScenario),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 12) },
    );
  }, 600_000);

  // Seed 1689469511 of the property before failed refunds were reversed: the wallet ended at 975.
  it.each([false, true])(
    'top-up 500, Dashboard refund 25, the refund fails, top-up 500: the wallet ends at 1000 (reorder %s)',
    async (reorder) => {
      await checkScenario(
        [
          { kind: 'topUp', amount: 500 },
          { kind: 'refund', topUp: 0, share: 0.05 },
          { kind: 'failRefund', refund: 0 },
          { kind: 'topUp', amount: 500 },
        ],
        reorder,
      );
    },
    60_000,
  );
});
