import { type Static, Type } from '@sinclair/typebox';
import { PersistentMap } from '../lib/persistentMap.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { assertAmount, assertCurrency, assertSameCurrency, BPS_DENOMINATOR, mulDivFloor } from './money.js';
import {
  type Actor,
  ActorSchema,
  AmountSchema,
  CountSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  PositiveAmountSchema,
  strictObject,
} from './schema.js';
import { parseInstant, requireEntityId, requireIntegerInRange, toIso, validationFailed } from './validate.js';

/**
 * A promo code: stream `promo-{t}.{CODE}`, the only owner of the code's redemptions and discount budget,
 * so "at most maxRedemptions redemptions, at most budget of discount" is decided against one stream under
 * optimistic concurrency and holds however many bookings race for the last one.
 *
 * Redemptions are two-phase, like wallet holds: a purchase placed with the code *reserves* a redemption
 * (it counts against every limit from then on), the purchase's capture *confirms* it, and a cancellation
 * or expiry *releases* it, giving the slot and the budget back. A reservation resolves once.
 *
 * A reservation made as a step of a flow (after the wallet hold) records a refusal as an event
 * (`PromoRedemptionRefused`, counting nothing) instead of only throwing: the refusal is then a fact of
 * this stream, so the step run again (by the process manager, or a retry) gets the same answer even if a
 * slot was freed meanwhile, and the hold it leads to releasing is never needed again. The code moves no money itself: the discount is booked against
 * platform:expense:promotions by the wallet when the booking is captured (bookingPrice.ts).
 */

/** Codes are case-insensitive: stored upper case, 3-32 characters of [A-Z0-9_-] starting with a letter or digit. */
export const PROMO_CODE_PATTERN = /^[A-Z0-9][A-Z0-9_-]{2,31}$/;
export const MAX_REDEMPTIONS = 100_000;
/** Redemption records kept per code (released ones included): the bound on the code's state. */
export const MAX_REDEMPTION_RECORDS = 2 * MAX_REDEMPTIONS;
const MAX_VALIDITY_DAYS = 3 * 366;
const DAY_MS = 86_400_000;

export const PURCHASE_KINDS = ['booking', 'course', 'subscription'] as const;
export type PurchaseKind = (typeof PURCHASE_KINDS)[number];
/** What a code may be redeemed on (`appliesTo`): the plural of each purchase kind. */
export const APPLIES_TO = ['bookings', 'courses', 'subscriptions'] as const;
export type AppliesTo = (typeof APPLIES_TO)[number];
const APPLIES_TO_OF: Record<PurchaseKind, AppliesTo> = {
  booking: 'bookings',
  course: 'courses',
  subscription: 'subscriptions',
};

/** Why a code cannot be redeemed on a purchase (details.reason of promo_code_rejected). */
export type PromoRejection =
  | 'unknown_code'
  | 'inactive'
  | 'not_yet_valid'
  | 'expired'
  | 'not_applicable'
  | 'minimum_spend'
  | 'redemption_limit'
  | 'per_student_limit'
  | 'budget_exhausted'
  | 'first_purchase_only'
  | 'no_discount';

export function promoRejected(
  code: string,
  reason: PromoRejection,
  message: string,
  details: Record<string, unknown> = {},
): never {
  throw new DomainError('promo_code_rejected', `promo code ${code}: ${message}`, {
    code,
    reason,
    ...details,
  });
}

const PurchaseKindSchema = Type.Union(PURCHASE_KINDS.map((k) => Type.Literal(k)));
const AppliesToSchema = Type.Array(Type.Union(APPLIES_TO.map((k) => Type.Literal(k))), {
  minItems: 1,
  maxItems: APPLIES_TO.length,
  uniqueItems: true,
});
export const PurchaseSchema = strictObject({ kind: PurchaseKindSchema, id: EntityIdSchema });
export type Purchase = Static<typeof PurchaseSchema>;

export const PromoDiscountRuleSchema = Type.Union([
  strictObject({
    type: Type.Literal('percentage'),
    bps: Type.Integer({ minimum: 1, maximum: BPS_DENOMINATOR }),
    /** The most one redemption takes off, minor units; null: no cap. */
    maxAmount: Nullable(PositiveAmountSchema),
  }),
  strictObject({ type: Type.Literal('fixed'), amount: PositiveAmountSchema }),
]);
export type PromoDiscountRule = Static<typeof PromoDiscountRuleSchema>;

const definition = {
  code: EntityIdSchema,
  currency: CurrencySchema,
  discount: PromoDiscountRuleSchema,
  appliesTo: AppliesToSchema,
  validFrom: InstantSchema,
  validUntil: InstantSchema,
  maxRedemptions: Type.Integer({ minimum: 1, maximum: MAX_REDEMPTIONS }),
  maxRedemptionsPerStudent: Type.Integer({ minimum: 1, maximum: MAX_REDEMPTIONS }),
  /** The purchase's list price must be at least this (0: any). */
  minimumSpend: AmountSchema,
  /** Only on a student's first purchase (a wallet with no booking held or captured before). */
  firstPurchaseOnly: Type.Boolean(),
  /** The most discount all redemptions together may take; null: only maxRedemptions bounds it. */
  budget: Nullable(PositiveAmountSchema),
};
export const PromoCodeDefinitionSchema = strictObject(definition);
export type PromoCodeDefinition = Static<typeof PromoCodeDefinitionSchema>;

const redemptionRef = {
  code: EntityIdSchema,
  purchase: PurchaseSchema,
  studentId: EntityIdSchema,
  currency: CurrencySchema,
  discount: PositiveAmountSchema,
};

export const PROMO_CODE_EVENTS = {
  PromoCodeCreated: strictObject({ ...definition, createdBy: ActorSchema, createdAt: InstantSchema }),
  /** The changeable fields as they are after the change (deactivated, reactivated, extended). */
  PromoCodeChanged: strictObject({
    code: EntityIdSchema,
    active: Type.Boolean(),
    validUntil: InstantSchema,
    maxRedemptions: definition.maxRedemptions,
    budget: definition.budget,
    changedBy: ActorSchema,
    changedAt: InstantSchema,
  }),
  PromoRedemptionReserved: strictObject({
    ...redemptionRef,
    listPrice: PositiveAmountSchema,
    firstPurchaseOnly: Type.Boolean(),
    /** Redemptions reserved or confirmed, and their discount, after this one. */
    liveRedemptions: CountSchema,
    liveDiscount: AmountSchema,
    reservedAt: InstantSchema,
  }),
  /** A flow's reservation refused (limits, budget, validity): recorded so that the step's answer is final. */
  PromoRedemptionRefused: strictObject({
    code: EntityIdSchema,
    purchase: PurchaseSchema,
    studentId: EntityIdSchema,
    reason: Type.String({ minLength: 1, maxLength: 40 }),
    message: Type.String({ minLength: 1, maxLength: 500 }),
    refusedAt: InstantSchema,
  }),
  PromoRedemptionConfirmed: strictObject({ ...redemptionRef, confirmedAt: InstantSchema }),
  PromoRedemptionReleased: strictObject({
    ...redemptionRef,
    reason: Type.Union([Type.Literal('cancelled'), Type.Literal('expired'), Type.Literal('not_placed')]),
    releasedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type PromoCodeEvent = EventsOf<typeof PROMO_CODE_EVENTS>;
export type PromoRedemptionReserved = EventOf<typeof PROMO_CODE_EVENTS, 'PromoRedemptionReserved'>;

// ---------------------------------------------------------------------------------------------------
// Commands

export interface CreatePromoCode {
  type: 'CreatePromoCode';
  code: string;
  currency: string;
  discount: PromoDiscountRule;
  appliesTo: readonly string[];
  validFrom: string;
  validUntil: string;
  maxRedemptions: number;
  maxRedemptionsPerStudent: number;
  minimumSpend: number;
  firstPurchaseOnly: boolean;
  budget: number | null;
  actor: Actor;
  now: string;
}

/** PATCH: deactivate or reactivate, and extend (validity later, limit or budget higher; never lower). */
export interface ChangePromoCode {
  type: 'ChangePromoCode';
  active?: boolean;
  validUntil?: string;
  maxRedemptions?: number;
  budget?: number;
  actor: Actor;
  now: string;
}

export interface ReservePromoRedemption {
  type: 'ReservePromoRedemption';
  /** The code as the student typed it (normalized here). */
  code: string;
  purchase: Purchase;
  studentId: string;
  listPrice: number;
  currency: string;
  /** The discount the purchase was priced with (discountFor at the dry run): must be what the code gives. */
  expectedDiscount?: number;
  /** A flow step: a refusal is recorded (PromoRedemptionRefused) rather than only thrown. */
  recordRefusal?: boolean;
  now: string;
}

export interface ConfirmPromoRedemption {
  type: 'ConfirmPromoRedemption';
  purchase: Purchase;
  now: string;
}

export interface ReleasePromoRedemption {
  type: 'ReleasePromoRedemption';
  purchase: Purchase;
  reason: 'cancelled' | 'expired' | 'not_placed';
  now: string;
}

export type PromoCodeCommand =
  | CreatePromoCode
  | ChangePromoCode
  | ReservePromoRedemption
  | ConfirmPromoRedemption
  | ReleasePromoRedemption;

// ---------------------------------------------------------------------------------------------------
// State

export type RedemptionStatus = 'reserved' | 'confirmed' | 'released' | 'refused';
export interface Redemption {
  purchase: Purchase;
  studentId: string;
  discount: number;
  status: RedemptionStatus;
}

export interface PromoCodeState {
  definition: PromoCodeDefinition | null;
  active: boolean;
  createdAt: string | null;
  /** `${kind}:${id}` -> its redemption. */
  redemptions: PersistentMap<Redemption>;
  /** studentId -> redemptions reserved or confirmed. */
  perStudent: PersistentMap<number>;
  reserved: number;
  confirmed: number;
  released: number;
  reservedDiscount: number;
  confirmedDiscount: number;
}

export const initialPromoCodeState = (): PromoCodeState => ({
  definition: null,
  active: false,
  createdAt: null,
  redemptions: PersistentMap.empty(),
  perStudent: PersistentMap.empty(),
  reserved: 0,
  confirmed: 0,
  released: 0,
  reservedDiscount: 0,
  confirmedDiscount: 0,
});

export const purchaseKey = (p: Purchase): string => `${p.kind}:${p.id}`;

/** Normalizes a code as typed by a person (case-insensitive) or refuses it. */
export function normalizePromoCode(value: unknown, field = 'code'): string {
  const code = typeof value === 'string' ? value.trim().toUpperCase() : '';
  if (!PROMO_CODE_PATTERN.test(code)) {
    validationFailed(`${field} must be 3-32 characters of A-Z, 0-9, _ and - (case-insensitive)`, { field });
  }
  return code;
}

/** The discount the code gives on a list price (before budget and limits; 0 when it rounds away). */
export function discountFor(rule: PromoDiscountRule, listPrice: number): number {
  const raw =
    rule.type === 'fixed'
      ? rule.amount
      : Math.min(
          mulDivFloor(listPrice, rule.bps, BPS_DENOMINATOR),
          rule.maxAmount ?? Number.MAX_SAFE_INTEGER,
        );
  // The student pays at least one minor unit (bookingPrice.ts payableAfter).
  return Math.max(0, Math.min(raw, listPrice - 1));
}

function requireCode(state: PromoCodeState): PromoCodeDefinition {
  if (state.definition === null) throw new DomainError('not_found', 'promo code not found');
  return state.definition;
}

function requirePurchase(value: Purchase): Purchase {
  if (value === null || typeof value !== 'object' || !PURCHASE_KINDS.includes(value.kind)) {
    validationFailed(`purchase.kind must be one of ${PURCHASE_KINDS.join(', ')}`, { field: 'purchase' });
  }
  return { kind: value.kind, id: requireEntityId(value.id, 'purchase.id') };
}

function requireActor(value: Actor): Actor {
  if (value === null || typeof value !== 'object' || typeof value.id !== 'string' || !value.id) {
    validationFailed('actor is required', { field: 'actor' });
  }
  if (value.id.length > 200 || typeof value.role !== 'string' || !value.role || value.role.length > 64) {
    validationFailed('actor must be {id, role}', { field: 'actor' });
  }
  return { id: value.id, role: value.role };
}

function requireRule(rule: PromoDiscountRule): PromoDiscountRule {
  if (rule === null || typeof rule !== 'object')
    validationFailed('discount is required', { field: 'discount' });
  if (rule.type === 'percentage') {
    const bps = requireIntegerInRange(rule.bps, 'discount.bps', 1, BPS_DENOMINATOR);
    const maxAmount =
      rule.maxAmount === null || rule.maxAmount === undefined
        ? null
        : assertAmount(rule.maxAmount, { field: 'discount.maxAmount' });
    return { type: 'percentage', bps, maxAmount };
  }
  if (rule.type === 'fixed') {
    return { type: 'fixed', amount: assertAmount(rule.amount, { field: 'discount.amount' }) };
  }
  return validationFailed("discount.type must be 'percentage' or 'fixed'", { field: 'discount.type' });
}

/** The live (reserved + confirmed) redemptions and their discount. */
export const liveRedemptions = (s: PromoCodeState) => s.reserved + s.confirmed;
export const liveDiscount = (s: PromoCodeState) => s.reservedDiscount + s.confirmedDiscount;

function requireRedemption(state: PromoCodeState, purchase: Purchase, code: string): Redemption {
  const r = state.redemptions.get(purchaseKey(purchase));
  if (!r) {
    throw new DomainError('not_found', `promo code ${code} has no redemption for ${purchaseKey(purchase)}`, {
      purchase,
    });
  }
  if (r.status !== 'reserved') {
    throw new DomainError(
      'invalid_state',
      `the redemption of ${code} for ${purchaseKey(purchase)} was already ${r.status}; a reservation resolves once`,
      { status: r.status },
    );
  }
  return r;
}

export function decidePromoCode(command: PromoCodeCommand, state: PromoCodeState): PromoCodeEvent[] {
  switch (command.type) {
    case 'CreatePromoCode': {
      const code = normalizePromoCode(command.code);
      const currency = assertCurrency(command.currency);
      const discount = requireRule(command.discount);
      if (!Array.isArray(command.appliesTo) || command.appliesTo.length === 0) {
        validationFailed('appliesTo must name at least one of bookings, courses, subscriptions', {
          field: 'appliesTo',
        });
      }
      const appliesTo = APPLIES_TO.filter((a) => command.appliesTo.includes(a));
      if (
        appliesTo.length !== new Set(command.appliesTo).size ||
        appliesTo.length !== command.appliesTo.length
      ) {
        validationFailed('appliesTo names each of bookings, courses, subscriptions at most once', {
          field: 'appliesTo',
        });
      }
      const fromMs = parseInstant(command.validFrom, 'validFrom');
      const untilMs = parseInstant(command.validUntil, 'validUntil');
      const nowMs = parseInstant(command.now, 'now');
      if (untilMs <= fromMs) validationFailed('validUntil must be after validFrom', { field: 'validUntil' });
      if (untilMs <= nowMs) validationFailed('validUntil must be in the future', { field: 'validUntil' });
      if (untilMs - Math.max(fromMs, nowMs) > MAX_VALIDITY_DAYS * DAY_MS) {
        validationFailed(`a code is valid for at most ${MAX_VALIDITY_DAYS} days`, { field: 'validUntil' });
      }
      const maxRedemptions = requireIntegerInRange(
        command.maxRedemptions,
        'maxRedemptions',
        1,
        MAX_REDEMPTIONS,
      );
      const maxRedemptionsPerStudent = requireIntegerInRange(
        command.maxRedemptionsPerStudent,
        'maxRedemptionsPerStudent',
        1,
        maxRedemptions,
      );
      const minimumSpend = assertAmount(command.minimumSpend, { field: 'minimumSpend', allowZero: true });
      if (typeof command.firstPurchaseOnly !== 'boolean') {
        validationFailed('firstPurchaseOnly must be a boolean', { field: 'firstPurchaseOnly' });
      }
      const budget = command.budget === null ? null : assertAmount(command.budget, { field: 'budget' });
      // The totals the code can reach stay safe integers (every fold is checked against them).
      if (
        budget === null &&
        discount.type === 'fixed' &&
        discount.amount * maxRedemptions > Number.MAX_SAFE_INTEGER
      ) {
        validationFailed('fixed amount x maxRedemptions must be a safe integer: set a budget', {
          field: 'budget',
        });
      }
      const actor = requireActor(command.actor);
      if (state.definition !== null) {
        throw new DomainError('invalid_state', `promo code ${code} already exists`, { code });
      }
      return [
        {
          type: 'PromoCodeCreated',
          data: {
            code,
            currency,
            discount,
            appliesTo: [...appliesTo],
            validFrom: toIso(fromMs),
            validUntil: toIso(untilMs),
            maxRedemptions,
            maxRedemptionsPerStudent,
            minimumSpend,
            firstPurchaseOnly: command.firstPurchaseOnly,
            budget,
            createdBy: actor,
            createdAt: toIso(nowMs),
          },
        },
      ];
    }

    case 'ChangePromoCode': {
      const def = requireCode(state);
      const actor = requireActor(command.actor);
      const nowMs = parseInstant(command.now, 'now');
      const active = command.active ?? state.active;
      if (typeof active !== 'boolean') validationFailed('active must be a boolean', { field: 'active' });
      let validUntil = def.validUntil;
      if (command.validUntil !== undefined) {
        const untilMs = parseInstant(command.validUntil, 'validUntil');
        if (untilMs < Date.parse(def.validUntil)) {
          validationFailed(`validUntil may only be extended (now ${def.validUntil})`, {
            field: 'validUntil',
          });
        }
        if (untilMs - Math.max(Date.parse(def.validFrom), nowMs) > MAX_VALIDITY_DAYS * DAY_MS) {
          validationFailed(`a code is valid for at most ${MAX_VALIDITY_DAYS} days`, { field: 'validUntil' });
        }
        validUntil = toIso(untilMs);
      }
      let maxRedemptions = def.maxRedemptions;
      if (command.maxRedemptions !== undefined) {
        maxRedemptions = requireIntegerInRange(
          command.maxRedemptions,
          'maxRedemptions',
          def.maxRedemptions,
          MAX_REDEMPTIONS,
        );
      }
      let budget = def.budget;
      if (command.budget !== undefined) {
        if (def.budget === null) {
          validationFailed('the code has no budget to raise', { field: 'budget' });
        }
        budget = requireIntegerInRange(command.budget, 'budget', def.budget, Number.MAX_SAFE_INTEGER);
      }
      if (
        active === state.active &&
        validUntil === def.validUntil &&
        maxRedemptions === def.maxRedemptions &&
        budget === def.budget
      ) {
        validationFailed('the change changes nothing', { field: 'body' });
      }
      return [
        {
          type: 'PromoCodeChanged',
          data: {
            code: def.code,
            active,
            validUntil,
            maxRedemptions,
            budget,
            changedBy: actor,
            changedAt: toIso(nowMs),
          },
        },
      ];
    }

    case 'ReservePromoRedemption': {
      const typed = normalizePromoCode(command.code, 'promoCode');
      const purchase = requirePurchase(command.purchase);
      const studentId = requireEntityId(command.studentId, 'studentId');
      const listPrice = assertAmount(command.listPrice, { field: 'price' });
      const currency = assertCurrency(command.currency);
      const nowMs = parseInstant(command.now, 'now');
      if (state.definition === null) {
        return promoRejected(typed, 'unknown_code', 'no such code');
      }
      const def = state.definition;
      const code = def.code;
      invariant(code === typed, `promo code ${typed} reserved on the stream of ${code}`);
      const previous = state.redemptions.get(purchaseKey(purchase));
      if (previous) {
        throw new DomainError(
          'invalid_state',
          `${purchaseKey(purchase)} already has a redemption of ${code} (${previous.status})`,
          { purchase, status: previous.status },
        );
      }
      if (state.redemptions.size >= MAX_REDEMPTION_RECORDS) {
        throw new DomainError(
          'limit_exceeded',
          `promo code ${code} has ${MAX_REDEMPTION_RECORDS} redemption records`,
        );
      }
      try {
        return [
          reserve(state, def, { purchase, studentId, listPrice, currency, nowMs }, command.expectedDiscount),
        ];
      } catch (error) {
        if (
          !command.recordRefusal ||
          !(error instanceof DomainError) ||
          error.code !== 'promo_code_rejected'
        ) {
          throw error;
        }
        return [
          {
            type: 'PromoRedemptionRefused',
            data: {
              code,
              purchase,
              studentId,
              reason: String(error.details.reason),
              message: error.message.slice(0, 500),
              refusedAt: toIso(nowMs),
            },
          },
        ];
      }
    }

    case 'ConfirmPromoRedemption':
    case 'ReleasePromoRedemption': {
      const def = requireCode(state);
      const purchase = requirePurchase(command.purchase);
      const nowMs = parseInstant(command.now, 'now');
      const r = requireRedemption(state, purchase, def.code);
      const ref = {
        code: def.code,
        purchase: r.purchase,
        studentId: r.studentId,
        currency: def.currency,
        discount: r.discount,
      };
      if (command.type === 'ConfirmPromoRedemption') {
        return [{ type: 'PromoRedemptionConfirmed', data: { ...ref, confirmedAt: toIso(nowMs) } }];
      }
      if (!['cancelled', 'expired', 'not_placed'].includes(command.reason)) {
        validationFailed("reason must be 'cancelled', 'expired' or 'not_placed'", { field: 'reason' });
      }
      return [
        {
          type: 'PromoRedemptionReleased',
          data: { ...ref, reason: command.reason, releasedAt: toIso(nowMs) },
        },
      ];
    }

    default:
      throw new DomainError('validation_failed', 'unknown promo code command');
  }
}

interface Reservation {
  purchase: Purchase;
  studentId: string;
  listPrice: number;
  currency: string;
  nowMs: number;
}

/** A reservation against every rule of the code, or promo_code_rejected naming the rule. */
function reserve(
  state: PromoCodeState,
  def: PromoCodeDefinition,
  r: Reservation,
  expectedDiscount: number | undefined,
): PromoCodeEvent {
  const { code } = def;
  const { purchase, studentId, listPrice, currency, nowMs } = r;
  if (!state.active) promoRejected(code, 'inactive', 'the code was deactivated');
  if (nowMs < Date.parse(def.validFrom)) {
    promoRejected(code, 'not_yet_valid', `valid from ${def.validFrom}`, { validFrom: def.validFrom });
  }
  if (nowMs >= Date.parse(def.validUntil)) {
    promoRejected(code, 'expired', `expired at ${def.validUntil}`, { validUntil: def.validUntil });
  }
  if (!def.appliesTo.includes(APPLIES_TO_OF[purchase.kind])) {
    promoRejected(code, 'not_applicable', `the code applies to ${def.appliesTo.join(', ')}`, {
      appliesTo: def.appliesTo,
    });
  }
  assertSameCurrency(def.currency, currency, `promo code ${code}`);
  if (listPrice < def.minimumSpend) {
    promoRejected(code, 'minimum_spend', `needs a price of at least ${def.minimumSpend}`, {
      minimumSpend: def.minimumSpend,
    });
  }
  if (liveRedemptions(state) >= def.maxRedemptions) {
    promoRejected(code, 'redemption_limit', `all ${def.maxRedemptions} redemptions are taken`, {
      maxRedemptions: def.maxRedemptions,
    });
  }
  const mine = state.perStudent.get(studentId) ?? 0;
  if (mine >= def.maxRedemptionsPerStudent) {
    promoRejected(code, 'per_student_limit', `redeemed ${mine} times by this student already`, {
      maxRedemptionsPerStudent: def.maxRedemptionsPerStudent,
    });
  }
  const discount = discountFor(def.discount, listPrice);
  if (discount === 0) promoRejected(code, 'no_discount', 'the discount on this price rounds to nothing');
  if (expectedDiscount !== undefined && expectedDiscount !== discount) {
    validationFailed(
      `the purchase was priced with a discount of ${expectedDiscount}, the code gives ${discount}`,
      {
        field: 'discount',
      },
    );
  }
  if (def.budget !== null && liveDiscount(state) + discount > def.budget) {
    promoRejected(code, 'budget_exhausted', `its budget has ${def.budget - liveDiscount(state)} left`, {
      budgetLeft: def.budget - liveDiscount(state),
      discount,
    });
  }
  const after = liveDiscount(state) + discount;
  if (!Number.isSafeInteger(after)) {
    throw new DomainError('limit_exceeded', `promo code ${code}: total discount would overflow`);
  }
  return {
    type: 'PromoRedemptionReserved',
    data: {
      code,
      purchase,
      studentId,
      currency,
      discount,
      listPrice,
      firstPurchaseOnly: def.firstPurchaseOnly,
      liveRedemptions: liveRedemptions(state) + 1,
      liveDiscount: after,
      reservedAt: toIso(nowMs),
    },
  };
}

function withRedemption(
  state: PromoCodeState,
  key: string,
  status: 'confirmed' | 'released',
): { state: PromoCodeState; redemption: Redemption } {
  const r = state.redemptions.get(key);
  invariant(r, `redemption ${key} unknown`);
  invariant(r.status === 'reserved', `redemption ${key} resolved twice`);
  return { state: { ...state, redemptions: state.redemptions.set(key, { ...r, status }) }, redemption: r };
}

export function evolvePromoCode(state: PromoCodeState, event: PromoCodeEvent): PromoCodeState {
  switch (event.type) {
    case 'PromoCodeCreated': {
      invariant(state.definition === null, 'promo code created twice');
      const { createdBy: _by, createdAt, ...def } = event.data;
      return { ...state, definition: def, active: true, createdAt };
    }
    case 'PromoCodeChanged': {
      const def = state.definition;
      invariant(def !== null, 'change of a promo code that does not exist');
      const e = event.data;
      invariant(e.maxRedemptions >= def.maxRedemptions, 'maxRedemptions lowered');
      invariant(Date.parse(e.validUntil) >= Date.parse(def.validUntil), 'validity shortened');
      return {
        ...state,
        active: e.active,
        definition: { ...def, validUntil: e.validUntil, maxRedemptions: e.maxRedemptions, budget: e.budget },
      };
    }
    case 'PromoRedemptionReserved': {
      const def = state.definition;
      invariant(def !== null, 'redemption of a promo code that does not exist');
      const e = event.data;
      const key = purchaseKey(e.purchase);
      invariant(!state.redemptions.get(key), `${key} reserved twice`);
      const mine = (state.perStudent.get(e.studentId) ?? 0) + 1;
      const next: PromoCodeState = {
        ...state,
        redemptions: state.redemptions.set(key, {
          purchase: e.purchase,
          studentId: e.studentId,
          discount: e.discount,
          status: 'reserved',
        }),
        perStudent: state.perStudent.set(e.studentId, mine),
        reserved: state.reserved + 1,
        reservedDiscount: state.reservedDiscount + e.discount,
      };
      invariant(liveRedemptions(next) <= def.maxRedemptions, `${def.code}: redemptions above the limit`);
      invariant(mine <= def.maxRedemptionsPerStudent, `${def.code}: student ${e.studentId} above the limit`);
      invariant(def.budget === null || liveDiscount(next) <= def.budget, `${def.code}: budget exceeded`);
      invariant(liveRedemptions(next) === e.liveRedemptions, `${def.code}: redemption count disagrees`);
      invariant(liveDiscount(next) === e.liveDiscount, `${def.code}: discount total disagrees`);
      return next;
    }
    case 'PromoRedemptionRefused': {
      const e = event.data;
      const key = purchaseKey(e.purchase);
      invariant(state.definition !== null, 'refusal on a promo code that does not exist');
      invariant(!state.redemptions.get(key), `${key} refused after a redemption`);
      return {
        ...state,
        redemptions: state.redemptions.set(key, {
          purchase: e.purchase,
          studentId: e.studentId,
          discount: 0,
          status: 'refused',
        }),
      };
    }
    case 'PromoRedemptionConfirmed': {
      const { state: next, redemption } = withRedemption(
        state,
        purchaseKey(event.data.purchase),
        'confirmed',
      );
      return {
        ...next,
        reserved: next.reserved - 1,
        confirmed: next.confirmed + 1,
        reservedDiscount: next.reservedDiscount - redemption.discount,
        confirmedDiscount: next.confirmedDiscount + redemption.discount,
      };
    }
    case 'PromoRedemptionReleased': {
      const { state: next, redemption } = withRedemption(state, purchaseKey(event.data.purchase), 'released');
      const mine = next.perStudent.get(redemption.studentId) ?? 0;
      invariant(mine > 0, 'per-student count below zero');
      return {
        ...next,
        perStudent: next.perStudent.set(redemption.studentId, mine - 1),
        reserved: next.reserved - 1,
        released: next.released + 1,
        reservedDiscount: next.reservedDiscount - redemption.discount,
      };
    }
  }
}

export const promoCodeDecider: Decider<PromoCodeCommand, PromoCodeEvent, PromoCodeState> = {
  initialState: initialPromoCodeState,
  decide: decidePromoCode,
  evolve: evolvePromoCode,
};
