import type { BalanceCondition } from '../../domain/balanceMonitor.js';
import type { BalanceMonitors, BalanceMonitorView } from '../../monitors/balanceMonitors.js';
import type { Policy } from '../auth.js';
import { ApiError } from '../problem.js';
import { DEFAULT_PAGE_LIMIT, errorResponses } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';
import {
  BalanceMonitorCreated,
  BalanceMonitorDeleted,
  BalanceMonitorOut,
  BalanceMonitorPage,
  CreateBalanceMonitorBody,
  MONITOR_SCHEMAS,
  MonitorListQuery,
  MonitorParams,
  ref,
} from '../webhookSchemas.js';

/** Finance and tenant admins watch balances; internal services may too. */
const POLICY: Policy = [{ role: 'finance_admin' }, { role: 'tenant_admin' }, { role: 'service' }];

function monitorOut(m: BalanceMonitorView) {
  const { monitorId, ...rest } = m;
  return { id: monitorId, ...rest };
}

/**
 * Edge-triggered balance monitors (docs/webhooks.md, "Balance monitors"): create, list, read, delete.
 * A monitor fires `balance_monitor.triggered` when its condition becomes true and again only after
 * it was false (`balance_monitor.recovered`).
 */
export function balanceMonitorRoutes(options: { monitors: BalanceMonitors }): RouteModule {
  const { monitors } = options;
  return async (app, { kit }) => {
    for (const schema of MONITOR_SCHEMAS) app.addSchema(schema);

    app.post(
      '/balance-monitors',
      {
        config: { policy: POLICY },
        schema: {
          operationId: 'createBalanceMonitor',
          tags: ['balance monitors'],
          summary: 'Watch an account balance: fires when the condition becomes true (edge-triggered)',
          body: ref(CreateBalanceMonitorBody),
          response: { 201: ref(BalanceMonitorCreated), ...errorResponses(409, 422) },
        },
      },
      async (request, reply) => {
        const body = request.body as {
          account: string;
          currency?: string | null;
          condition: BalanceCondition;
          description?: string | null;
        };
        const result = await kit.run('createBalanceMonitor', () =>
          monitors.create(kit.commandContext(request), body),
        );
        return reply
          .code(201)
          .send({ monitor: monitorOut(result.monitor), position: String(result.position) });
      },
    );

    app.get(
      '/balance-monitors',
      {
        config: { policy: POLICY },
        schema: {
          operationId: 'listBalanceMonitors',
          tags: ['balance monitors'],
          summary: "The tenant's balance monitors (optionally of one account)",
          querystring: MonitorListQuery,
          response: { 200: ref(BalanceMonitorPage), ...errorResponses() },
        },
      },
      async (request) => {
        const query = request.query as { account?: string; limit?: string; cursor?: string };
        const limit = query.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(query.limit);
        const items = await monitors.list(kit.principal(request).tenantId, {
          limit: limit + 1,
          ...(query.cursor ? { after: query.cursor } : {}),
          ...(query.account ? { account: query.account } : {}),
        });
        const page = items.slice(0, limit);
        return {
          items: page.map(monitorOut),
          nextCursor: items.length > limit ? page[page.length - 1]!.monitorId : null,
        };
      },
    );

    app.get(
      '/balance-monitors/:monitorId',
      {
        config: { policy: POLICY },
        schema: {
          operationId: 'getBalanceMonitor',
          tags: ['balance monitors'],
          summary: 'One balance monitor and, per currency, whether its condition holds',
          params: MonitorParams,
          response: { 200: ref(BalanceMonitorOut), ...errorResponses() },
        },
      },
      async (request) => {
        const { monitorId } = request.params as { monitorId: string };
        const monitor = await monitors.get(kit.principal(request).tenantId, monitorId);
        if (!monitor) throw new ApiError('not_found', `no balance monitor ${monitorId}`);
        return monitorOut(monitor);
      },
    );

    app.delete(
      '/balance-monitors/:monitorId',
      {
        config: { policy: POLICY },
        schema: {
          operationId: 'deleteBalanceMonitor',
          tags: ['balance monitors'],
          summary: 'Delete a balance monitor (its events stay in its stream)',
          params: MonitorParams,
          response: { 200: ref(BalanceMonitorDeleted), ...errorResponses(409, 422) },
        },
      },
      async (request) => {
        const { monitorId } = request.params as { monitorId: string };
        const result = await kit.run('deleteBalanceMonitor', () =>
          monitors.delete(kit.commandContext(request), monitorId),
        );
        return { deleted: true as const, position: String(result.position) };
      },
    );
  };
}
