import { Type } from '@fastify/type-provider-typebox';
import type { PromoCodes } from '../../commands/promoCodes.js';
import { APPLIES_TO, MAX_REDEMPTIONS } from '../../domain/promoCode.js';
import type { Policy } from '../auth.js';
import { instantParam } from '../requestValues.js';
import { Amount, Currency, errorResponses, IdempotencyHeaders } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * Promo codes (src/domain/promoCode.ts, docs/ledger-flows.md "Promo codes"): a tenant admin creates,
 * deactivates and extends them; finance admins and services read them with their usage. Students
 * redeem a code with `promoCode` on POST /v1/bookings.
 */
const strict = { additionalProperties: false } as const;
const Code = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{2,31}$',
  minLength: 3,
  maxLength: 32,
  description: 'case-insensitive; stored upper case',
});
const Instant = Type.String({ format: 'date-time', maxLength: 40 });
const Count = Type.Integer({ minimum: 1, maximum: MAX_REDEMPTIONS });
const AppliesTo = Type.Array(Type.Union(APPLIES_TO.map((a) => Type.Literal(a))), {
  minItems: 1,
  maxItems: APPLIES_TO.length,
  uniqueItems: true,
});
const Discount = Type.Union([
  Type.Object(
    {
      type: Type.Literal('percentage'),
      bps: Type.Integer({ minimum: 1, maximum: 10_000, description: 'basis points off the list price' }),
      maxAmount: Type.Optional(Type.Union([Amount, Type.Null()], { description: 'cap per redemption' })),
    },
    strict,
  ),
  Type.Object({ type: Type.Literal('fixed'), amount: Amount }, strict),
]);
const DiscountOut = Type.Union([
  Type.Object(
    {
      type: Type.Literal('percentage'),
      bps: Type.Integer(),
      maxAmount: Type.Union([Type.Integer(), Type.Null()]),
    },
    strict,
  ),
  Type.Object({ type: Type.Literal('fixed'), amount: Type.Integer() }, strict),
]);

const PromoCodeOut = Type.Object(
  {
    code: Type.String(),
    status: Type.Union(['active', 'inactive', 'scheduled', 'expired'].map((s) => Type.Literal(s))),
    currency: Type.String(),
    discount: DiscountOut,
    appliesTo: Type.Array(Type.String()),
    validFrom: Type.String(),
    validUntil: Type.String(),
    maxRedemptions: Type.Integer(),
    maxRedemptionsPerStudent: Type.Integer(),
    minimumSpend: Type.Integer(),
    firstPurchaseOnly: Type.Boolean(),
    budget: Type.Union([Type.Integer(), Type.Null()]),
    createdAt: Type.String(),
    usage: Type.Object(
      {
        reserved: Type.Integer(),
        confirmed: Type.Integer(),
        released: Type.Integer(),
        discountReserved: Type.Integer(),
        discountConfirmed: Type.Integer(),
        redemptionsLeft: Type.Integer(),
        budgetLeft: Type.Union([Type.Integer(), Type.Null()]),
      },
      strict,
    ),
  },
  { ...strict, $id: 'PromoCode' },
);
const PromoCodeChanged = Type.Object({ promoCode: Type.Ref('PromoCode'), position: Type.String() }, strict);

const CreateBody = Type.Object(
  {
    code: Code,
    currency: Currency,
    discount: Discount,
    appliesTo: AppliesTo,
    validFrom: Type.Optional(Instant),
    validUntil: Instant,
    maxRedemptions: Count,
    maxRedemptionsPerStudent: Type.Optional(Count),
    minimumSpend: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    firstPurchaseOnly: Type.Optional(Type.Boolean()),
    budget: Type.Optional(Type.Union([Amount, Type.Null()])),
  },
  strict,
);
const ChangeBody = Type.Object(
  {
    active: Type.Optional(Type.Boolean({ description: 'false deactivates the code, true reactivates it' })),
    validUntil: Type.Optional({ ...Instant, description: 'later only' }),
    maxRedemptions: Type.Optional({ ...Count, description: 'higher only' }),
    budget: Type.Optional({ ...Amount, description: 'higher only' }),
  },
  { ...strict, minProperties: 1 },
);
const CodeParams = Type.Object({ code: Code }, strict);

const policies = {
  manage: [{ role: 'tenant_admin' }],
  read: [{ role: 'tenant_admin' }, { role: 'finance_admin' }, { role: 'service' }],
} satisfies Record<string, Policy>;

export function promoCodeRoutes(options: { promoCodes: PromoCodes }): RouteModule {
  const { promoCodes } = options;
  return async (app, { kit }) => {
    app.addSchema(PromoCodeOut);

    app.post(
      '/promo-codes',
      {
        config: { policy: policies.manage },
        schema: {
          operationId: 'createPromoCode',
          tags: ['promotions'],
          summary:
            'Create a promo code: a percentage (with a cap) or a fixed amount off, with limits and a budget',
          headers: IdempotencyHeaders,
          body: CreateBody,
          response: { 201: PromoCodeChanged, ...errorResponses(409, 413, 422) },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const result = await kit.run('createPromoCode', () =>
          promoCodes.create(kit.commandContext(request), {
            code: b.code,
            currency: b.currency,
            discount:
              b.discount.type === 'percentage'
                ? { type: 'percentage', bps: b.discount.bps, maxAmount: b.discount.maxAmount ?? null }
                : b.discount,
            appliesTo: b.appliesTo,
            ...(b.validFrom !== undefined
              ? { validFrom: instantParam(b.validFrom, 'body/validFrom').toISOString() }
              : {}),
            validUntil: instantParam(b.validUntil, 'body/validUntil').toISOString(),
            maxRedemptions: b.maxRedemptions,
            ...(b.maxRedemptionsPerStudent !== undefined
              ? { maxRedemptionsPerStudent: b.maxRedemptionsPerStudent }
              : {}),
            ...(b.minimumSpend !== undefined ? { minimumSpend: b.minimumSpend } : {}),
            ...(b.firstPurchaseOnly !== undefined ? { firstPurchaseOnly: b.firstPurchaseOnly } : {}),
            ...(b.budget !== undefined ? { budget: b.budget } : {}),
          }),
        );
        return reply.code(201).send({ promoCode: result.promoCode, position: String(result.position) });
      },
    );

    app.get(
      '/promo-codes/:code',
      {
        config: { policy: policies.read },
        schema: {
          operationId: 'getPromoCode',
          tags: ['promotions'],
          summary: 'A promo code with its usage: redemptions reserved, confirmed, released; what is left',
          params: CodeParams,
          response: { 200: Type.Ref('PromoCode'), ...errorResponses() },
        },
      },
      async (request) => promoCodes.get(kit.principal(request).tenantId, request.params.code),
    );

    app.patch(
      '/promo-codes/:code',
      {
        config: { policy: policies.manage },
        schema: {
          operationId: 'changePromoCode',
          tags: ['promotions'],
          summary:
            'Deactivate or reactivate a promo code, or extend it (validity later, limit or budget higher); placed bookings keep their discount',
          params: CodeParams,
          headers: IdempotencyHeaders,
          body: ChangeBody,
          response: { 200: PromoCodeChanged, ...errorResponses(409, 413, 415, 422) },
        },
      },
      async (request) => {
        const b = request.body;
        const result = await kit.run('changePromoCode', () =>
          promoCodes.change(kit.commandContext(request), request.params.code, {
            ...(b.active !== undefined ? { active: b.active } : {}),
            ...(b.validUntil !== undefined
              ? { validUntil: instantParam(b.validUntil, 'body/validUntil').toISOString() }
              : {}),
            ...(b.maxRedemptions !== undefined ? { maxRedemptions: b.maxRedemptions } : {}),
            ...(b.budget !== undefined ? { budget: b.budget } : {}),
          }),
        );
        return { promoCode: result.promoCode, position: String(result.position) };
      },
    );
  };
}
