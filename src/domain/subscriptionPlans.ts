import { type Static, Type } from '@sinclair/typebox';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { ENTITY_ID_PATTERN } from './ids.js';
import { BPS_DENOMINATOR, isKnownCurrency } from './money.js';
import { CurrencySchema, EntityIdSchema, InstantSchema, Nullable, strictObject } from './schema.js';
import { parseInstant, requireIntegerInRange, requireText, toIso, validationFailed } from './validate.js';

/**
 * The tenant's VIP plans and subscription policy, one stream per tenant: `plans-{t}.catalog`. Every
 * change (PUT /v1/tenant/plans) appends the full catalog in force after it with a version number. A
 * subscription snapshots the terms of its plan at each period start (subscription.ts), so a change of
 * price or benefits applies from the next period of each subscription, never to a period already paid.
 * A plan is never removed (subscriptions name it): it is retired with `active: false`, which stops new
 * subscriptions and changes to it while existing ones renew on its current terms.
 */

export const MAX_PLANS = 50;
/** Upper bound of a plan price: keeps price x days-in-period far inside a safe integer (recognition). */
export const MAX_PLAN_PRICE = 1_000_000_000_000;
export const MAX_INCLUDED_CREDITS = 100;
const MAX_RETRIES = 10;
/** Retries stay inside the unpaid period: the shortest (February) has 28 days. */
const MAX_RETRY_DAY = 27;
const TIER_PATTERN = /^[a-z0-9_]{1,32}$/;

export const PlanIntervalSchema = Type.Union([Type.Literal('month'), Type.Literal('year')]);
export type PlanInterval = Static<typeof PlanIntervalSchema>;

export const PlanBenefitsSchema = strictObject({
  /** Discount on every booking's list price, basis points; funded by platform:expense:vip-discounts. */
  bookingDiscountBps: Type.Integer({ minimum: 0, maximum: BPS_DENOMINATOR }),
  /** Late-cancellation fee for subscribers, basis points of the price; null: the tenant's fee applies. */
  lateCancellationFeeBps: Nullable(Type.Integer({ minimum: 0, maximum: BPS_DENOMINATOR })),
  /** Sessions per period the subscription pays for instead of the wallet (unused ones expire). */
  includedCredits: Type.Integer({ minimum: 0, maximum: MAX_INCLUDED_CREDITS }),
  /** The most one included credit covers of a booking's price (minor units; the rest is paid as usual). */
  creditPriceCap: Type.Integer({ minimum: 0, maximum: MAX_PLAN_PRICE }),
});
export type PlanBenefits = Static<typeof PlanBenefitsSchema>;

export const PlanSchema = strictObject({
  planId: EntityIdSchema,
  name: Type.String({ minLength: 1, maxLength: 100 }),
  tier: Type.String({ pattern: TIER_PATTERN.source }),
  interval: PlanIntervalSchema,
  price: Type.Integer({ minimum: 1, maximum: MAX_PLAN_PRICE }),
  currency: CurrencySchema,
  benefits: PlanBenefitsSchema,
  /** false: retired (no new subscriptions or changes to it; existing ones keep renewing). */
  active: Type.Boolean(),
});
export type Plan = Static<typeof PlanSchema>;

export const CancelRefundPolicySchema = Type.Union([Type.Literal('prorated'), Type.Literal('none')]);

export const SubscriptionPolicySchema = strictObject({
  /**
   * Dunning: days after the period start at which a renewal the wallet could not pay is tried again,
   * increasing. Benefits are kept while past due (the grace period); when the last retry fails the
   * subscription is canceled. Empty: canceled at the first failure.
   */
  dunningRetryDays: Type.Array(Type.Integer({ minimum: 1, maximum: MAX_RETRY_DAY }), {
    maxItems: MAX_RETRIES,
  }),
  /** Cancel now: `prorated` refunds the unused days to the wallet; `none` keeps the period's price. */
  cancelNowRefund: CancelRefundPolicySchema,
});
export type SubscriptionPolicy = Static<typeof SubscriptionPolicySchema>;

export const DEFAULT_SUBSCRIPTION_POLICY: Readonly<SubscriptionPolicy> = Object.freeze({
  dunningRetryDays: Object.freeze([1, 3, 5]) as unknown as number[],
  cancelNowRefund: 'prorated',
});

export interface PlanCatalog {
  plans: Plan[];
  policy: SubscriptionPolicy;
  /** 0 while the tenant has never set plans; each update adds one. */
  version: number;
}

// ---------------------------------------------------------------------------------------------------
// Validation (the catalog arrives in a command from the API, and is read back from events)

function requireObject(value: unknown, field: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    validationFailed(`${field} must be an object`, { field });
  }
  return value as Record<string, unknown>;
}

function onlyKeys(o: Record<string, unknown>, keys: readonly string[], field: string): void {
  const unknownKeys = Object.keys(o).filter((k) => !keys.includes(k));
  if (unknownKeys.length > 0)
    validationFailed(`${field}: unknown fields ${unknownKeys.join(', ')}`, { field });
}

export function validatePlan(value: unknown, field: string): Plan {
  const p = requireObject(value, field);
  onlyKeys(p, ['planId', 'name', 'tier', 'interval', 'price', 'currency', 'benefits', 'active'], field);
  if (typeof p.planId !== 'string' || !ENTITY_ID_PATTERN.test(p.planId)) {
    validationFailed(`${field}.planId must be 1-64 characters of [A-Za-z0-9_-]`, {
      field: `${field}.planId`,
    });
  }
  const name = requireText(p.name, `${field}.name`, 100);
  if (typeof p.tier !== 'string' || !TIER_PATTERN.test(p.tier)) {
    validationFailed(`${field}.tier must be 1-32 characters of [a-z0-9_] (e.g. gold)`, {
      field: `${field}.tier`,
    });
  }
  if (p.interval !== 'month' && p.interval !== 'year') {
    validationFailed(`${field}.interval must be month or year`, { field: `${field}.interval` });
  }
  const price = requireIntegerInRange(p.price, `${field}.price`, 1, MAX_PLAN_PRICE);
  if (!isKnownCurrency(p.currency)) {
    validationFailed(`${field}.currency must be a supported lowercase ISO 4217 code`, {
      field: `${field}.currency`,
    });
  }
  if (typeof p.active !== 'boolean')
    validationFailed(`${field}.active must be a boolean`, { field: `${field}.active` });
  const b = requireObject(p.benefits, `${field}.benefits`);
  onlyKeys(
    b,
    ['bookingDiscountBps', 'lateCancellationFeeBps', 'includedCredits', 'creditPriceCap'],
    `${field}.benefits`,
  );
  const benefits: PlanBenefits = {
    bookingDiscountBps: requireIntegerInRange(
      b.bookingDiscountBps,
      `${field}.benefits.bookingDiscountBps`,
      0,
      BPS_DENOMINATOR,
    ),
    lateCancellationFeeBps:
      b.lateCancellationFeeBps === null
        ? null
        : requireIntegerInRange(
            b.lateCancellationFeeBps,
            `${field}.benefits.lateCancellationFeeBps`,
            0,
            BPS_DENOMINATOR,
          ),
    includedCredits: requireIntegerInRange(
      b.includedCredits,
      `${field}.benefits.includedCredits`,
      0,
      MAX_INCLUDED_CREDITS,
    ),
    creditPriceCap: requireIntegerInRange(
      b.creditPriceCap,
      `${field}.benefits.creditPriceCap`,
      0,
      MAX_PLAN_PRICE,
    ),
  };
  if (benefits.includedCredits > 0 && benefits.creditPriceCap === 0) {
    validationFailed(`${field}.benefits.creditPriceCap must be positive when includedCredits is`, {
      field: `${field}.benefits.creditPriceCap`,
    });
  }
  return {
    planId: p.planId,
    name,
    tier: p.tier,
    interval: p.interval,
    price,
    currency: p.currency,
    benefits,
    active: p.active,
  };
}

export function validateSubscriptionPolicy(value: unknown, field = 'policy'): SubscriptionPolicy {
  const p = requireObject(value, field);
  onlyKeys(p, ['dunningRetryDays', 'cancelNowRefund'], field);
  const days = p.dunningRetryDays;
  if (!Array.isArray(days) || days.length > MAX_RETRIES) {
    validationFailed(`${field}.dunningRetryDays must be an array of at most ${MAX_RETRIES} days`, {
      field: `${field}.dunningRetryDays`,
    });
  }
  const retryDays = days.map((d, i) =>
    requireIntegerInRange(d, `${field}.dunningRetryDays[${i}]`, 1, MAX_RETRY_DAY),
  );
  for (let i = 1; i < retryDays.length; i++) {
    if (retryDays[i]! <= retryDays[i - 1]!) {
      validationFailed(`${field}.dunningRetryDays must be strictly increasing`, {
        field: `${field}.dunningRetryDays`,
      });
    }
  }
  if (p.cancelNowRefund !== 'prorated' && p.cancelNowRefund !== 'none') {
    validationFailed(`${field}.cancelNowRefund must be prorated or none`, {
      field: `${field}.cancelNowRefund`,
    });
  }
  return { dunningRetryDays: retryDays, cancelNowRefund: p.cancelNowRefund };
}

/** A whole catalog: distinct plan ids, every plan valid. */
export function validatePlans(value: unknown): Plan[] {
  if (!Array.isArray(value) || value.length > MAX_PLANS) {
    validationFailed(`plans must be an array of at most ${MAX_PLANS} plans`, { field: 'plans' });
  }
  const plans = value.map((p, i) => validatePlan(p, `plans[${i}]`));
  const ids = new Set<string>();
  for (const plan of plans) {
    if (ids.has(plan.planId)) validationFailed(`plan ${plan.planId} is listed twice`, { field: 'plans' });
    ids.add(plan.planId);
  }
  return plans;
}

// ---------------------------------------------------------------------------------------------------
// Decider

export interface UpdatePlans {
  type: 'UpdatePlans';
  plans: unknown;
  policy: unknown;
  updatedAt: string;
}
export type PlanCatalogCommand = UpdatePlans;

export const PLAN_CATALOG_EVENTS = {
  /** The full catalog in force after the change. */
  SubscriptionPlansUpdated: strictObject({
    plans: Type.Array(PlanSchema, { maxItems: MAX_PLANS }),
    policy: SubscriptionPolicySchema,
    version: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    updatedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type PlanCatalogEvent = EventsOf<typeof PLAN_CATALOG_EVENTS>;
export type SubscriptionPlansUpdated = EventOf<typeof PLAN_CATALOG_EVENTS, 'SubscriptionPlansUpdated'>;

export type PlanCatalogState = PlanCatalog;

export const initialPlanCatalogState = (): PlanCatalogState => ({
  plans: [],
  policy: {
    ...DEFAULT_SUBSCRIPTION_POLICY,
    dunningRetryDays: [...DEFAULT_SUBSCRIPTION_POLICY.dunningRetryDays],
  },
  version: 0,
});

/** A plan of the catalog, or not_found. */
export function requirePlan(catalog: PlanCatalog, planId: string): Plan {
  const plan = catalog.plans.find((p) => p.planId === planId);
  if (!plan) throw new DomainError('not_found', `plan ${planId} does not exist`, { planId });
  return plan;
}

export function decidePlanCatalog(command: PlanCatalogCommand, state: PlanCatalogState): PlanCatalogEvent[] {
  switch (command.type) {
    case 'UpdatePlans': {
      const updatedAt = toIso(parseInstant(command.updatedAt, 'updatedAt'));
      const plans = validatePlans(command.plans);
      const policy = validateSubscriptionPolicy(command.policy);
      const removed = state.plans.filter((old) => !plans.some((p) => p.planId === old.planId));
      if (removed.length > 0) {
        validationFailed(
          `plans cannot be removed (subscriptions name them): set active to false instead for ${removed.map((p) => p.planId).join(', ')}`,
          { field: 'plans', removed: removed.map((p) => p.planId) },
        );
      }
      for (const plan of plans) {
        const old = state.plans.find((p) => p.planId === plan.planId);
        if (old && (old.currency !== plan.currency || old.interval !== plan.interval)) {
          validationFailed(
            `plan ${plan.planId}: currency and interval are fixed once created (subscriptions run on them); create a new plan`,
            { field: 'plans', planId: plan.planId },
          );
        }
      }
      // The catalog already in force changes nothing and appends nothing.
      if (
        JSON.stringify({ plans, policy }) === JSON.stringify({ plans: state.plans, policy: state.policy })
      ) {
        return [];
      }
      return [
        { type: 'SubscriptionPlansUpdated', data: { plans, policy, version: state.version + 1, updatedAt } },
      ];
    }
    default:
      throw new DomainError('validation_failed', 'unknown plan catalog command');
  }
}

export function evolvePlanCatalog(state: PlanCatalogState, event: PlanCatalogEvent): PlanCatalogState {
  switch (event.type) {
    case 'SubscriptionPlansUpdated': {
      const e = event.data;
      invariant(e.version === state.version + 1, `plan catalog version ${e.version} after ${state.version}`);
      return { plans: e.plans, policy: e.policy, version: e.version };
    }
  }
}

export const planCatalogDecider: Decider<PlanCatalogCommand, PlanCatalogEvent, PlanCatalogState> = {
  initialState: initialPlanCatalogState,
  decide: decidePlanCatalog,
  evolve: evolvePlanCatalog,
};
