import type { Discount } from '../domain/bookingPrice.js';
import { DomainError, invariant } from '../domain/errors.js';
import { isTenantId } from '../domain/ids.js';
import {
  type AppliesTo,
  discountFor,
  liveDiscount,
  liveRedemptions,
  normalizePromoCode,
  type PromoCodeState,
  type PromoDiscountRule,
  type Purchase,
  promoCodeDecider,
  purchaseKey,
} from '../domain/promoCode.js';
import { promoCodeStream } from '../domain/streams.js';
import { validationFailed } from '../domain/validate.js';
import type { CommandHandler } from './commandHandler.js';
import type { CommandContext, CommandResult } from './context.js';
import { stableHash } from './stableHash.js';

/**
 * Promo codes (src/domain/promoCode.ts): a tenant admin creates, deactivates and extends them; a
 * purchase prices itself with one (priceWithPromoCode) before its flow reserves the redemption
 * (promoCodeSteps.ts). Read from the code's own stream, which is short: its events are the code's
 * changes and one to three per redemption, at most MAX_REDEMPTION_RECORDS of them.
 */

export interface PromoCodeView {
  code: string;
  /** active: redeemable now; inactive: deactivated; scheduled: not valid yet; expired: past validUntil. */
  status: 'active' | 'inactive' | 'scheduled' | 'expired';
  currency: string;
  discount: PromoDiscountRule;
  appliesTo: AppliesTo[];
  validFrom: string;
  validUntil: string;
  maxRedemptions: number;
  maxRedemptionsPerStudent: number;
  minimumSpend: number;
  firstPurchaseOnly: boolean;
  budget: number | null;
  createdAt: string;
  usage: {
    /** Placed purchases whose redemption waits for their capture (counts against every limit). */
    reserved: number;
    confirmed: number;
    released: number;
    discountReserved: number;
    discountConfirmed: number;
    redemptionsLeft: number;
    /** null when the code has no budget. */
    budgetLeft: number | null;
  };
}

export interface CreatePromoCodeInput {
  code: string;
  currency: string;
  discount: PromoDiscountRule;
  appliesTo: AppliesTo[];
  validFrom?: string;
  validUntil: string;
  maxRedemptions: number;
  maxRedemptionsPerStudent?: number;
  minimumSpend?: number;
  firstPurchaseOnly?: boolean;
  budget?: number | null;
}

export interface ChangePromoCodeInput {
  active?: boolean;
  validUntil?: string;
  maxRedemptions?: number;
  budget?: number;
}

export function promoCodeView(state: PromoCodeState, nowMs: number): PromoCodeView {
  const def = state.definition;
  invariant(def !== null && state.createdAt !== null, 'view of a promo code that does not exist');
  const status = !state.active
    ? 'inactive'
    : nowMs < Date.parse(def.validFrom)
      ? 'scheduled'
      : nowMs >= Date.parse(def.validUntil)
        ? 'expired'
        : 'active';
  return {
    code: def.code,
    status,
    currency: def.currency,
    discount: def.discount,
    appliesTo: [...def.appliesTo],
    validFrom: def.validFrom,
    validUntil: def.validUntil,
    maxRedemptions: def.maxRedemptions,
    maxRedemptionsPerStudent: def.maxRedemptionsPerStudent,
    minimumSpend: def.minimumSpend,
    firstPurchaseOnly: def.firstPurchaseOnly,
    budget: def.budget,
    createdAt: state.createdAt,
    usage: {
      reserved: state.reserved,
      confirmed: state.confirmed,
      released: state.released,
      discountReserved: state.reservedDiscount,
      discountConfirmed: state.confirmedDiscount,
      redemptionsLeft: def.maxRedemptions - liveRedemptions(state),
      budgetLeft: def.budget === null ? null : def.budget - liveDiscount(state),
    },
  };
}

/**
 * The discount a promo code gives a purchase, decided on the code's current state exactly as its
 * reservation will be (a refusal here appends nothing anywhere): the discount and whether the wallet
 * must check for a first purchase.
 */
export async function priceWithPromoCode(
  handler: CommandHandler,
  tenantId: string,
  typed: string,
  purchase: { purchase: Purchase; studentId: string; listPrice: number; currency: string; now: string },
): Promise<{ discount: Discount; firstPurchaseOnly: boolean }> {
  const code = normalizePromoCode(typed, 'promoCode');
  const { state } = await handler.load(promoCodeDecider, promoCodeStream(tenantId, code));
  const def = state.definition;
  if (def !== null && state.redemptions.get(purchaseKey(purchase.purchase))) {
    // The purchase already went through its reservation (a retried request): price it as it was priced,
    // and let its flow replay (the reservation, or its recorded refusal, answers the same again).
    return {
      discount: {
        kind: 'promo_code',
        reference: code,
        amount: discountFor(def.discount, purchase.listPrice),
      },
      firstPurchaseOnly: def.firstPurchaseOnly,
    };
  }
  const [event] = promoCodeDecider.decide({ type: 'ReservePromoRedemption', code, ...purchase }, state);
  invariant(event?.type === 'PromoRedemptionReserved', 'a dry-run reservation reserves');
  return {
    discount: { kind: 'promo_code', reference: code, amount: event.data.discount },
    firstPurchaseOnly: event.data.firstPurchaseOnly,
  };
}

export class PromoCodes {
  constructor(
    private readonly handler: CommandHandler,
    private readonly clock: () => Date,
  ) {}

  async get(tenantId: string, typed: string): Promise<PromoCodeView> {
    if (!isTenantId(tenantId)) validationFailed('invalid tenant id', { field: 'tenantId' });
    const code = normalizePromoCode(typed);
    const { state } = await this.handler.load(promoCodeDecider, promoCodeStream(tenantId, code));
    if (state.definition === null)
      throw new DomainError('not_found', `promo code ${code} not found`, { code });
    return promoCodeView(state, this.clock().getTime());
  }

  async create(
    ctx: CommandContext,
    input: CreatePromoCodeInput,
  ): Promise<CommandResult & { promoCode: PromoCodeView }> {
    const code = normalizePromoCode(input.code);
    const now = this.clock().toISOString();
    const result = await this.handler.handle(
      promoCodeDecider,
      promoCodeStream(ctx.tenantId, code),
      {
        type: 'CreatePromoCode',
        code,
        currency: input.currency,
        discount: input.discount,
        appliesTo: input.appliesTo,
        validFrom: input.validFrom ?? now,
        validUntil: input.validUntil,
        maxRedemptions: input.maxRedemptions,
        maxRedemptionsPerStudent: input.maxRedemptionsPerStudent ?? 1,
        minimumSpend: input.minimumSpend ?? 0,
        firstPurchaseOnly: input.firstPurchaseOnly ?? false,
        budget: input.budget ?? null,
        actor: { id: ctx.actor.id, role: ctx.actor.role },
        now,
      },
      ctx,
      // validFrom defaults to the time of the first attempt, so a retry must not hash it.
      { commandType: 'CreatePromoCode', payloadHash: stableHash({ op: 'createPromoCode', input }) },
    );
    return { position: result.position, promoCode: promoCodeView(result.state, this.clock().getTime()) };
  }

  async change(
    ctx: CommandContext,
    typed: string,
    patch: ChangePromoCodeInput,
  ): Promise<CommandResult & { promoCode: PromoCodeView }> {
    const code = normalizePromoCode(typed);
    const result = await this.handler.handle(
      promoCodeDecider,
      promoCodeStream(ctx.tenantId, code),
      {
        type: 'ChangePromoCode',
        ...patch,
        actor: { id: ctx.actor.id, role: ctx.actor.role },
        now: this.clock().toISOString(),
      },
      ctx,
      { commandType: 'ChangePromoCode', payloadHash: stableHash({ op: 'changePromoCode', code, patch }) },
    );
    return { position: result.position, promoCode: promoCodeView(result.state, this.clock().getTime()) };
  }
}
