import { Type } from 'typebox';
import type { AdjustmentProposals } from '../../commands/adjustmentProposals.js';
import type { ConsoleQueries } from '../../projections/consoleQueries.js';
import type { Policy } from '../auth.js';
import {
  AdjustmentProposalApproved,
  AdjustmentProposalBody,
  AdjustmentProposalCreated,
  AdjustmentProposalList,
  AdjustmentProposal as AdjustmentProposalSchema,
  ProposalListQuery,
  RejectProposalBody,
  ref,
} from '../financeSchemas.js';
import { ApiError } from '../problem.js';
import { EntityId, errorResponses, IdempotencyHeaders } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * Four-eyes adjustments over HTTP (src/commands/adjustmentProposals.ts): a finance admin proposes, a
 * different finance admin approves (the adjustment is then made) or rejects; proposals expire. Every
 * POST is idempotent with an Idempotency-Key like every money-moving route. Finance and tenant admins
 * read them.
 *
 * Registered by financeRoutes, inside its plugin, where the named schemas these refer to are added.
 */
const FINANCE_ADMIN: Policy = [{ role: 'finance_admin' }];
const FINANCE_READ: Policy = [{ role: 'finance_admin' }, { role: 'tenant_admin' }, { role: 'service' }];
const money = { policy: FINANCE_ADMIN, money: true };
const strict = { additionalProperties: false } as const;
const Params = Type.Object({ proposalId: EntityId }, strict);
const MAX_LISTED = 100;

export function adjustmentProposalRoutes(options: {
  proposals: AdjustmentProposals;
  queries: ConsoleQueries;
}): RouteModule {
  const { proposals, queries } = options;
  return async (app, { kit }) => {
    app.post(
      '/adjustment-proposals',
      {
        config: money,
        schema: {
          operationId: 'proposeAdjustment',
          tags: ['finance'],
          summary:
            'Propose a manual adjustment; it takes effect when a second finance admin approves it (needed above the tenant’s adjustmentApprovalThreshold)',
          headers: IdempotencyHeaders,
          body: AdjustmentProposalBody,
          response: { 201: ref(AdjustmentProposalCreated), ...errorResponses(409, 413, 422) },
        },
      },
      async (request, reply) => {
        const { account, direction, amount, currency, reason, metadata } = request.body;
        const result = await kit.run('proposeAdjustment', () =>
          proposals.propose(kit.commandContext(request, metadata), {
            account,
            direction,
            amount: { amount, currency },
            reason,
          }),
        );
        return reply.code(201).send({ proposal: result.proposal, position: String(result.position) });
      },
    );

    app.get(
      '/adjustment-proposals',
      {
        config: { policy: FINANCE_READ },
        schema: {
          operationId: 'listAdjustmentProposals',
          tags: ['finance'],
          summary: 'Adjustment proposals, most recent first (the last 100), optionally by status',
          querystring: ProposalListQuery,
          response: { 200: ref(AdjustmentProposalList), ...errorResponses() },
        },
      },
      async (request) => {
        const tenantId = kit.principal(request).tenantId;
        const ids = await queries.listReferences(tenantId, 'adjustment_proposal', MAX_LISTED);
        const views = await Promise.all(ids.map((id) => proposals.get(tenantId, id)));
        const status = request.query.status;
        return {
          items: views.filter(
            (v): v is NonNullable<typeof v> => v !== null && (status === undefined || v.status === status),
          ),
        };
      },
    );

    app.get(
      '/adjustment-proposals/:proposalId',
      {
        config: { policy: FINANCE_READ },
        schema: {
          operationId: 'getAdjustmentProposal',
          tags: ['finance'],
          summary: 'One adjustment proposal and where it stands',
          params: Params,
          response: { 200: ref(AdjustmentProposalSchema), ...errorResponses() },
        },
      },
      async (request) => {
        const view = await proposals.get(kit.principal(request).tenantId, request.params.proposalId);
        if (!view) throw new ApiError('not_found', 'no such adjustment proposal');
        return view;
      },
    );

    app.post(
      '/adjustment-proposals/:proposalId/approve',
      {
        config: money,
        schema: {
          operationId: 'approveAdjustmentProposal',
          tags: ['finance'],
          summary:
            'Approve a proposal (a finance admin other than its proposer, before it expires): the adjustment is made',
          headers: IdempotencyHeaders,
          params: Params,
          response: { 200: ref(AdjustmentProposalApproved), ...errorResponses(409, 413, 422) },
        },
      },
      async (request) => {
        const result = await kit.run('approveAdjustmentProposal', () =>
          proposals.approve(kit.commandContext(request), request.params.proposalId),
        );
        return { proposal: result.proposal, entryId: result.entryId, position: String(result.position) };
      },
    );

    app.post(
      '/adjustment-proposals/:proposalId/reject',
      {
        config: money,
        schema: {
          operationId: 'rejectAdjustmentProposal',
          tags: ['finance'],
          summary: 'Reject a proposal (with a reason): nothing is adjusted',
          headers: IdempotencyHeaders,
          params: Params,
          body: RejectProposalBody,
          response: { 200: ref(AdjustmentProposalCreated), ...errorResponses(409, 413, 422) },
        },
      },
      async (request) => {
        const result = await kit.run('rejectAdjustmentProposal', () =>
          proposals.reject(kit.commandContext(request), request.params.proposalId, request.body.reason),
        );
        return { proposal: result.proposal, position: String(result.position) };
      },
    );
  };
}
