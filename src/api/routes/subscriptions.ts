import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { SubscriptionService } from '../../commands/subscriptions.js';
import type { SubscriptionView } from '../../contracts/subscriptionViews.js';
import type { Policy } from '../auth.js';
import { ApiError } from '../problem.js';
import { ConsistencyQuery, EntityId, errorResponses, IdempotencyHeaders } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * VIP subscriptions (docs/ledger-flows.md, "VIP subscriptions"): the tenant's plans (tenant admins
 * change them, everyone reads them), and subscriptions: a student their own (another student's is a
 * 404, so ids cannot be probed), finance admins and services any. Served from the subscription's own
 * stream, so a subscription is readable the moment its command answered.
 */
const strict = { additionalProperties: false } as const;
const Bps = Type.Integer({ minimum: 0, maximum: 10_000 });
const Benefits = Type.Object(
  {
    bookingDiscountBps: { ...Bps, description: 'discount on every booking’s list price (basis points)' },
    lateCancellationFeeBps: Type.Union([Bps, Type.Null()], {
      description:
        'late-cancellation fee for subscribers (basis points of the price); null: the tenant’s fee',
    }),
    includedCredits: Type.Integer({
      minimum: 0,
      maximum: 100,
      description: 'sessions per period paid by the plan',
    }),
    creditPriceCap: Type.Integer({
      minimum: 0,
      maximum: 1_000_000_000_000,
      description: 'the most one included credit covers of a booking’s price (minor units)',
    }),
  },
  strict,
);
const Interval = Type.Union([Type.Literal('month'), Type.Literal('year')]);
const PlanFields = {
  planId: EntityId,
  name: Type.String({ minLength: 1, maxLength: 100 }),
  tier: Type.String({ pattern: '^[a-z0-9_]{1,32}$', description: 'e.g. bronze, silver, gold' }),
  interval: Interval,
  price: Type.Integer({ minimum: 1, maximum: 1_000_000_000_000, description: 'per interval, minor units' }),
  currency: Type.String({ pattern: '^[a-z]{3}$' }),
  benefits: Benefits,
  active: Type.Boolean({ description: 'false: retired (no new subscriptions; existing ones keep renewing)' }),
};
const Plan = Type.Object(PlanFields, { ...strict, $id: 'SubscriptionPlan' });
const PolicySchema = Type.Object(
  {
    dunningRetryDays: Type.Array(Type.Integer({ minimum: 1, maximum: 27 }), {
      maxItems: 10,
      description: 'days after the unpaid period’s start at which the renewal is retried (increasing)',
    }),
    cancelNowRefund: Type.Union([Type.Literal('prorated'), Type.Literal('none')]),
  },
  { ...strict, $id: 'SubscriptionPolicy' },
);
const Catalog = Type.Object(
  {
    plans: Type.Array(Type.Ref('SubscriptionPlan')),
    policy: Type.Ref('SubscriptionPolicy'),
    version: Type.Integer(),
  },
  strict,
);
const PlansBody = Type.Object(
  {
    plans: Type.Array(Type.Ref('SubscriptionPlan'), { maxItems: 50 }),
    policy: Type.Optional(Type.Ref('SubscriptionPolicy')),
  },
  strict,
);

const Terms = Type.Object(
  {
    planId: Type.String(),
    name: Type.String(),
    tier: Type.String(),
    interval: Interval,
    price: Type.Integer(),
    currency: Type.String(),
    benefits: Benefits,
    catalogVersion: Type.Integer(),
  },
  strict,
);
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const SubscriptionOut = Type.Object(
  {
    subscriptionId: Type.String(),
    studentId: Type.String(),
    status: Type.Union([Type.Literal('active'), Type.Literal('past_due'), Type.Literal('canceled')]),
    plan: Terms,
    currentPeriod: Type.Object(
      {
        period: Type.Integer(),
        start: Type.String({ format: 'date-time' }),
        end: Type.String({ format: 'date-time' }),
        days: Type.Integer(),
        recognizedThroughDay: Type.Integer(),
      },
      strict,
    ),
    cancelAtPeriodEnd: Type.Boolean(),
    pendingPlanId: Nullable(Type.String()),
    pastDue: Nullable(
      Type.Object({ period: Type.Integer(), attempt: Type.Integer(), nextAttemptAt: Type.String() }, strict),
    ),
    currency: Type.String(),
    paid: Type.Integer(),
    recognized: Type.Integer(),
    refunded: Type.Integer(),
    deferred: Type.Integer({ description: 'paid - recognized - refunded' }),
    canceledAt: Nullable(Type.String()),
    canceledReason: Nullable(
      Type.Union([Type.Literal('canceled_now'), Type.Literal('period_end'), Type.Literal('payment_failed')]),
    ),
    position: Type.Optional(Type.String()),
  },
  { ...strict, $id: 'Subscription' },
);

const policies = {
  readPlans: [
    { role: 'student' },
    { role: 'tutor' },
    { role: 'finance_admin' },
    { role: 'tenant_admin' },
    { role: 'service' },
  ],
  updatePlans: [{ role: 'tenant_admin' }],
  subscribe: [{ role: 'student', own: { kind: 'body', field: 'studentId' } }, { role: 'service' }],
  /** A student's grant is checked against the subscription itself (ownedOrHidden). */
  readSubscription: [{ role: 'student' }, { role: 'finance_admin' }, { role: 'service' }],
  studentSubscription: [
    { role: 'student', own: { kind: 'param', name: 'studentId' } },
    { role: 'finance_admin' },
    { role: 'service' },
  ],
  manageSubscription: [{ role: 'student' }, { role: 'service' }],
} satisfies Record<string, Policy>;

export function subscriptionRoutes(options: { subscriptions: SubscriptionService }): RouteModule {
  const { subscriptions } = options;
  return async (app, { kit }) => {
    app.addSchema(Plan);
    app.addSchema(PolicySchema);
    app.addSchema(SubscriptionOut);

    /** A student acting under its student grant sees only its own subscriptions: anything else is 404. */
    async function ownedOrHidden(request: FastifyRequest, subscriptionId: string): Promise<SubscriptionView> {
      const principal = kit.principal(request);
      const view = await subscriptions.get(principal.tenantId, subscriptionId);
      if (!view) throw new ApiError('not_found', `subscription ${subscriptionId} not found`);
      if (request.grant?.role === 'student' && view.studentId !== principal.sub) {
        throw new ApiError('not_found', `subscription ${subscriptionId} not found`);
      }
      return view;
    }

    app.get(
      '/tenant/plans',
      {
        config: { policy: policies.readPlans },
        schema: {
          operationId: 'getSubscriptionPlans',
          tags: ['subscriptions'],
          summary: 'The tenant’s VIP plans and subscription policy (dunning retries, cancel-now refunds)',
          response: { 200: Catalog, ...errorResponses() },
        },
      },
      async (request) => subscriptions.getPlans(kit.principal(request).tenantId),
    );

    app.put(
      '/tenant/plans',
      {
        config: { policy: policies.updatePlans },
        schema: {
          operationId: 'updateSubscriptionPlans',
          tags: ['subscriptions'],
          summary:
            'Replace the plan catalog (every plan ever defined: retire one with active=false). Price and benefit changes apply from each subscription’s next period',
          headers: IdempotencyHeaders,
          body: PlansBody,
          response: {
            200: Type.Intersect([Catalog, Type.Object({ position: Type.String() })]),
            ...errorResponses(409, 413, 422),
          },
        },
      },
      async (request) => {
        const result = await kit.run('updateSubscriptionPlans', () =>
          subscriptions.updatePlans(kit.commandContext(request), request.body),
        );
        return { ...result.catalog, position: String(result.position) };
      },
    );

    app.post(
      '/subscriptions',
      {
        config: { policy: policies.subscribe, money: true },
        schema: {
          operationId: 'subscribe',
          tags: ['subscriptions'],
          summary: 'Subscribe a student to a plan: the first period is paid from the wallet at once',
          headers: IdempotencyHeaders,
          body: Type.Object({ studentId: EntityId, planId: EntityId }, strict),
          response: { 201: Type.Ref('Subscription'), ...errorResponses(409, 413, 422) },
        },
      },
      async (request, reply) => {
        const result = await kit.run('subscribe', () =>
          subscriptions.subscribe(kit.commandContext(request), request.body),
        );
        reply.code(201);
        return { ...result.subscription, position: String(result.position) };
      },
    );

    app.get(
      '/subscriptions/:subscriptionId',
      {
        config: { policy: policies.readSubscription },
        schema: {
          operationId: 'getSubscription',
          tags: ['subscriptions'],
          summary:
            'A subscription: status, the terms it runs on, the current period, what was paid and recognised',
          params: Type.Object({ subscriptionId: EntityId }, strict),
          querystring: ConsistencyQuery,
          response: { 200: Type.Ref('Subscription'), ...errorResponses() },
        },
      },
      async (request) => ownedOrHidden(request, request.params.subscriptionId),
    );

    app.get(
      '/students/:studentId/subscription',
      {
        config: { policy: policies.studentSubscription },
        schema: {
          operationId: 'getStudentSubscription',
          tags: ['subscriptions'],
          summary: 'The student’s subscription that has not ended (404 when there is none)',
          params: Type.Object({ studentId: EntityId }, strict),
          querystring: ConsistencyQuery,
          response: { 200: Type.Ref('Subscription'), ...errorResponses() },
        },
      },
      async (request) => {
        const view = await subscriptions.forStudent(
          kit.principal(request).tenantId,
          request.params.studentId,
        );
        if (!view) throw new ApiError('not_found', `student ${request.params.studentId} has no subscription`);
        return view;
      },
    );

    app.post(
      '/subscriptions/:subscriptionId/change-plan',
      {
        config: { policy: policies.manageSubscription, money: true },
        schema: {
          operationId: 'changeSubscriptionPlan',
          tags: ['subscriptions'],
          summary:
            'Change plan: an upgrade applies now with a prorated charge for the rest of the period; a downgrade at the period end',
          headers: IdempotencyHeaders,
          params: Type.Object({ subscriptionId: EntityId }, strict),
          body: Type.Object({ planId: EntityId }, strict),
          response: {
            200: Type.Object(
              {
                subscription: Type.Ref('Subscription'),
                effective: Type.Union([Type.Literal('now'), Type.Literal('period_end')]),
                charged: Type.Integer({
                  description: 'the prorated charge taken from the wallet (minor units)',
                }),
                position: Type.String(),
              },
              strict,
            ),
            ...errorResponses(409, 413, 422),
          },
        },
      },
      async (request) => {
        await ownedOrHidden(request, request.params.subscriptionId);
        const result = await kit.run('changeSubscriptionPlan', () =>
          subscriptions.changePlan(kit.commandContext(request), {
            subscriptionId: request.params.subscriptionId,
            planId: request.body.planId,
          }),
        );
        return {
          subscription: result.subscription,
          effective: result.effective,
          charged: result.charged,
          position: String(result.position),
        };
      },
    );

    app.post(
      '/subscriptions/:subscriptionId/cancel',
      {
        config: { policy: policies.manageSubscription, money: true },
        schema: {
          operationId: 'cancelSubscription',
          tags: ['subscriptions'],
          summary:
            'Cancel: at the period end (benefits until then), or now (the unused days refunded to the wallet per the tenant’s policy)',
          headers: IdempotencyHeaders,
          params: Type.Object({ subscriptionId: EntityId }, strict),
          body: Type.Object({ atPeriodEnd: Type.Boolean() }, strict),
          response: { 200: Type.Ref('Subscription'), ...errorResponses(409, 413, 422) },
        },
      },
      async (request) => {
        await ownedOrHidden(request, request.params.subscriptionId);
        const result = await kit.run('cancelSubscription', () =>
          subscriptions.cancel(kit.commandContext(request), {
            subscriptionId: request.params.subscriptionId,
            atPeriodEnd: request.body.atPeriodEnd,
          }),
        );
        return { ...result.subscription, position: String(result.position) };
      },
    );
  };
}
