import { Type } from '@fastify/type-provider-typebox';
import type { WalletControls } from '../../commands/walletControls.js';
import type { Policy } from '../auth.js';
import { Amount, Currency, EntityId, errorResponses, IdempotencyHeaders } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * Wallet controls (docs/ledger-flows.md, "Spending limits", "Guardians"): a wallet's spending limits per
 * booking, day, week and month in the tenant's time zone, with what is left of each, and the student's
 * guardians. The student sets their own limits (only lower them while a guardian is linked), a linked
 * guardian sets them, tenant admins and services set anyone's; tenant admins link and unlink guardians.
 * None of it moves money, so no Idempotency-Key is required (the same request again changes nothing).
 */
const strict = { additionalProperties: false } as const;

const guardian = { role: 'guardian', own: { kind: 'guardianOf', param: 'studentId' } } as const;
const policies = {
  read: [
    { role: 'student', own: { kind: 'param', name: 'studentId' } },
    guardian,
    { role: 'tenant_admin' },
    { role: 'finance_admin' },
    { role: 'service' },
  ],
  set: [
    { role: 'student', own: { kind: 'param', name: 'studentId' } },
    guardian,
    { role: 'tenant_admin' },
    { role: 'service' },
  ],
  guardians: [
    { role: 'student', own: { kind: 'param', name: 'studentId' } },
    guardian,
    { role: 'tenant_admin' },
    { role: 'service' },
  ],
  link: [{ role: 'tenant_admin' }],
} satisfies Record<string, Policy>;

const StudentParams = Type.Object({ studentId: EntityId }, strict);
const GuardianParams = Type.Object({ studentId: EntityId, guardianId: EntityId }, strict);
const GuardiansOut = Type.Object(
  {
    studentId: Type.String(),
    guardians: Type.Array(Type.Object({ guardianId: Type.String(), linkedAt: Type.String() }, strict)),
  },
  { ...strict, $id: 'Guardians' },
);
const GuardiansChanged = Type.Object({ guardians: Type.Ref('Guardians'), position: Type.String() }, strict);

const LimitIn = Type.Optional(Type.Union([Amount, Type.Null()]));
const LimitsOut = Type.Object(
  {
    perBooking: Type.Union([Type.Integer(), Type.Null()]),
    perDay: Type.Union([Type.Integer(), Type.Null()]),
    perWeek: Type.Union([Type.Integer(), Type.Null()]),
    perMonth: Type.Union([Type.Integer(), Type.Null()]),
  },
  strict,
);
const Standing = Type.Union([
  Type.Object(
    {
      limit: Type.Integer(),
      spent: Type.Union([Type.Integer(), Type.Null()]),
      remaining: Type.Integer(),
      period: Type.Union([Type.String(), Type.Null()]),
    },
    strict,
  ),
  Type.Null(),
]);
const PeriodSpend = Type.Object({ period: Type.String(), amount: Type.Integer() }, strict);
const SpendingLimitsOut = Type.Object(
  {
    studentId: Type.String(),
    currency: Type.Union([Type.String(), Type.Null()]),
    timeZone: Type.String(),
    limits: LimitsOut,
    standing: Type.Object(
      { perBooking: Standing, perDay: Standing, perWeek: Standing, perMonth: Standing },
      strict,
    ),
    spent: Type.Object({ day: PeriodSpend, week: PeriodSpend, month: PeriodSpend }, strict),
    asOf: Type.String(),
  },
  { ...strict, $id: 'SpendingLimits' },
);
const SpendingLimitsBody = Type.Object(
  {
    perBooking: LimitIn,
    perDay: LimitIn,
    perWeek: LimitIn,
    perMonth: LimitIn,
    /** Needed only while the wallet holds no money yet; otherwise the wallet's currency. */
    currency: Type.Optional(Currency),
  },
  strict,
);

export function walletControlRoutes(options: { controls: WalletControls }): RouteModule {
  const { controls } = options;
  return async (app, { kit }) => {
    app.addSchema(SpendingLimitsOut);
    app.addSchema(GuardiansOut);

    app.get(
      '/students/:studentId/guardians',
      {
        config: { policy: policies.guardians },
        schema: {
          operationId: 'listGuardians',
          tags: ['students'],
          summary: "The student's linked guardians",
          params: StudentParams,
          response: { 200: Type.Ref('Guardians'), ...errorResponses() },
        },
      },
      async (request) => controls.guardians(kit.principal(request).tenantId, request.params.studentId),
    );

    app.post(
      '/students/:studentId/guardians',
      {
        config: { policy: policies.link },
        schema: {
          operationId: 'linkGuardian',
          tags: ['students'],
          summary:
            'Link a guardian (a user with the guardian role) to the student: they see and control the wallet; linking one already linked changes nothing',
          params: StudentParams,
          headers: IdempotencyHeaders,
          body: Type.Object({ guardianId: EntityId }, strict),
          response: { 200: GuardiansChanged, 201: GuardiansChanged, ...errorResponses(409, 413, 415, 422) },
        },
      },
      async (request, reply) => {
        const result = await kit.run('linkGuardian', () =>
          controls.linkGuardian(kit.commandContext(request), {
            studentId: request.params.studentId,
            guardianId: request.body.guardianId,
          }),
        );
        return reply
          .code(result.linked ? 201 : 200)
          .send({ guardians: result.view, position: String(result.position) });
      },
    );

    app.delete(
      '/students/:studentId/guardians/:guardianId',
      {
        config: { policy: policies.link },
        schema: {
          operationId: 'unlinkGuardian',
          tags: ['students'],
          summary: 'Unlink a guardian from the student',
          params: GuardianParams,
          headers: IdempotencyHeaders,
          response: { 200: GuardiansChanged, ...errorResponses(409, 422) },
        },
      },
      async (request) => {
        const result = await kit.run('unlinkGuardian', () =>
          controls.unlinkGuardian(kit.commandContext(request), request.params),
        );
        return { guardians: result.view, position: String(result.position) };
      },
    );

    app.get(
      '/wallets/:studentId/limits',
      {
        config: { policy: policies.read },
        schema: {
          operationId: 'getSpendingLimits',
          tags: ['wallets'],
          summary:
            "The wallet's spending limits (per booking, day, week, month in the tenant's time zone) with what is left of each",
          params: StudentParams,
          response: { 200: Type.Ref('SpendingLimits'), ...errorResponses() },
        },
      },
      async (request) => controls.getLimits(kit.principal(request).tenantId, request.params.studentId),
    );

    app.put(
      '/wallets/:studentId/limits',
      {
        config: { policy: policies.set },
        schema: {
          operationId: 'setSpendingLimits',
          tags: ['wallets'],
          summary:
            "Replace the wallet's spending limits (a limit left out or null: none of that kind); bookings over one are refused with 422 spending_limit_exceeded",
          params: StudentParams,
          headers: IdempotencyHeaders,
          body: SpendingLimitsBody,
          response: {
            200: Type.Object({ limits: Type.Ref('SpendingLimits'), position: Type.String() }, strict),
            ...errorResponses(409, 413, 415, 422),
          },
        },
      },
      async (request) => {
        const { currency, ...given } = request.body;
        const limits = {
          perBooking: given.perBooking ?? null,
          perDay: given.perDay ?? null,
          perWeek: given.perWeek ?? null,
          perMonth: given.perMonth ?? null,
        };
        const result = await kit.run('setSpendingLimits', () =>
          controls.setLimits(kit.commandContext(request), {
            studentId: request.params.studentId,
            limits,
            ...(currency === undefined ? {} : { currency }),
          }),
        );
        return { limits: result.view, position: String(result.position) };
      },
    );
  };
}
