import { Type } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator, Principal } from '../api/auth.js';
import { PROBLEM_CONTENT_TYPE, problem } from '../api/problem.js';
import { deterministicId } from '../domain/ids.js';
import type { EventStore } from '../eventstore/port.js';
import { loadRunFromEvents, type ReconciliationReadModel } from './readModel.js';
import type { Reconciler } from './reconciler.js';
import { reportCsv } from './report.js';
import type { ReconciliationRun } from './types.js';

export interface ReconciliationRoutesOptions {
  reconciler: Reconciler;
  store: EventStore;
  /** Serves GET from Postgres when given; otherwise runs are rebuilt from their event streams. */
  readModel?: ReconciliationReadModel;
  /**
   * Needed only when the plugin is registered outside the /v1 routes (whose hooks authenticate and
   * check `config.policy`): then the plugin authenticates the bearer token itself.
   */
  authenticator?: Authenticator;
  /** POST waits this long for the run; a longer run answers 202 and continues in the background. */
  syncWaitMs?: number;
  /** Runs at once per process; more answer 503. */
  maxConcurrentRuns?: number;
  /** Longest window one run may cover. */
  maxWindowDays?: number;
}

const RunBody = Type.Union([
  Type.Object(
    { from: Type.String({ format: 'date-time' }), to: Type.String({ format: 'date-time' }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      payout: Type.String({ pattern: '^po_[A-Za-z0-9_]{1,60}$' }),
      connectedAccountId: Type.Optional(Type.String({ pattern: '^acct_[A-Za-z0-9_]{1,60}$' })),
    },
    { additionalProperties: false },
  ),
]);

const RunParams = Type.Object(
  { id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) },
  { additionalProperties: false },
);
const RunQuery = Type.Object(
  {
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: false },
);

type Body = { from: string; to: string } | { payout: string; connectedAccountId?: string };

/**
 * `POST /reconciliation/runs` (finance admin) and `GET /reconciliation/runs/{id}`; pass to buildApp's
 * `v1Plugins` (the /v1 hooks authenticate and check the policy), or register standalone with
 * `{ prefix: '/v1' }` and an authenticator. An Idempotency-Key makes the run id deterministic, so a
 * retried POST returns the same run instead of starting another.
 */
export function reconciliationRoutes(options: ReconciliationRoutesOptions): FastifyPluginAsync {
  const syncWaitMs = options.syncWaitMs ?? 10_000;
  const maxConcurrent = options.maxConcurrentRuns ?? 2;
  const maxWindowMs = (options.maxWindowDays ?? 92) * 86_400_000;
  let running = 0;

  async function financeAdmin(request: FastifyRequest, reply: FastifyReply): Promise<Principal | null> {
    let principal = (request as FastifyRequest & { principal?: Principal | null }).principal ?? null;
    if (!principal) {
      if (!options.authenticator) throw new Error('reconciliationRoutes outside /v1 needs an authenticator');
      try {
        principal = await options.authenticator.authenticate(request.headers.authorization);
      } catch {
        await reply
          .code(401)
          .type(PROBLEM_CONTENT_TYPE)
          .send(problem('unauthenticated', 'a valid bearer token is required'));
        return null;
      }
    }
    if (!principal.roles.includes('finance_admin')) {
      await reply
        .code(403)
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem('forbidden', 'reconciliation is for finance admins'));
      return null;
    }
    return principal;
  }

  async function load(tenantId: string, runId: string, maxItems: number): Promise<ReconciliationRun | null> {
    return options.readModel
      ? options.readModel.get(tenantId, runId, { maxItems })
      : loadRunFromEvents(options.store, tenantId, runId, { maxItems });
  }

  return async (app) => {
    app.post(
      '/reconciliation/runs',
      {
        schema: {
          body: RunBody,
          summary: 'Reconcile the ledger with Stripe (a time window or one payout)',
          tags: ['reconciliation'],
        },
        config: { policy: [{ role: 'finance_admin' }] },
      },
      async (request, reply) => {
        const principal = await financeAdmin(request, reply);
        if (!principal) return reply;
        const body = request.body as Body;
        let scope: { from: Date; to: Date } | { payout: string; connectedAccountId?: string };
        if ('from' in body) {
          const from = new Date(body.from);
          const to = new Date(body.to);
          if (!(from < to) || to.getTime() - from.getTime() > maxWindowMs) {
            return reply
              .code(400)
              .type(PROBLEM_CONTENT_TYPE)
              .send(
                problem(
                  'validation_failed',
                  `from must be before to, and the window at most ${maxWindowMs / 86_400_000} days`,
                ),
              );
          }
          scope = { from, to };
        } else {
          scope = body.connectedAccountId
            ? { payout: body.payout, connectedAccountId: body.connectedAccountId }
            : { payout: body.payout };
        }
        const key = request.headers['idempotency-key'];
        const runId =
          typeof key === 'string' && /^[\x21-\x7e]{1,255}$/.test(key)
            ? deterministicId('reconciliation-run', principal.tenantId, principal.sub, key)
            : deterministicId('reconciliation-run', principal.tenantId, request.id, String(Date.now()));
        const existing = await load(principal.tenantId, runId, 1_000);
        if (existing) return reply.code(200).send(existing);
        if (running >= maxConcurrent) {
          return reply
            .code(503)
            .header('retry-after', '30')
            .type(PROBLEM_CONTENT_TYPE)
            .send(problem('unavailable', `${maxConcurrent} reconciliation runs are already running`));
        }
        running++;
        const done = options.reconciler
          .run({
            tenantId: principal.tenantId,
            scope,
            runId,
            actor: { id: principal.sub, role: 'finance_admin' },
          })
          .finally(() => {
            running--;
          });
        done.catch((error: unknown) => request.log.error({ err: error, runId }, 'reconciliation run failed'));
        const timeout = new Promise<'pending'>((resolve) =>
          setTimeout(() => resolve('pending'), syncWaitMs).unref(),
        );
        const outcome = await Promise.race([done.then((run) => run).catch(() => 'failed' as const), timeout]);
        if (outcome === 'pending') {
          return reply
            .code(202)
            .header('location', `reconciliation/runs/${runId}`)
            .send({ runId, status: 'running' });
        }
        const run = outcome === 'failed' ? await load(principal.tenantId, runId, 1_000) : outcome;
        return reply
          .code(201)
          .send(run ? { ...run, items: run.items.slice(0, 1_000) } : { runId, status: 'failed' });
      },
    );

    app.get(
      '/reconciliation/runs/:id',
      {
        schema: {
          params: RunParams,
          querystring: RunQuery,
          summary: 'A reconciliation run with its exceptions',
          tags: ['reconciliation'],
        },
        config: { policy: [{ role: 'finance_admin' }] },
      },
      async (request, reply) => {
        const principal = await financeAdmin(request, reply);
        if (!principal) return reply;
        const { id } = request.params as { id: string };
        const query = request.query as { format?: 'json' | 'csv'; limit?: number };
        const run = await load(principal.tenantId, id, query.limit ?? 1_000);
        if (!run) {
          return reply
            .code(404)
            .type(PROBLEM_CONTENT_TYPE)
            .send(problem('not_found', `no reconciliation run ${id}`));
        }
        if (query.format === 'csv')
          return reply.code(200).type('text/csv; charset=utf-8').send(reportCsv(run));
        return reply.code(200).send(run);
      },
    );
  };
}
