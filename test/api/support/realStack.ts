import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { buildApp, type LedgerApp } from '../../../src/api/app.js';
import { type IdempotencyStore, PostgresIdempotencyStore } from '../../../src/api/idempotency.js';
import { createMetrics, withAppendMetrics } from '../../../src/api/metrics.js';
import { MemoryRateLimiter, type RateLimiter } from '../../../src/api/rateLimit.js';
import { financeRoutes } from '../../../src/api/routes/finance.js';
import { promoCodeRoutes } from '../../../src/api/routes/promoCodes.js';
import { reconciliationRoutes } from '../../../src/api/routes/reconciliation.js';
import { stripeWebhookRoutes } from '../../../src/api/routes/stripeWebhook.js';
import type { RouteModule } from '../../../src/api/v1/routeKit.js';
import { ChainStore } from '../../../src/chain/chainStore.js';
import { AccountVolumeGuard } from '../../../src/commands/accountVolumeGuard.js';
import { AdjustmentProposals } from '../../../src/commands/adjustmentProposals.js';
import type { CommandContext } from '../../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../../src/commands/ledgerService.js';
import { PromoCodes } from '../../../src/commands/promoCodes.js';
import type { EventStore, RecordedEvent } from '../../../src/eventstore/port.js';
import { PostgresEventStore } from '../../../src/eventstore/postgres.js';
import { readModelAccountVolumes } from '../../../src/projections/accountVolumes.js';
import { PostgresConsoleQueries } from '../../../src/projections/consoleQueries.js';
import { PostgresLedgerQueries } from '../../../src/projections/postgresLedgerQueries.js';
import { ProjectionRunner } from '../../../src/projections/projectionRunner.js';
import { eventStoreFactSource } from '../../../src/reconciliation/ledgerFacts.js';
import { PostgresReconciliationReadModel } from '../../../src/reconciliation/readModel.js';
import { Reconciler } from '../../../src/reconciliation/reconciler.js';
import { createRedisClient, redisReadiness } from '../../../src/redis/redis.js';
import { RedisIdempotencyStore } from '../../../src/redis/redisIdempotencyStore.js';
import { RedisRateLimiter } from '../../../src/redis/redisRateLimiter.js';
import type { StripeBalanceSource } from '../../../src/stripe/gateway.js';
import { MemoryWebhookDedupeStore } from '../../../src/stripe/webhookDedupe.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { JWT_SECRET, LOOSE_LIMITS } from './harness.js';

export const WEBHOOK_SECRET = 'whsec_api_e2e_secret';
export const CONNECT_WEBHOOK_SECRET = 'whsec_api_e2e_connect_secret';

/** A Stripe account with no balance transactions: reconciliation runs complete with nothing to match. */
const EMPTY_STRIPE: StripeBalanceSource = {
  listBalanceTransactions: () => ({
    [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true as const, value: undefined }) }),
  }),
  retrieveBalance: async () => ({ available: [], pending: [] }),
};

export interface RealStack {
  app: LedgerApp;
  /** http://127.0.0.1:<port> */
  baseUrl: string;
  service: LedgerService;
  store: EventStore;
  queries: PostgresLedgerQueries;
  db: TestDatabase;
  redis: boolean;
  ctx(tenantId: string, key: string, role?: string): CommandContext;
  events(): Promise<RecordedEvent[]>;
  close(): Promise<void>;
}

/**
 * The whole thing as it runs in production, listening on a loopback port: Postgres event store and read
 * models (PGlite without DATABASE_URL), the real command layer, the projection runner, and Redis for
 * idempotency and rate limits when REDIS_URL is set (Postgres idempotency store otherwise).
 */
export interface RealStackParts {
  db: TestDatabase;
  store: EventStore;
  service: LedgerService;
  queries: PostgresLedgerQueries;
  registry: import('prom-client').Registry;
}

/** Route modules (and their background work) a test adds to the stack, built from its parts. */
export interface StackFeatures {
  routes: RouteModule[];
  close(): Promise<void>;
}

export async function startRealStack(
  options: { features?: (parts: RealStackParts) => StackFeatures } = {},
): Promise<RealStack> {
  const db = await createTestDatabase();
  const metrics = createMetrics();
  const store = withAppendMetrics(new PostgresEventStore(db.db), metrics);
  // As in src/server.ts: accounts many streams post to are bounded against the read model.
  const service = createLedgerService({
    store,
    clock: () => new Date(),
    handler: { accountVolumes: new AccountVolumeGuard({ volumes: readModelAccountVolumes(db.db.knex) }) },
  });
  // As in src/server.ts: balances cached in memory, dropped by the runner's change notifications.
  const queries = new PostgresLedgerQueries(db.db, { balanceCacheEntries: 10_000 });
  metrics.setBalanceCacheSource(() => queries.balanceCacheStats());
  metrics.setProjectionStallSource(() => queries.projectionStalls());
  const runner = new ProjectionRunner({ db: db.db, store });
  runner.start();
  const redisUrl = process.env.REDIS_URL;
  const redis = redisUrl
    ? createRedisClient({ url: redisUrl, keyPrefix: `t${randomBytes(6).toString('hex')}:` })
    : undefined;
  const idempotency: IdempotencyStore = redis
    ? new RedisIdempotencyStore(redis)
    : new PostgresIdempotencyStore(db.db.knex);
  const rateLimiter: RateLimiter = redis
    ? new RedisRateLimiter(redis)
    : new MemoryRateLimiter({ maxKeys: 10_000 });
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  // As in src/server.ts, against a Stripe account with no balance transactions.
  const reconciliationReadModel = new PostgresReconciliationReadModel(db.db);
  const reconciliation = reconciliationRoutes({
    reconciler: new Reconciler({
      stripe: EMPTY_STRIPE,
      ledger: () => eventStoreFactSource(store),
      store,
      readModel: reconciliationReadModel,
      commands: service,
      clock: () => new Date(),
    }),
    store,
    readModel: reconciliationReadModel,
  });
  const features = options.features?.({ db, store, service, queries, registry: metrics.registry });
  const app = buildApp({
    routes: [
      ...(features?.routes ?? []),
      financeRoutes({
        queries: new PostgresConsoleQueries(db.db),
        store,
        chain: new ChainStore(db.db),
        proposals: new AdjustmentProposals(service, () => new Date()),
      }),
      promoCodeRoutes({ promoCodes: new PromoCodes(service.handler, () => new Date()) }),
      reconciliation,
      stripeWebhookRoutes({
        commands: service,
        secrets: { platform: WEBHOOK_SECRET, connect: CONNECT_WEBHOOK_SECRET },
        dedupe: new MemoryWebhookDedupeStore(),
        logger,
      }),
    ],
    commands: service,
    queries,
    store,
    auth: { jwtSecret: JWT_SECRET },
    idempotency,
    rateLimiter,
    readiness: [
      { name: 'eventstore', check: () => store.ping() },
      { name: 'database', check: async () => void (await db.db.knex.raw('select 1')) },
      ...(redis ? [redisReadiness(redis)] : []),
    ],
    logger,
    metrics,
    rateLimits: LOOSE_LIMITS,
    docsUi: false,
  });
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    baseUrl,
    service,
    store,
    queries,
    db,
    redis: Boolean(redis),
    ctx: (tenantId, key, role = 'service') => ({
      tenantId,
      actor: { id: `test-${role}`, role },
      idempotencyKey: key,
      correlationId: key,
      causationId: key,
    }),
    async events() {
      const out: RecordedEvent[] = [];
      let after: bigint | undefined;
      for (;;) {
        const page = await store.readAll({ maxCount: 500, ...(after !== undefined ? { after } : {}) });
        out.push(...page);
        if (page.length < 500) return out;
        after = page.at(-1)!.position;
      }
    },
    async close() {
      await app.close();
      await features?.close();
      await runner.stop();
      await queries.close();
      await store.close();
      await redis?.quit();
      await db.dispose();
    },
  };
}

/** A small fetch client: JSON in and out, bearer token, optional Idempotency-Key. */
export function client(baseUrl: string) {
  return async function call(
    method: string,
    path: string,
    options: { token: string; body?: unknown; key?: string },
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}` };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.key) headers['idempotency-key'] = options.key;
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      headers: res.headers,
    };
  };
}
