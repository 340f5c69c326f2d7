import { type Static, Type } from '@sinclair/typebox';
import { PLATFORM_EXPENSE_PROMOTIONS } from './accounts.js';
import { DomainError, invariant } from './errors.js';
import { cumulativeShare } from './money.js';
import { EntityIdSchema, PositiveAmountSchema, strictObject } from './schema.js';
import { validationFailed } from './validate.js';

/**
 * What a booking costs and who pays which part (docs/ledger-flows.md, "Booking price"). One concept for
 * every engineer who changes a price:
 *
 *   list price  -> discounts, each funded by a platform account (a promo code by platform:expense:promotions)
 *               -> payable: what the student's own money covers (the wallet hold)
 *
 * The tutor always earns on the list price: the capture splits the list price into tutor share and
 * commission, and the discounts' funding accounts pay their part of it next to the wallet. A refund of
 * the booking is an amount of the list price; each discount's funding account takes its proportional part
 * back (cumulatively, so the last refund takes exactly what is left) and the wallet gets the rest.
 *
 * A discount kind names what granted it and the account that pays for it; adding a kind (a VIP
 * discount, a bundle) is a new literal in DiscountKindSchema and its funding account in FUNDING_ACCOUNT.
 */

export const MAX_DISCOUNTS = 4;

export const DiscountKindSchema = Type.Union([Type.Literal('promo_code')]);
export type DiscountKind = Static<typeof DiscountKindSchema>;

/** The account each kind of discount is booked against when the booking is captured. */
export const FUNDING_ACCOUNT: Readonly<Record<DiscountKind, string>> = {
  promo_code: PLATFORM_EXPENSE_PROMOTIONS,
};

export const DiscountSchema = strictObject({
  kind: DiscountKindSchema,
  /** What granted it: the promo code. */
  reference: EntityIdSchema,
  amount: PositiveAmountSchema,
});
export type Discount = Static<typeof DiscountSchema>;

export const DiscountsSchema = Type.Array(DiscountSchema, { minItems: 1, maxItems: MAX_DISCOUNTS });

export const discountTotal = (discounts: readonly Discount[] | undefined): number =>
  (discounts ?? []).reduce((sum, d) => sum + d.amount, 0);

/**
 * Checks a booking's discounts against its list price: at most MAX_DISCOUNTS, positive safe amounts, one
 * per kind and reference, and the student still pays at least one minor unit (the wallet hold is what
 * binds a booking to the student's money; a free booking is not modelled). Returns the payable amount.
 */
export function payableAfter(listPrice: number, discounts: readonly Discount[] | undefined): number {
  if (discounts === undefined || discounts.length === 0) return listPrice;
  if (discounts.length > MAX_DISCOUNTS) {
    validationFailed(`a booking has at most ${MAX_DISCOUNTS} discounts`, { field: 'discounts' });
  }
  const seen = new Set<string>();
  let total = 0;
  for (const d of discounts) {
    if (!(d.kind in FUNDING_ACCOUNT)) validationFailed('unknown discount kind', { field: 'discounts' });
    if (!Number.isSafeInteger(d.amount) || d.amount < 1) {
      validationFailed('a discount is a positive amount of minor units', { field: 'discounts' });
    }
    const key = `${d.kind}:${d.reference}`;
    if (seen.has(key)) validationFailed(`discount ${key} given twice`, { field: 'discounts' });
    seen.add(key);
    total += d.amount;
  }
  if (total >= listPrice) {
    throw new DomainError(
      'validation_failed',
      `discounts of ${total} leave nothing to pay of ${listPrice}: the student pays at least 1 minor unit`,
      { field: 'discounts', listPrice, discounts: total },
    );
  }
  return listPrice - total;
}

/** The journal lines a discount adds to a capture (debit) or a refund (credit back). */
export function discountLines(
  discounts: readonly Discount[] | undefined,
  side: 'debit' | 'credit',
): { account: string; side: 'debit' | 'credit'; amount: number }[] {
  return (discounts ?? []).map((d) => ({ account: FUNDING_ACCOUNT[d.kind], side, amount: d.amount }));
}

/**
 * A refund of `amount` of the list price, `refundedBefore` already refunded: each discount's part
 * (cumulative shares of the list price, zero parts left out) and the wallet's part (the rest).
 */
export function refundFunding(
  listPrice: number,
  discounts: readonly Discount[] | undefined,
  refundedBefore: number,
  amount: number,
): { walletPart: number; discounts: Discount[] } {
  const parts: Discount[] = [];
  let fromDiscounts = 0;
  for (const d of discounts ?? []) {
    const part = cumulativeShare(d.amount, listPrice, refundedBefore, amount);
    if (part > 0) parts.push({ ...d, amount: part });
    fromDiscounts += part;
  }
  invariant(fromDiscounts <= amount, 'discount parts of a refund exceed it');
  return { walletPart: amount - fromDiscounts, discounts: parts };
}
