import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BillingSettingsService } from '../../src/commands/billingSettings.js';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService } from '../../src/commands/ledgerService.js';
import { defaultDocumentSettings, documentsFor } from '../../src/documents/rules.js';
import {
  PLATFORM_REVENUE_COMMISSION,
  PLATFORM_TAX_PAYABLE,
  studentWallet,
} from '../../src/domain/accounts.js';
import { documentTotalsProblem } from '../../src/domain/documentSeries.js';
import { decodeEvent, entryOf } from '../../src/domain/events.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';

/**
 * Totals on every document equal the ledger's entries, over random flows through the real command layer
 * (top-ups, bookings completed, cancelled late with a fee or refunded in parts, under random commission
 * and tax settings): a receipt's total is what left or entered the wallet, an invoice's net and tax are
 * what the entry credited to commission and tax payable, a credit note's what the refund debited back.
 * Over a whole run, invoices less credit notes equal the commission and tax balances.
 */
const T = 'tot';
const RUNS = Number(process.env.PROPERTY_RUNS ?? 25);

type Step =
  | { kind: 'book'; price: number; late: boolean }
  | { kind: 'complete'; booking: number }
  | { kind: 'cancel'; booking: number }
  | { kind: 'refund'; booking: number; amount: number | null };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('book' as const),
    price: fc.integer({ min: 1, max: 50_000 }),
    late: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('complete' as const), booking: fc.nat(5) }),
  fc.record({ kind: fc.constant('cancel' as const), booking: fc.nat(5) }),
  fc.record({
    kind: fc.constant('refund' as const),
    booking: fc.nat(5),
    amount: fc.option(fc.integer({ min: 1, max: 30_000 }), { nil: null }),
  }),
);

describe('document totals', () => {
  it('equal the ledger entries that caused them, and invoices less credit notes equal commission and tax', async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 5_000 }),
        fc.option(fc.record({ rate: fc.integer({ min: 1, max: 10_000 }), inclusive: fc.boolean() }), {
          nil: null,
        }),
        fc.array(step, { minLength: 1, maxLength: 14 }),
        async (commissionRateBps, tax, steps) => {
          const nowMs = Date.parse('2026-05-01T12:00:00Z');
          const clock = () => new Date(nowMs);
          const store = new MemoryEventStore();
          const service = createLedgerService({ store, clock });
          let n = 0;
          const ctx = (role = 'service'): CommandContext => {
            const key = `k${++n}`;
            return {
              tenantId: T,
              actor: { id: role, role },
              idempotencyKey: key,
              correlationId: key,
              causationId: key,
            };
          };
          await service.updateSettings(ctx('tenant_admin'), { commissionRateBps, cancellationFeeBps: 5_000 });
          if (tax) {
            await new BillingSettingsService(service.handler, clock).update(ctx('tenant_admin'), {
              taxRatesBps: { invoice: tax.rate, receipt: 0 },
              pricesIncludeTax: tax.inclusive,
            });
          }
          await service.initiateTopUp(ctx(), {
            topUpId: 'tu',
            studentId: 's',
            amount: { amount: 1_000_000, currency: 'usd' },
          });
          await service.succeedTopUp(ctx(), {
            topUpId: 'tu',
            paymentIntentId: 'pi',
            amountReceived: 1_000_000,
            currency: 'usd',
          });
          let bookings = 0;
          // Every run starts with a capture refunded in part and a late cancellation, then goes random
          // (steps name bookings placed so far).
          const fixed: Step[] = [
            { kind: 'book', price: 2_345, late: false },
            { kind: 'complete', booking: 0 },
            { kind: 'refund', booking: 0, amount: 1_001 },
            { kind: 'book', price: 777, late: true },
            { kind: 'cancel', booking: 1 },
          ];
          for (const raw of [...fixed, ...steps]) {
            const s = raw.kind === 'book' ? raw : { ...raw, booking: raw.booking % Math.max(1, bookings) };
            try {
              if (s.kind === 'book') {
                await service.placeBooking(ctx(), {
                  bookingId: `b${bookings++}`,
                  studentId: 's',
                  tutorId: 'u',
                  price: { amount: s.price, currency: 'usd' },
                  // Inside the free window: a cancellation is late and costs a fee.
                  scheduledAt: new Date(nowMs + (s.late ? 3_600_000 : 5 * 86_400_000)).toISOString(),
                });
              } else if (s.kind === 'complete') {
                await service.completeBooking(ctx(), { bookingId: `b${s.booking}` });
              } else if (s.kind === 'cancel') {
                await service.cancelBooking(ctx(), { bookingId: `b${s.booking}`, reason: 'ill' });
              } else {
                await service.refundBooking(ctx('finance_admin'), {
                  bookingId: `b${s.booking}`,
                  ...(s.amount === null ? {} : { amount: s.amount }),
                  reason: 'r',
                });
              }
            } catch (error) {
              // A refused step (unknown booking, wrong state, over-refund) appends nothing; go on.
              if (!(error as { code?: string }).code) throw error;
            }
          }
          let invoiced = 0;
          let credited = 0;
          let platformBalance = 0;
          const settings = defaultDocumentSettings(T);
          for (const recorded of await store.readAll({ maxCount: 10_000 })) {
            const event = decodeEvent(recorded);
            const entry = entryOf(event);
            const posted = (account: string, side: 'debit' | 'credit') =>
              (entry?.postings ?? [])
                .filter((p) => p.account === account && p.side === side && p.effect === 'post')
                .reduce((sum, p) => sum + p.amount, 0);
            platformBalance +=
              posted(PLATFORM_REVENUE_COMMISSION, 'credit') -
              posted(PLATFORM_REVENUE_COMMISSION, 'debit') +
              posted(PLATFORM_TAX_PAYABLE, 'credit') -
              posted(PLATFORM_TAX_PAYABLE, 'debit');
            for (const { draft } of documentsFor(event, { tenantId: T, settings })) {
              expect(documentTotalsProblem(draft)).toBeNull();
              seen.set(draft.kind, (seen.get(draft.kind) ?? 0) + 1);
              const wallet = studentWallet('s');
              switch (draft.kind) {
                case 'receipt':
                  expect(draft.total).toBe(
                    posted(wallet, draft.subject.kind === 'topup' ? 'credit' : 'debit'),
                  );
                  break;
                case 'refund_receipt':
                  expect(draft.total).toBe(posted(wallet, 'credit'));
                  break;
                case 'invoice':
                  expect(draft.subtotal).toBe(posted(PLATFORM_REVENUE_COMMISSION, 'credit'));
                  expect(draft.tax).toBe(posted(PLATFORM_TAX_PAYABLE, 'credit'));
                  expect(draft.taxRate === null).toBe(tax === null);
                  invoiced += draft.total;
                  break;
                case 'credit_note':
                  expect(draft.subtotal).toBe(posted(PLATFORM_REVENUE_COMMISSION, 'debit'));
                  expect(draft.tax).toBe(posted(PLATFORM_TAX_PAYABLE, 'debit'));
                  credited += draft.total;
                  break;
              }
            }
          }
          expect(invoiced - credited).toBe(platformBalance);
        },
      ),
      { numRuns: RUNS },
    );
    // The flows reached every kind of document.
    expect([...seen.keys()].sort()).toEqual(['credit_note', 'invoice', 'receipt', 'refund_receipt']);
  });
});
