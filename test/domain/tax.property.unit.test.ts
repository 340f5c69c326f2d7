import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cumulativeShare, splitByBps } from '../../src/domain/money.js';
import { commissionTaxFits, splitCharge, splitRefund, type TaxRate } from '../../src/domain/tax.js';

/**
 * The commission-tax rules of src/domain/tax.ts against a reference model written with exact rationals:
 * a charge splits into tutor share + commission + tax with nothing lost; a sequence of partial refunds
 * never takes more of any part than is left and the refund that completes the charge takes exactly
 * what remains; without a tax rate every number is the untaxed one.
 */
const charge = fc.integer({ min: 1, max: 10_000_000 });
const bps = fc.integer({ min: 0, max: 9_999 });
const rate = fc.option(fc.record({ rateBps: fc.integer({ min: 1, max: 10_000 }), inclusive: fc.boolean() }), {
  nil: undefined,
});

describe('commission tax', () => {
  it('splits a charge exactly, with the tax the rate gives (rounded half up)', () => {
    fc.assert(
      fc.property(charge, bps, rate, (amount, commissionBps, tax: TaxRate | undefined) => {
        fc.pre(commissionTaxFits(commissionBps, tax));
        const split = splitCharge(amount, commissionBps, tax);
        const taxAmount = split.commissionTax?.amount ?? 0;
        expect(split.tutorShare + split.commission + taxAmount).toBe(amount);
        expect(split.tutorShare).toBeGreaterThanOrEqual(0);
        const gross = splitByBps(amount, commissionBps).part;
        if (!tax) {
          expect(split).toEqual({ commission: gross, tutorShare: amount - gross });
          return;
        }
        if (tax.inclusive) {
          // net = gross / (1 + rate), to the nearest unit: |net * (1 + rate) - gross| <= (1 + rate) / 2.
          expect(split.commission + taxAmount).toBe(gross);
          expect(Math.abs(split.commission * (10_000 + tax.rateBps) - gross * 10_000)).toBeLessThanOrEqual(
            (10_000 + tax.rateBps) / 2,
          );
        } else {
          expect(split.commission).toBe(gross);
          expect(Math.abs(taxAmount * 10_000 - gross * tax.rateBps)).toBeLessThanOrEqual(5_000);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('refunds in any number of parts take each part back exactly once', () => {
    fc.assert(
      fc.property(
        charge,
        bps,
        rate,
        fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 8 }),
        (amount, commissionBps, tax: TaxRate | undefined, requests) => {
          fc.pre(commissionTaxFits(commissionBps, tax));
          const split = splitCharge(amount, commissionBps, tax);
          const taxTotal = split.commissionTax?.amount ?? 0;
          let refunded = 0;
          let tutor = 0;
          let commission = 0;
          let taxBack = 0;
          const slices = requests.map((r) => Math.max(1, r % (amount + 1)));
          for (let i = 0; i <= slices.length && refunded < amount; i++) {
            // The last refund takes what is left.
            const left = amount - refunded;
            const slice = i === slices.length ? left : Math.min(slices[i]!, left);
            const parts = splitRefund(
              { captured: amount, commission: split.commission, tax: split.commissionTax },
              refunded,
              slice,
            );
            const partTax = parts.commissionTax?.amount ?? 0;
            expect(parts.tutorPart + parts.commissionPart + partTax).toBe(slice);
            expect(Math.min(parts.tutorPart, parts.commissionPart, partTax)).toBeGreaterThanOrEqual(0);
            if (!tax) {
              // Exactly the untaxed rule of docs/ledger-flows.md.
              expect(parts.commissionPart).toBe(cumulativeShare(split.commission, amount, refunded, slice));
              expect(parts.commissionTax).toBeUndefined();
            }
            refunded += slice;
            tutor += parts.tutorPart;
            commission += parts.commissionPart;
            taxBack += partTax;
            expect(tutor).toBeLessThanOrEqual(split.tutorShare);
            expect(commission).toBeLessThanOrEqual(split.commission);
            expect(taxBack).toBeLessThanOrEqual(taxTotal);
          }
          expect([tutor, commission, taxBack]).toEqual([split.tutorShare, split.commission, taxTotal]);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
