import { type TSchema, Type } from '@fastify/type-provider-typebox';
import type { ReferralService } from '../../commands/referrals.js';
import type { Policy } from '../auth.js';
import { EntityId, errorResponses, IdempotencyHeaders } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * Referral credits (docs/ledger-flows.md, "Referral credits"): a student's referral code with its
 * standing (the student, its guardians, tenant and finance admins, services), and the link a new
 * student makes with someone's code (the student at sign-up, its guardian, a tenant admin or a service).
 * The link moves no money (the credits follow from the first paid booking), so no Idempotency-Key is
 * required: the same link again changes nothing.
 */
const strict = { additionalProperties: false } as const;

const student = { role: 'student', own: { kind: 'param', name: 'studentId' } } as const;
const guardian = { role: 'guardian', own: { kind: 'guardianOf', param: 'studentId' } } as const;
const policies = {
  read: [student, guardian, { role: 'tenant_admin' }, { role: 'finance_admin' }, { role: 'service' }],
  link: [student, guardian, { role: 'tenant_admin' }, { role: 'service' }],
} satisfies Record<string, Policy>;

const StudentParams = Type.Object({ studentId: EntityId }, strict);
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const ReferralOut = Type.Object(
  {
    studentId: Type.String(),
    code: Type.String(),
    program: Type.Object(
      {
        active: Type.Boolean(),
        refereeCredit: Type.Integer(),
        referrerCredit: Type.Integer(),
        monthlyCap: Type.Integer(),
        clawbackDays: Type.Integer(),
        timeZone: Type.String(),
      },
      strict,
    ),
    referredBy: Nullable(
      Type.Object(
        {
          referrerId: Type.String(),
          linkedAt: Type.String(),
          qualified: Nullable(
            Type.Object(
              {
                bookingId: Type.String(),
                qualifiedAt: Type.String(),
                credit: Type.Integer(),
                currency: Type.String(),
                clawbackUntil: Type.String(),
                clawedBack: Type.Boolean(),
              },
              strict,
            ),
          ),
        },
        strict,
      ),
    ),
    rewards: Type.Object(
      {
        granted: Type.Integer(),
        capped: Type.Integer(),
        clawedBack: Type.Integer(),
        thisMonth: Type.Object(
          { month: Type.String(), granted: Type.Integer(), cap: Type.Integer(), remaining: Type.Integer() },
          strict,
        ),
      },
      strict,
    ),
    credits: Type.Array(Type.Object({ currency: Type.String(), available: Type.Integer() }, strict)),
  },
  { ...strict, $id: 'Referral' },
);
const ReferralChanged = Type.Object({ referral: Type.Ref('Referral'), position: Type.String() }, strict);

export function referralRoutes(options: { referrals: ReferralService }): RouteModule {
  const { referrals } = options;
  return async (app, { kit }) => {
    app.addSchema(ReferralOut);

    app.get(
      '/students/:studentId/referral',
      {
        config: { policy: policies.read },
        schema: {
          operationId: 'getReferral',
          tags: ['students'],
          summary:
            "The student's referral code, who referred them, their rewards this month against the cap and their referral credits",
          params: StudentParams,
          response: { 200: Type.Ref('Referral'), ...errorResponses() },
        },
      },
      async (request) => referrals.view(kit.principal(request).tenantId, request.params.studentId),
    );

    app.post(
      '/students/:studentId/referred-by',
      {
        config: { policy: policies.link },
        schema: {
          operationId: 'linkReferrer',
          tags: ['students'],
          summary:
            'Link a new student (no completed booking yet) to the referrer whose code they signed up with, once; the same code again changes nothing. Refusals are 422 referral_rejected with details.reason (unknown_code, self_referral, already_referred, not_new, program_inactive)',
          params: StudentParams,
          headers: IdempotencyHeaders,
          body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 80 }) }, strict),
          response: { 200: ReferralChanged, 201: ReferralChanged, ...errorResponses(409, 413, 422) },
        },
      },
      async (request, reply) => {
        const result = await kit.run('linkReferrer', () =>
          referrals.linkReferrer(kit.commandContext(request), {
            studentId: request.params.studentId,
            code: request.body.code,
          }),
        );
        return reply
          .code(result.linked ? 201 : 200)
          .send({ referral: result.referral, position: String(result.position) });
      },
    );
  };
}
