import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService } from '../../src/commands/ledgerService.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { eventStoreFactSource } from '../../src/reconciliation/ledgerFacts.js';
import { Reconciler } from '../../src/reconciliation/reconciler.js';
import { startFakeStripe } from '../stripe/support.js';

/**
 * Seeded histories: every top-up is created on one side or both, possibly with a seeded difference.
 * The reconciler must report exactly the seeded differences and nothing else, and a second run (the
 * fees now booked) must report exactly the non-fee ones.
 */
type Kind =
  | 'clean'
  | 'unbooked_fee'
  | 'missing_in_ledger'
  | 'missing_in_stripe'
  | 'amount_mismatch'
  | 'fee_mismatch';

const TENANT = 't1';
const ctx = (key: string): CommandContext => ({
  tenantId: TENANT,
  actor: { id: 'seed', role: 'service' },
  idempotencyKey: key,
  correlationId: key,
  causationId: key,
});

const history = fc.array(
  fc.record({
    kind: fc.constantFrom<Kind>(
      'clean',
      'clean',
      'unbooked_fee',
      'missing_in_ledger',
      'missing_in_stripe',
      'amount_mismatch',
      'fee_mismatch',
    ),
    amount: fc.integer({ min: 500, max: 100_000 }),
    delta: fc.integer({ min: 1, max: 999 }),
  }),
  { minLength: 1, maxLength: 12 },
);

async function check(items: Array<{ kind: Kind; amount: number; delta: number }>): Promise<void> {
  const { fake, gateway, stop } = await startFakeStripe();
  try {
    const store = new MemoryEventStore();
    const service = createLedgerService({ store, clock: () => new Date() });
    const expected: Array<{ classification: string; id: string }> = [];
    for (const [n, item] of items.entries()) {
      const topUpId = `tu${n}`;
      const metadata = { tenantId: TENANT, topUpId, studentId: 's1' };
      let paymentIntentId = `pi_ghost${n}`;
      let txnId: string | null = null;
      let fee = 0;
      if (item.kind !== 'missing_in_stripe') {
        const stripeAmount = item.kind === 'amount_mismatch' ? item.amount + item.delta : item.amount;
        const seeded = fake.state.seedSucceededCharge({ amount: stripeAmount, currency: 'usd', metadata });
        paymentIntentId = seeded.paymentIntent.id;
        txnId = seeded.balanceTransaction.id;
        fee = seeded.balanceTransaction.fee;
      }
      if (item.kind !== 'missing_in_ledger') {
        await service.initiateTopUp(ctx(`init-${n}`), {
          topUpId,
          studentId: 's1',
          amount: { amount: item.amount, currency: 'usd' },
        });
        await service.succeedTopUp(ctx(`ok-${n}`), {
          topUpId,
          paymentIntentId,
          amountReceived: item.amount,
          currency: 'usd',
        });
        if (txnId && item.kind !== 'unbooked_fee') {
          const bookedFee = item.kind === 'fee_mismatch' ? fee + item.delta : fee;
          await service.recordStripeCharge(ctx(`fee-${n}`), {
            kind: 'fee',
            stripeObjectId: txnId,
            amount: { amount: bookedFee, currency: 'usd' },
            description: 'seeded fee',
          });
        }
      }
      if (item.kind !== 'clean') {
        expected.push({
          classification: item.kind === 'fee_mismatch' ? 'amount_mismatch' : item.kind,
          id: paymentIntentId,
        });
      }
    }
    const reconciler = new Reconciler({
      stripe: gateway,
      ledger: () => eventStoreFactSource(store, { pageSize: 7 }),
      commands: service,
      clock: () => new Date(),
      options: { pageSize: 5, slackSeconds: 60 },
    });
    const window = { from: new Date(Date.now() - 600_000), to: new Date(Date.now() + 600_000) };
    const sort = (xs: Array<{ classification: string; id: string }>) =>
      [...xs].sort((a, b) => (a.id + a.classification).localeCompare(b.id + b.classification));
    const first = await reconciler.run({ tenantId: TENANT, scope: window });
    expect(
      sort(first.items.map((i) => ({ classification: i.classification, id: i.stripeObjectId as string }))),
    ).toEqual(sort(expected));
    expect(first.summary?.matched).toBe(items.filter((i) => i.kind === 'clean').length);

    const second = await reconciler.run({ tenantId: TENANT, scope: window });
    const afterFees = expected.filter((e) => e.classification !== 'unbooked_fee');
    expect(
      sort(second.items.map((i) => ({ classification: i.classification, id: i.stripeObjectId as string }))),
    ).toEqual(sort(afterFees));
  } finally {
    await stop();
  }
}

describe('reconciliation property: finds exactly the seeded mismatches', () => {
  it('over random seeded histories', async () => {
    await fc.assert(fc.asyncProperty(history, check), {
      numRuns: Number(process.env.PROPERTY_RUNS ?? 15),
    });
  });

  it('regression: a history with every kind once', async () => {
    await check(
      (
        [
          'clean',
          'unbooked_fee',
          'missing_in_ledger',
          'missing_in_stripe',
          'amount_mismatch',
          'fee_mismatch',
        ] as Kind[]
      ).map((kind, i) => ({ kind, amount: 1_000 + i, delta: 7 })),
    );
  });
});
