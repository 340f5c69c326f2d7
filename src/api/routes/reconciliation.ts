import { type TSchema, Type } from '@fastify/type-provider-typebox';
import { deterministicId, ENTITY_ID_PATTERN } from '../../domain/ids.js';
import {
  ReconciliationItemSchema,
  ReconciliationScopeSchema,
  ReconciliationSummarySchema,
} from '../../domain/reconciliationRun.js';
import type { EventStore } from '../../eventstore/port.js';
import {
  listRunsFromEvents,
  loadRunFromEvents,
  type ReconciliationReadModel,
  type RunPageRequest,
} from '../../reconciliation/readModel.js';
import type { Reconciler } from '../../reconciliation/reconciler.js';
import { reportCsv } from '../../reconciliation/report.js';
import type { ReconciliationRun } from '../../reconciliation/types.js';
import type { Policy } from '../auth.js';
import { ApiError } from '../problem.js';
import { instantParam } from '../requestValues.js';
import { errorResponses, IdempotencyHeaders } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

export interface ReconciliationRoutesOptions {
  reconciler: Reconciler;
  store: EventStore;
  /** Serves GET from Postgres when given; otherwise runs are rebuilt from their event streams. */
  readModel?: ReconciliationReadModel;
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
  { id: Type.String({ pattern: ENTITY_ID_PATTERN.source }) },
  { additionalProperties: false },
);
const RunQuery = Type.Object(
  {
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])),
    // Query strings are not type-coerced (as on every /v1 route): the limit is a digit string, 1..10000.
    limit: Type.Optional(Type.String({ pattern: '^([1-9][0-9]{0,3}|10000)$', maxLength: 5 })),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^([1-9][0-9]?|100)$', maxLength: 3 })),
    /** nextCursor of the previous page. */
    cursor: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,400}$' })),
  },
  { additionalProperties: false },
);

/** Opaque page cursor: the last run of a page (startedAt, runId), base64url JSON. */
function encodeCursor(run: { startedAt: string; runId: string }): string {
  return Buffer.from(JSON.stringify([run.startedAt, run.runId])).toString('base64url');
}

function decodeCursor(cursor: string): NonNullable<RunPageRequest['before']> {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      !Number.isNaN(Date.parse(value[0])) &&
      typeof value[1] === 'string' &&
      ENTITY_ID_PATTERN.test(value[1])
    ) {
      return { startedAt: new Date(value[0]).toISOString(), runId: value[1] };
    }
  } catch {
    // answered below
  }
  throw new ApiError('validation_failed', 'cursor is not a cursor this API gave out', {
    errors: [{ path: 'querystring/cursor', message: 'use nextCursor of the previous page' }],
  });
}

type Body = { from: string; to: string } | { payout: string; connectedAccountId?: string };

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** A run as ReconciliationRun declares it, from the domain's own schemas of its parts. */
const RunSchema = Type.Object({
  runId: Type.String(),
  tenantId: Type.String(),
  status: Type.Union([Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed')]),
  scope: ReconciliationScopeSchema,
  startedAt: Type.String(),
  completedAt: Nullable(Type.String()),
  summary: Nullable(ReconciliationSummarySchema),
  error: Nullable(Type.String()),
  items: Type.Array(ReconciliationItemSchema),
});
/** A run still going after the synchronous wait (or one whose record was lost): follow `Location`. */
const RunAccepted = Type.Object({
  runId: Type.String(),
  status: Type.Union([Type.Literal('running'), Type.Literal('failed')]),
});

/** Only finance admins reconcile. */
const FINANCE_ADMIN: Policy = [{ role: 'finance_admin' }];

/**
 * `POST /reconciliation/runs` (finance admin) and `GET /reconciliation/runs/{id}`, a route module of
 * the /v1 context (pass it in AppDeps.routes). The POST books unbooked Stripe fees, so it is a money
 * route like every other: an Idempotency-Key is required, the run id derives from it, and a retried
 * POST is answered with the first response (or, once that record is gone, with the run it started).
 */
export function reconciliationRoutes(options: ReconciliationRoutesOptions): RouteModule {
  const syncWaitMs = options.syncWaitMs ?? 10_000;
  const maxConcurrent = options.maxConcurrentRuns ?? 2;
  const maxWindowMs = (options.maxWindowDays ?? 92) * 86_400_000;
  let running = 0;

  async function load(tenantId: string, runId: string, maxItems: number): Promise<ReconciliationRun | null> {
    return options.readModel
      ? options.readModel.get(tenantId, runId, { maxItems })
      : loadRunFromEvents(options.store, tenantId, runId, { maxItems });
  }

  return async (app, { kit }) => {
    app.post(
      '/reconciliation/runs',
      {
        schema: {
          body: RunBody,
          headers: IdempotencyHeaders,
          summary: 'Reconcile the ledger with Stripe (a time window or one payout)',
          description:
            'Matches Stripe balance transactions against the ledger and books unbooked Stripe fees. 201: the run finished within the wait; 200: this key already ran (the run); 202: still running, follow Location.',
          tags: ['reconciliation'],
          response: {
            200: RunSchema,
            201: RunSchema,
            202: RunAccepted,
            ...errorResponses(409, 413, 422),
          },
        },
        config: { policy: FINANCE_ADMIN, money: true },
      },
      async (request, reply) => {
        const principal = kit.principal(request);
        const body = request.body as Body;
        let scope: { from: Date; to: Date } | { payout: string; connectedAccountId?: string };
        if ('from' in body) {
          const from = instantParam(body.from, 'body/from');
          const to = instantParam(body.to, 'body/to');
          if (!(from < to) || to.getTime() - from.getTime() > maxWindowMs) {
            throw new ApiError(
              'validation_failed',
              `from must be before to, and the window at most ${maxWindowMs / 86_400_000} days`,
            );
          }
          scope = { from, to };
        } else {
          scope = body.connectedAccountId
            ? { payout: body.payout, connectedAccountId: body.connectedAccountId }
            : { payout: body.payout };
        }
        // Claimed by the idempotentRequests plugin before the handler runs (money routes require it).
        const key = request.idempotency?.key;
        if (!key) throw new Error('a money route runs only with a claimed Idempotency-Key');
        const runId = deterministicId('reconciliation-run', principal.tenantId, principal.sub, key);
        const existing = await load(principal.tenantId, runId, 1_000);
        if (existing) return reply.code(200).send(existing);
        if (running >= maxConcurrent) {
          throw new ApiError('unavailable', `${maxConcurrent} reconciliation runs are already running`, {
            retryAfterSeconds: 30,
          });
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
        if (!run) {
          // The run failed before it was recorded (Stripe or the store unreachable): try again later.
          throw new ApiError('unavailable', `reconciliation run ${runId} failed before it was recorded`, {
            retryAfterSeconds: 30,
          });
        }
        return reply.code(201).send({ ...run, items: run.items.slice(0, 1_000) });
      },
    );

    app.get(
      '/reconciliation/runs',
      {
        schema: {
          querystring: ListQuery,
          summary: 'Reconciliation runs, newest first (paged; items of a run: GET /reconciliation/runs/{id})',
          tags: ['reconciliation'],
          response: {
            200: Type.Object(
              {
                runs: Type.Array(Type.Omit(RunSchema, ['items'])),
                nextCursor: Nullable(Type.String()),
              },
              { additionalProperties: false },
            ),
            ...errorResponses(),
          },
        },
        config: { policy: FINANCE_ADMIN },
      },
      async (request) => {
        const tenantId = kit.principal(request).tenantId;
        const query = request.query as { limit?: string; cursor?: string };
        const limit = query.limit === undefined ? 20 : Number(query.limit);
        const page: RunPageRequest = {
          limit: limit + 1,
          ...(query.cursor !== undefined ? { before: decodeCursor(query.cursor) } : {}),
        };
        const found = options.readModel
          ? await options.readModel.list(tenantId, page)
          : await listRunsFromEvents(options.store, tenantId, page);
        const runs = found.slice(0, limit).map(({ items: _items, ...run }) => run);
        const last = runs[runs.length - 1];
        return { runs, nextCursor: found.length > limit && last ? encodeCursor(last) : null };
      },
    );

    app.get(
      '/reconciliation/runs/:id',
      {
        schema: {
          params: RunParams,
          querystring: RunQuery,
          summary: 'A reconciliation run with its exceptions',
          description: 'JSON (the run), or its items as CSV with format=csv.',
          tags: ['reconciliation'],
          response: {
            200: {
              content: {
                'application/json': { schema: RunSchema },
                'text/csv': { schema: Type.String() },
              },
            },
            ...errorResponses(),
          },
        },
        config: { policy: FINANCE_ADMIN },
      },
      async (request, reply) => {
        const principal = kit.principal(request);
        const { id } = request.params as { id: string };
        const query = request.query as { format?: 'json' | 'csv'; limit?: string };
        const run = await load(
          principal.tenantId,
          id,
          query.limit === undefined ? 1_000 : Number(query.limit),
        );
        if (!run) throw new ApiError('not_found', `no reconciliation run ${id}`);
        if (query.format === 'csv')
          return reply.code(200).type('text/csv; charset=utf-8').send(reportCsv(run));
        return reply.code(200).send(run);
      },
    );
  };
}
