import type { Discount } from '../domain/bookingPrice.js';
import { DomainError } from '../domain/errors.js';
import { type PromoRejection, promoCodeDecider, promoRejected } from '../domain/promoCode.js';
import { promoCodeStream } from '../domain/streams.js';
import type { Trigger } from './flowContext.js';
import type { FlowSteps } from './flowSteps.js';

/**
 * The promo code's part of a booking's flow (docs/ledger-flows.md, "Promo codes"): the reservation made
 * after the wallet hold, its confirmation on completion and its release on cancellation or expiry. Each
 * is a step keyed by its trigger and the code, so the command path and the process managers perform it
 * once between them.
 */

/** The promo codes among a booking's discounts, with the discount each gives. */
export function promoCodesOf(discounts: readonly Discount[] | undefined): { code: string; amount: number }[] {
  return (discounts ?? [])
    .filter((d) => d.kind === 'promo_code')
    .map((d) => ({ code: d.reference, amount: d.amount }));
}

/**
 * WalletHoldPlaced with a promo discount -> PromoRedemptionReserved, or PromoRedemptionRefused when the
 * code's limits, budget or validity no longer allow it (recorded, so the answer is final). Returns the
 * refusal, or null when every code of the hold is reserved.
 */
export async function reservePromoCodesAfterHold(
  steps: FlowSteps,
  trigger: Trigger<'WalletHoldPlaced'>,
): Promise<{ code: string; reason: PromoRejection; message: string } | null> {
  const d = trigger.data;
  for (const { code, amount } of promoCodesOf(d.discounts)) {
    const result = await steps.runStep(
      trigger,
      `reserve-promo-${code}`,
      promoCodeDecider,
      promoCodeStream(trigger.tenantId, code),
      () => ({
        type: 'ReservePromoRedemption',
        code,
        purchase: { kind: 'booking', id: d.bookingId },
        studentId: d.studentId,
        listPrice: d.listPrice ?? d.amount,
        currency: d.currency,
        expectedDiscount: amount,
        recordRefusal: true,
        now: trigger.metadata.occurredAt,
      }),
    );
    const refused = result.events.find((e) => e.type === 'PromoRedemptionRefused');
    if (refused) {
      const data = refused.data as { reason: PromoRejection; message: string };
      return { code, reason: data.reason, message: data.message };
    }
  }
  return null;
}

/** The error a placement answers with when a code's reservation was refused after the hold. */
export function promoRefusalError(refusal: { code: string; reason: PromoRejection; message: string }): never {
  return promoRejected(refusal.code, refusal.reason, refusal.message.replace(/^promo code \S+: /, ''));
}

/** BookingCompleted -> PromoRedemptionConfirmed for each promo code of the booking. */
export async function confirmPromoCodesAfterCompletion(
  steps: FlowSteps,
  trigger: Trigger<'BookingCompleted'>,
): Promise<void> {
  for (const { code } of promoCodesOf(trigger.data.discounts)) {
    await steps.runStep(
      trigger,
      `confirm-promo-${code}`,
      promoCodeDecider,
      promoCodeStream(trigger.tenantId, code),
      () => ({
        type: 'ConfirmPromoRedemption',
        purchase: { kind: 'booking', id: trigger.data.bookingId },
        now: trigger.metadata.occurredAt,
      }),
    );
  }
}

/**
 * BookingCancelled / BookingExpired -> PromoRedemptionReleased; WalletHoldPlaced of a booking that could
 * not be placed -> the same with reason not_placed (a reservation that was refused, or never made, has
 * nothing to release).
 */
export async function releasePromoCodes(
  steps: FlowSteps,
  trigger: Trigger<'BookingCancelled' | 'BookingExpired' | 'WalletHoldPlaced'>,
): Promise<void> {
  const reason =
    trigger.type === 'BookingCancelled'
      ? 'cancelled'
      : trigger.type === 'BookingExpired'
        ? 'expired'
        : 'not_placed';
  for (const { code } of promoCodesOf(trigger.data.discounts)) {
    const run = steps.runStep(
      trigger,
      `release-promo-${code}`,
      promoCodeDecider,
      promoCodeStream(trigger.tenantId, code),
      () => ({
        type: 'ReleasePromoRedemption',
        purchase: { kind: 'booking', id: trigger.data.bookingId },
        reason,
        now: trigger.metadata.occurredAt,
      }),
    );
    if (reason !== 'not_placed') {
      await run;
      continue;
    }
    // A compensation: no reservation (refused, or the flow stopped before it) is not an error.
    await run.catch((error: unknown) => {
      if (!(error instanceof DomainError)) throw error;
    });
  }
}
