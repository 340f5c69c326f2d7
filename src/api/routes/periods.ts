import { Type } from '@fastify/type-provider-typebox';
import { periodEndMs, periodStartMs } from '../../domain/effectiveTime.js';
import type { PeriodsState } from '../../domain/periods.js';
import type { Policy } from '../auth.js';
import { ConsistencyQuery, errorResponses, IdempotencyHeaders } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * Accounting periods (src/domain/periods.ts; docs/ledger-flows.md, "Backdated entries and closed
 * periods"): a finance admin closes a month of the tenant's books, in order; after that nothing is
 * booked effective inside it. Closing is idempotent by Idempotency-Key like every command.
 */
const policies = {
  close: [{ role: 'finance_admin' }],
  list: [{ role: 'finance_admin' }, { role: 'tenant_admin' }, { role: 'service' }],
} satisfies Record<string, Policy>;

const strict = { additionalProperties: false } as const;
const PeriodParam = Type.String({
  pattern: '^\\d{4}-(0[1-9]|1[0-2])$',
  description: 'A calendar month in UTC, yyyy-mm',
});
const ClosedPeriod = Type.Object(
  {
    period: Type.String(),
    from: Type.String({ description: 'First instant of the period' }),
    to: Type.String({ description: 'First instant after the period' }),
    closedAt: Type.String(),
    closedBy: Type.String(),
  },
  strict,
);
const PeriodList = Type.Object(
  {
    closedThrough: Type.Union([Type.String(), Type.Null()], {
      description: 'Every period up to and including this one is closed (null: none is)',
    }),
    items: Type.Array(ClosedPeriod, { description: 'Closes, most recent first' }),
  },
  strict,
);
const PeriodClosedOut = Type.Object(
  { period: ClosedPeriod, closedThrough: Type.String(), position: Type.String() },
  strict,
);

function closeOut(c: PeriodsState['closes'][number]) {
  return {
    period: c.period,
    from: new Date(periodStartMs(c.period)).toISOString(),
    to: new Date(periodEndMs(c.period)).toISOString(),
    closedAt: c.closedAt,
    closedBy: c.actorId,
  };
}

/** Closes listed at most (twenty years of months). */
const MAX_LISTED = 240;

export const periodRoutes: RouteModule = async (app, { kit }) => {
  app.post(
    '/periods/:period/close',
    {
      config: { policy: policies.close, money: true },
      schema: {
        tags: ['ledger'],
        summary:
          'Close a month of the books (finance admin; in order; from an hour after it ends): entries effective in it are refused from then on',
        headers: IdempotencyHeaders,
        params: Type.Object({ period: PeriodParam }, strict),
        response: { 201: PeriodClosedOut, ...errorResponses(409, 413, 422) },
      },
    },
    async (request, reply) => {
      const { period } = request.params;
      const result = await kit.run('closePeriod', () =>
        kit.commands.closePeriod(kit.commandContext(request), { period }),
      );
      const state = await kit.commands.periods(kit.principal(request).tenantId);
      const close = state.closes.find((c) => c.period === period);
      if (!close || state.closedThrough === null)
        throw new Error(`period ${period} closed but not in the state`);
      return reply.code(201).send({
        period: closeOut(close),
        closedThrough: state.closedThrough,
        position: String(result.position),
      });
    },
  );

  app.get(
    '/periods',
    {
      config: { policy: policies.list },
      schema: {
        tags: ['ledger'],
        summary: 'The closed accounting periods of the tenant, most recent first',
        querystring: ConsistencyQuery,
        response: { 200: PeriodList, ...errorResponses() },
      },
    },
    async (request) => {
      const state = await kit.commands.periods(kit.principal(request).tenantId);
      return {
        closedThrough: state.closedThrough,
        items: state.closes.slice(-MAX_LISTED).reverse().map(closeOut),
      };
    },
  );
};
