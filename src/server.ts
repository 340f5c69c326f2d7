import type { Redis } from 'ioredis';
import { buildApp, type ReadinessCheck } from './api/app.js';
import { type IdempotencyStore, PostgresIdempotencyStore } from './api/idempotency.js';
import { createMetrics, withAppendMetrics } from './api/metrics.js';
import { MemoryRateLimiter, type RateLimiter } from './api/rateLimit.js';
import { closeGracefully } from './api/shutdown.js';
import {
  createLedgerService,
  PostgresCheckpointStore,
  startProcessManagers,
  startScheduler,
} from './commands/index.js';
import type { Config } from './config/config.js';
import { openDatabase } from './db/database.js';
import { migrateLatest } from './db/migrate.js';
import { EsdbEventStore } from './eventstore/esdb.js';
import type { EventStore } from './eventstore/port.js';
import { PostgresEventStore } from './eventstore/postgres.js';
import type { Logger } from './log/logger.js';
import { PostgresLedgerQueries } from './projections/postgresLedgerQueries.js';
import { ProjectionRunner } from './projections/projectionRunner.js';
import { eventStoreFactSource } from './reconciliation/ledgerFacts.js';
import { PostgresReconciliationReadModel } from './reconciliation/readModel.js';
import { Reconciler } from './reconciliation/reconciler.js';
import { reconciliationRoutes } from './reconciliation/routes.js';
import { createRedisClient, redisReadiness } from './redis/redis.js';
import { RedisIdempotencyStore } from './redis/redisIdempotencyStore.js';
import { RedisRateLimiter } from './redis/redisRateLimiter.js';
import { FakeStripeServer } from './stripe/fake/server.js';
import type { PaymentsGateway } from './stripe/gateway.js';
import { StripeGateway } from './stripe/stripeGateway.js';
import { PostgresWebhookDedupeStore } from './stripe/webhookDedupe.js';
import { stripeWebhookRoutes } from './stripe/webhookRoute.js';

/** A dependency that cannot be reached at start: main prints one line naming it and exits non-zero. */
export class StartupError extends Error {
  constructor(
    readonly dependency: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency}: ${problem}`, options);
    this.name = 'StartupError';
  }
}

export interface RunningServer {
  url: string;
  app: ReturnType<typeof buildApp>;
  /** Drains requests, then stops subscriptions and closes stores, in that order. Idempotent. */
  stop(): Promise<void>;
}

const STARTUP_PING_TIMEOUT_MS = 10_000;
const FAKE_STRIPE_KEY = 'sk_test_embedded_fake_stripe';

/**
 * Wires the whole process: database (+ migrations under a lock), event store, Redis when configured,
 * Stripe (the in-process fake unless a key is configured), the ledger service, the projection runner,
 * process managers, the scheduler and the HTTP API. One process runs everything on the embedded
 * default; in production every piece is safe to run in several processes (advisory locks, optimistic
 * concurrency, deterministic ids).
 */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      await fn().catch((error: unknown) => logger.error({ err: error }, 'shutdown step failed'));
    }
  };
  try {
    return await start(config, logger, cleanups, cleanup);
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function start(
  config: Config,
  logger: Logger,
  cleanups: Array<() => Promise<unknown>>,
  cleanup: () => Promise<void>,
): Promise<RunningServer> {
  const clock = () => new Date();
  const db = await openDatabase(
    config.databaseUrl
      ? { kind: 'postgres', url: config.databaseUrl, poolMax: config.databasePoolMax }
      : { kind: 'pglite', dataDir: `${config.dataDir}/pglite` },
  );
  cleanups.push(() => db.close());
  const dbName = config.databaseUrl ? 'DATABASE_URL' : `embedded database (${config.dataDir}/pglite)`;
  await withTimeout(db.knex.raw('select 1'), STARTUP_PING_TIMEOUT_MS).catch((error: unknown) => {
    throw new StartupError(dbName, `unreachable (${describe(error)})`, { cause: error });
  });
  const applied = await migrateLatest(db, { databaseUrl: config.databaseUrl ?? undefined });
  if (applied.length > 0) logger.info({ applied }, 'migrations applied');

  const metrics = createMetrics({ defaultMetrics: true });
  const rawStore: EventStore =
    config.eventStore === 'esdb'
      ? new EsdbEventStore({ connectionString: config.eventStoreUrl! })
      : new PostgresEventStore(db);
  cleanups.push(() => rawStore.close());
  await withTimeout(rawStore.ping(), STARTUP_PING_TIMEOUT_MS).catch((error: unknown) => {
    throw new StartupError(
      config.eventStore === 'esdb' ? 'EVENTSTORE_URL' : dbName,
      `event store unreachable (${describe(error)})`,
      { cause: error },
    );
  });
  const store = withAppendMetrics(rawStore, metrics);

  let redis: Redis | undefined;
  if (config.redisUrl) {
    const client = createRedisClient({ url: config.redisUrl });
    redis = client;
    // Redis holds rate limits and idempotency responses, not money: the app starts without it and
    // /readyz reports it, so a Redis outage during a restart does not keep the ledger down.
    client.connect().catch((error: unknown) => logger.warn({ err: error }, 'redis not reachable yet'));
    client.on('error', (error) => logger.warn({ err: error }, 'redis error'));
    cleanups.push(() => client.quit().catch(() => client.disconnect()));
  }

  const { gateway, fake, stripe } = await startStripe(config);
  if (fake) cleanups.push(() => fake.stop());

  const service = createLedgerService({ store, clock, gateway, logger });

  const runner = new ProjectionRunner({
    db,
    store: rawStore,
    ...(redis ? { redis } : {}),
    onError: (error) => logger.error({ err: error }, 'projection runner error (restarting with backoff)'),
  });
  runner.start();
  cleanups.push(() => runner.stop());
  metrics.setProjectionLagSource(async () => (await runner.lag()).events);

  // Balances are written only by the runner above (or a rebuild), both of which notify the cache.
  const queries = new PostgresLedgerQueries(db, { balanceCacheEntries: config.balanceCacheEntries });
  cleanups.push(() => queries.close());
  if (config.balanceCacheEntries > 0) metrics.setBalanceCacheSource(() => queries.balanceCacheStats());

  const processManagers = startProcessManagers({
    service,
    store: rawStore,
    checkpoints: new PostgresCheckpointStore(db),
    logger,
    registry: metrics.registry,
  });
  cleanups.push(() => processManagers.stop());

  const scheduler = startScheduler({
    runner: service.dueTasks,
    clock,
    intervalMs: config.schedulerIntervalMs,
    logger,
  });
  cleanups.push(() => scheduler.stop());

  const idempotency: IdempotencyStore = redis
    ? new RedisIdempotencyStore(redis)
    : new PostgresIdempotencyStore(db.knex);
  const rateLimiter: RateLimiter = redis
    ? new RedisRateLimiter(redis)
    : new MemoryRateLimiter({ maxKeys: 100_000 });

  const readiness: ReadinessCheck[] = [
    { name: 'database', check: async () => void (await db.knex.raw('select 1')) },
    { name: 'event_store', check: () => rawStore.ping() },
    ...(redis ? [redisReadiness(redis)] : []),
  ];

  const reconciliationReadModel = new PostgresReconciliationReadModel(db);
  const reconciliation = reconciliationRoutes({
    reconciler: new Reconciler({
      stripe,
      ledger: () => eventStoreFactSource(rawStore),
      store,
      readModel: reconciliationReadModel,
      commands: service,
      clock,
    }),
    store,
    readModel: reconciliationReadModel,
  });

  const app = buildApp({
    commands: service,
    queries,
    store,
    auth: { jwtSecret: config.jwtSecret },
    idempotency,
    rateLimiter,
    readiness,
    logger,
    metrics,
    bodyLimitBytes: config.bodyLimitBytes,
    stripeWebhook: stripeWebhookRoutes({
      commands: service,
      webhookSecret: config.stripe.webhookSecret,
      dedupe: new PostgresWebhookDedupeStore(db),
      logger,
    }),
    v1Plugins: [reconciliation],
  });
  let appClosed = false;
  cleanups.push(async () => {
    if (!appClosed) await app.close();
  });
  const address = await app.listen({ host: config.host, port: config.port });
  const url = address.replace('[::1]', 'localhost');
  if (fake)
    fake.webhooks.setTarget({ url: `${url}/v1/webhooks/stripe`, secret: config.stripe.webhookSecret });

  let stopping: Promise<void> | undefined;
  return {
    url,
    app,
    stop() {
      stopping ??= (async () => {
        // HTTP first (no new commands, in-flight ones finish), then the background loops, then stores.
        await closeGracefully(app, { drainTimeoutMs: config.shutdownTimeoutMs });
        appClosed = true;
        await cleanup();
      })();
      return stopping;
    },
  };
}

async function startStripe(
  config: Config,
): Promise<{ gateway: PaymentsGateway; stripe: StripeGateway; fake?: FakeStripeServer }> {
  if (config.stripe.mode === 'remote') {
    const base = config.stripe.apiBase ? new URL(config.stripe.apiBase) : undefined;
    const gateway = new StripeGateway({
      apiKey: config.stripe.secretKey,
      ...(base
        ? {
            host: base.hostname,
            port: Number(base.port || (base.protocol === 'https:' ? 443 : 80)),
            protocol: base.protocol === 'https:' ? ('https' as const) : ('http' as const),
          }
        : {}),
    });
    return { gateway, stripe: gateway };
  }
  // Embedded default: a real HTTP Stripe look-alike in this process; payouts settle a moment later so
  // the whole request -> transfer -> payout.paid webhook path is visible locally.
  const fake = new FakeStripeServer({ autoSettlePayoutsAfterMs: 2_000 });
  const { host, port } = await fake.start(0, '127.0.0.1');
  const gateway = new StripeGateway({ apiKey: FAKE_STRIPE_KEY, host, port, protocol: 'http' });
  return { gateway, stripe: gateway, fake };
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describe(error.errors[0]);
  return error instanceof Error ? error.message : String(error);
}
