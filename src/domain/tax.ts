import { type Static, Type } from '@sinclair/typebox';
import { DomainError, invariant } from './errors.js';
import { BPS_DENOMINATOR, cumulativeShare, splitByBps } from './money.js';
import { AmountSchema, strictObject } from './schema.js';

/**
 * Tax on the platform's commission (docs/documents.md, "Tax"). When the tenant's billing settings give
 * invoices a tax rate, a booking snapshots it in its policy (`commissionTax`), and its capture books the
 * tax to `platform:tax:payable` next to the commission, so the commission invoice and the ledger agree.
 *
 * Rounding rule: the commission is computed as without tax (floor of the price's bps). Tax exclusive:
 * tax = commission x rate, rounded half up, on top, so the tutor's share is price - commission - tax.
 * Tax inclusive: the commission includes the tax; its net part is commission / (1 + rate), rounded half
 * up, and the tax is the rest; the tutor's share is what it was without tax. Refunds take the platform's
 * part (commission + tax) cumulatively as before, then split it between commission and tax cumulatively,
 * so no refund takes more of either than is left and the last one takes exactly what remains.
 *
 * With no tax rate nothing here changes a number: the split and the refund parts are the ones of an
 * untaxed booking, and no event carries a tax field.
 */
export const TaxRateSchema = strictObject({
  rateBps: Type.Integer({ minimum: 1, maximum: BPS_DENOMINATOR }),
  /** True: prices include the tax; false: the tax is added on top. */
  inclusive: Type.Boolean(),
});
export type TaxRate = Static<typeof TaxRateSchema>;

/** Tax booked with a commission (or reversed with a refund of it): the amount and the rate it came from. */
export const CommissionTaxSchema = strictObject({
  amount: AmountSchema,
  rateBps: TaxRateSchema.properties.rateBps,
  inclusive: Type.Boolean(),
});
export type CommissionTax = Static<typeof CommissionTaxSchema>;

const half = (numerator: bigint, denominator: bigint): number =>
  Number((2n * numerator + denominator) / (2n * denominator));

/** round-half-up(a * b / c) for non-negative safe integers. */
export function mulDivRound(a: number, b: number, c: number): number {
  return half(BigInt(a) * BigInt(b), BigInt(c));
}

/**
 * True when a commission rate and an exclusive tax on it can never take more than the price
 * (commission x (1 + rate) < price for every price).
 */
export function commissionTaxFits(commissionRateBps: number, tax: TaxRate | undefined): boolean {
  if (!tax || tax.inclusive) return true;
  return commissionRateBps * (BPS_DENOMINATOR + tax.rateBps) < BPS_DENOMINATOR * BPS_DENOMINATOR;
}

export interface ChargeSplit {
  /** Net commission: what platform:revenue:commission is credited. */
  commission: number;
  tutorShare: number;
  /** Absent when no tax applies. */
  commissionTax?: CommissionTax;
}

/** Splits a charge (a capture or a late-cancellation fee) into tutor share, commission and its tax. */
export function splitCharge(
  amount: number,
  commissionRateBps: number,
  tax: TaxRate | undefined,
): ChargeSplit {
  const { part, rest } = splitByBps(amount, commissionRateBps);
  if (!tax) return { commission: part, tutorShare: rest };
  if (tax.inclusive) {
    const net = mulDivRound(part, BPS_DENOMINATOR, BPS_DENOMINATOR + tax.rateBps);
    return {
      commission: net,
      tutorShare: rest,
      commissionTax: { amount: part - net, rateBps: tax.rateBps, inclusive: true },
    };
  }
  const taxAmount = mulDivRound(part, tax.rateBps, BPS_DENOMINATOR);
  if (taxAmount > rest) {
    throw new DomainError('validation_failed', 'the commission plus its tax would exceed the price', {
      field: 'commissionTax',
    });
  }
  return {
    commission: part,
    tutorShare: rest - taxAmount,
    commissionTax: { amount: taxAmount, rateBps: tax.rateBps, inclusive: false },
  };
}

export interface RefundSplit {
  tutorPart: number;
  commissionPart: number;
  /** Absent when the booking's capture booked no tax. */
  commissionTax?: CommissionTax;
}

/**
 * The parts of a refund of `amount` after `refundedBefore` of a charge `captured` whose commission and
 * tax were `commission` and `tax`: tutorPart + commissionPart + tax part = amount.
 */
export function splitRefund(
  charge: { captured: number; commission: number; tax?: CommissionTax | undefined },
  refundedBefore: number,
  amount: number,
): RefundSplit {
  const taxTotal = charge.tax?.amount ?? 0;
  const platform = charge.commission + taxTotal;
  const platformPart = cumulativeShare(platform, charge.captured, refundedBefore, amount);
  if (!charge.tax) return { tutorPart: amount - platformPart, commissionPart: platformPart };
  // The platform's part refunded before this one, by the same cumulative rule.
  const platformBefore = cumulativeShare(platform, charge.captured, 0, refundedBefore);
  const taxPart = platform === 0 ? 0 : cumulativeShare(taxTotal, platform, platformBefore, platformPart);
  invariant(taxPart <= platformPart, 'refund tax part exceeds the platform part');
  return {
    tutorPart: amount - platformPart,
    commissionPart: platformPart - taxPart,
    commissionTax: { amount: taxPart, rateBps: charge.tax.rateBps, inclusive: charge.tax.inclusive },
  };
}
