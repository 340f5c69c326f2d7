import { Type } from '@fastify/type-provider-typebox';
import type { Policy } from '../auth.js';
import { ApiError } from '../problem.js';
import { EntityId, errorResponses, PayoutAccountOpened, PayoutAccountOut } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * Tutor payout onboarding (docs/ledger-flows.md, "Tutor payout onboarding"): the tutor's Stripe Express
 * account, created once and recorded in the tutor's stream, and Stripe's hosted onboarding link.
 *
 * POST is not a money route (it moves nothing, and each call is meant to return a fresh single-use link),
 * so it needs no Idempotency-Key: the account itself is created at most once per tutor by the command
 * layer. GET reads the tutor stream (the write side), so it is current the moment the POST answered.
 */
const policies = {
  open: [{ role: 'tutor', own: { kind: 'param', name: 'tutorId' } }, { role: 'service' }],
  read: [
    { role: 'tutor', own: { kind: 'param', name: 'tutorId' } },
    { role: 'finance_admin' },
    { role: 'service' },
  ],
} satisfies Record<string, Policy>;

const TutorParams = Type.Object({ tutorId: EntityId }, { additionalProperties: false });

export const payoutAccountRoutes: RouteModule = async (app, { kit }) => {
  app.post(
    '/tutors/:tutorId/payout-account',
    {
      config: { policy: policies.open },
      schema: {
        tags: ['tutors'],
        summary: "Open the tutor's Stripe Express account (once) and get an onboarding link",
        params: TutorParams,
        response: { 200: PayoutAccountOpened, ...errorResponses(409, 422) },
      },
    },
    async (request) => {
      const result = await kit.run('openPayoutAccount', () =>
        kit.commands.openPayoutAccount(kit.commandContext(request), { tutorId: request.params.tutorId }),
      );
      return { account: result.account, onboarding: result.onboarding, position: String(result.position) };
    },
  );

  app.get(
    '/tutors/:tutorId/payout-account',
    {
      config: { policy: policies.read },
      schema: {
        tags: ['tutors'],
        summary: "The tutor's payout account: charges/payouts enabled, requirements due, disabled reason",
        params: TutorParams,
        response: { 200: PayoutAccountOut, ...errorResponses() },
      },
    },
    async (request) => {
      const { tutorId } = request.params;
      const account = await kit.commands.getPayoutAccount(kit.principal(request).tenantId, tutorId);
      if (!account) {
        throw new ApiError(
          'not_found',
          `tutor ${tutorId} has no payout account: open one with POST /v1/tutors/${tutorId}/payout-account`,
        );
      }
      return account;
    },
  );
};
