import type { Redis } from 'ioredis';
import { buildApp, type ReadinessCheck } from './api/app.js';
import { type IdempotencyStore, PostgresIdempotencyStore } from './api/idempotency.js';
import { createMetrics, withAppendMetrics, withGatewayMetrics } from './api/metrics.js';
import { MemoryRateLimiter, type RateLimiter } from './api/rateLimit.js';
import { financeRoutes } from './api/routes/finance.js';
import { promoCodeRoutes } from './api/routes/promoCodes.js';
import { reconciliationRoutes } from './api/routes/reconciliation.js';
import { referralRoutes } from './api/routes/referrals.js';
import { STRIPE_WEBHOOK_PATHS, stripeWebhookRoutes } from './api/routes/stripeWebhook.js';
import { subscriptionRoutes } from './api/routes/subscriptions.js';
import { closeGracefully } from './api/shutdown.js';
import { createChainFeature } from './chainFeature.js';
import { AccountVolumeGuard } from './commands/accountVolumeGuard.js';
import { AdjustmentProposals } from './commands/adjustmentProposals.js';
import {
  createLedgerService,
  PostgresCheckpointStore,
  startProcessManagers,
  startScheduler,
} from './commands/index.js';
import { PromoCodes } from './commands/promoCodes.js';
import { type Config, describeFsError } from './config/config.js';
import { openDatabase } from './db/database.js';
import { acquireDataDirLock, DataDirBusyError, type DataDirLock } from './db/dataDirLock.js';
import { migrateLatest } from './db/migrate.js';
import { createDocumentsFeature } from './documentsFeature.js';
import { EsdbEventStore } from './eventstore/esdb.js';
import type { EventStore } from './eventstore/port.js';
import { PostgresEventStore } from './eventstore/postgres.js';
import { PostgresSnapshotStore } from './eventstore/snapshots.js';
import { drainBudgetMs } from './lifecycle.js';
import type { Logger } from './log/logger.js';
import { balancesFromQueries } from './monitors/evaluator.js';
import { readModelAccountVolumes } from './projections/accountVolumes.js';
import { PostgresConsoleQueries } from './projections/consoleQueries.js';
import { clearingAccountsNotZero, latestReconciliations } from './projections/operationalGauges.js';
import { PostgresLedgerQueries } from './projections/postgresLedgerQueries.js';
import { ProjectionRunner } from './projections/projectionRunner.js';
import { DailyReconciliation, startDailyReconciliation } from './reconciliation/dailyRuns.js';
import { eventStoreFactSource } from './reconciliation/ledgerFacts.js';
import { PostgresReconciliationReadModel } from './reconciliation/readModel.js';
import { Reconciler } from './reconciliation/reconciler.js';
import { createRedisClient, redisReadiness } from './redis/redis.js';
import { RedisIdempotencyStore } from './redis/redisIdempotencyStore.js';
import { RedisRateLimiter } from './redis/redisRateLimiter.js';
import { FakeStripeServer } from './stripe/fake/server.js';
import type { PaymentsGateway } from './stripe/gateway.js';
import { StripeGateway } from './stripe/stripeGateway.js';
import { PostgresWebhookDedupeStore } from './stripe/webhookDedupe.js';
import { createWalletControlsFeature } from './walletControlsFeature.js';
import { createWebhooksAndMonitors } from './webhooksAndMonitors.js';

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
  /** The event store the process writes (tests compare its head around a refused request). */
  store: EventStore;
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
export interface StartOptions {
  /** Something the process cannot go on without failed after start (the DATA_DIR lock was lost). */
  onFatal?: (reason: string) => void;
}

export async function startServer(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningServer> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      await fn().catch((error: unknown) => logger.error({ err: error }, 'shutdown step failed'));
    }
  };
  try {
    return await start(config, logger, options, cleanups, cleanup);
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function start(
  config: Config,
  logger: Logger,
  options: StartOptions,
  cleanups: Array<() => Promise<unknown>>,
  cleanup: () => Promise<void>,
): Promise<RunningServer> {
  const clock = () => new Date();
  if (config.databaseUrl === null) {
    // PGlite is one process's database: hold DATA_DIR for the process's life (dataDirLock.ts).
    const lock = lockDataDir(config, options);
    cleanups.push(async () => lock.release());
  }
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

  const started = await startStripe(config);
  const { fake } = started;
  if (fake) cleanups.push(() => fake.stop());
  // One gateway (the same object serves payments and reconciliation), every call counted and timed.
  const stripe = withGatewayMetrics(started.stripe, metrics);
  const gateway: PaymentsGateway = stripe;
  metrics.setStripeCircuitSource(() => started.stripe.breakerState);
  metrics.setOperationalSources({
    clearingNotZero: () => clearingAccountsNotZero(db),
    latestReconciliations: () => latestReconciliations(db),
  });

  // Set once the app listens: the embedded default sends tutors back to its own start page after
  // Stripe's onboarding when the tenant has not set its onboarding URLs (tenant settings).
  let onboardingFallback: { returnUrl: string; refreshUrl: string } | null = null;
  const service = createLedgerService({
    store,
    clock,
    gateway,
    logger,
    ...(fake ? { onboardingFallbackUrls: () => onboardingFallback } : {}),
    handler: {
      // Accounts many streams post to are bounded against the read model's totals (ledgerLimits.ts).
      accountVolumes: new AccountVolumeGuard({ volumes: readModelAccountVolumes(db.knex) }),
      // Snapshots live in the SQL database whichever event store holds the streams (snapshots.ts).
      snapshots: new PostgresSnapshotStore(db),
      onSnapshotError: (error, streamName) =>
        logger.warn(
          { err: error, streamName },
          'aggregate snapshot not read or written (commands unaffected)',
        ),
    },
  });
  metrics.setCommandCacheSource(() => ({ ...service.handler.stats(), ...service.handler.limits() }));

  const runner = new ProjectionRunner({
    db,
    store: rawStore,
    ...(redis ? { redis } : {}),
    onError: (error) => logger.error({ err: error }, 'projection runner error (restarting with backoff)'),
    // Loud, and for one tenant only: the others' read models go on (src/projections/stalls.ts).
    onStall: (stall, error) =>
      logger.error(
        {
          err: error,
          projection: stall.projection,
          tenantId: stall.tenantId,
          position: stall.position.toString(),
          streamName: stall.streamName,
          eventType: stall.eventType,
          eventId: stall.eventId,
          reason: stall.reason,
        },
        `projection ${stall.projection} stalled for tenant ${stall.tenantId} at position ${stall.position} (${stall.eventType} in ${stall.streamName}): its read models stop here until \`npm run cli -- projections resume ${stall.tenantId}\``,
      ),
  });
  runner.start();
  cleanups.push(() => runner.stop());
  metrics.setProjectionLagSource(async () => (await runner.lag()).events);

  // Balances are written only by the runner above (or a rebuild), both of which notify the cache.
  const queries = new PostgresLedgerQueries(db, { balanceCacheEntries: config.balanceCacheEntries });
  metrics.setProjectionStallSource(() => queries.projectionStalls());
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

  const webhooksAndMonitors = createWebhooksAndMonitors({
    db,
    store: rawStore,
    handler: service.handler,
    checkpoints: new PostgresCheckpointStore(db),
    balances: balancesFromQueries(queries),
    clock,
    secretKey: config.webhooks.secretKey,
    allowedNetworks: config.webhooks.allowedNetworks,
    timeoutMs: config.webhooks.timeoutMs,
    dispatcher: {
      retryWindowMs: config.webhooks.retryWindowMs,
      retentionMs: config.webhooks.retentionDays * 86_400_000,
    },
    registry: metrics.registry,
    logger,
  });
  webhooksAndMonitors.start();
  cleanups.push(() => webhooksAndMonitors.stop());

  // The tenants' hash chains, linked from the log by one chainer across processes (src/chain).
  const chain = createChainFeature({ db, store: rawStore, logger, registry: metrics.registry });
  chain.start();
  cleanups.push(() => chain.stop());

  const documents = createDocumentsFeature({
    db,
    store: rawStore,
    handler: service.handler,
    checkpoints: new PostgresCheckpointStore(db),
    logger,
    registry: metrics.registry,
    chain: chain.chain,
    clock,
    // Month-end commission invoices per tutor run on the scheduler's beat (monthlyCommission.ts).
    monthlyIntervalMs: config.schedulerIntervalMs,
  });
  documents.start();
  cleanups.push(() => documents.stop());

  const walletControls = createWalletControlsFeature({ handler: service.handler, clock });

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
  const reconciler = new Reconciler({
    stripe,
    ledger: () => eventStoreFactSource(rawStore),
    store,
    readModel: reconciliationReadModel,
    commands: service,
    clock,
  });
  const reconciliation = reconciliationRoutes({ reconciler, store, readModel: reconciliationReadModel });
  // Tenants that set reconciliationDailyHourUtc get a run of each UTC day (dailyRuns.ts).
  const dailyReconciliation = startDailyReconciliation(
    new DailyReconciliation({
      store: rawStore,
      reconciler,
      runExists: async (tenantId, runId) =>
        (await reconciliationReadModel.get(tenantId, runId, { maxItems: 0 })) !== null,
      clock,
      logger,
    }),
    { intervalMs: config.schedulerIntervalMs, logger },
  );
  cleanups.push(() => dailyReconciliation.stop());

  const app = buildApp({
    commands: service,
    queries,
    store,
    auth: {
      jwtSecret: config.jwtSecret,
      maxTokenLifetimeSeconds: config.jwtMaxLifetimeSeconds,
      clockSkewSeconds: config.jwtClockSkewSeconds,
    },
    idempotency,
    rateLimiter,
    readiness,
    logger,
    metrics,
    bodyLimitBytes: config.bodyLimitBytes,
    rateLimits: {
      default: { limit: config.rateLimitPerMinute.default, windowMs: 60_000 },
      money: { limit: config.rateLimitPerMinute.money, windowMs: 60_000 },
    },
    routes: [
      reconciliation,
      financeRoutes({
        queries: new PostgresConsoleQueries(db),
        store,
        chain: chain.chain,
        proposals: new AdjustmentProposals(service, clock),
        clock,
      }),
      stripeWebhookRoutes({
        commands: service,
        secrets: { platform: config.stripe.webhookSecret, connect: config.stripe.connectWebhookSecret },
        dedupe: new PostgresWebhookDedupeStore(db),
        logger,
        // Current PaymentIntent and account states for late or sparse events (webhookHandler.ts).
        lookup: stripe,
      }),
      promoCodeRoutes({ promoCodes: new PromoCodes(service.handler, clock) }),
      ...webhooksAndMonitors.routes,
      ...documents.routes,
      ...walletControls.routes,
      ...chain.routes,
      subscriptionRoutes({ subscriptions: service.subscriptions }),
      referralRoutes({ referrals: service.referrals }),
    ],
  });
  let appClosed = false;
  cleanups.push(async () => {
    if (!appClosed) await app.close();
  });
  const address = await app.listen({ host: config.host, port: config.port }).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    const where = `${config.host}:${config.port}`;
    if (code === 'EADDRINUSE') {
      throw new StartupError('PORT', `${where} is already in use by another process: stop it, or set PORT`, {
        cause: error,
      });
    }
    if (code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new StartupError('HOST/PORT', `cannot listen on ${where} (${code})`, { cause: error });
    }
    throw error;
  });
  const url = address.replace('[::1]', 'localhost');
  if (fake) {
    onboardingFallback = { returnUrl: `${url}/`, refreshUrl: `${url}/` };
    // The fake sends the platform's events and connected accounts' events to their own endpoints,
    // each signed with that endpoint's secret, as Stripe does.
    fake.webhooks.setTarget({
      url: `${url}/v1${STRIPE_WEBHOOK_PATHS.platform}`,
      secret: config.stripe.webhookSecret,
    });
    fake.webhooks.setConnectTarget({
      url: `${url}/v1${STRIPE_WEBHOOK_PATHS.connect}`,
      secret: config.stripe.connectWebhookSecret,
    });
  }

  let stopping: Promise<void> | undefined;
  return {
    url,
    app,
    store: rawStore,
    stop() {
      stopping ??= (async () => {
        // HTTP first (no new commands, in-flight ones finish), then the background loops, then stores.
        await closeGracefully(app, { drainTimeoutMs: drainBudgetMs(config.shutdownTimeoutMs) });
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
  // Tutors' accounts start restricted, as on Stripe: POST /v1/tutors/{id}/payout-account returns the
  // fake's onboarding link, which completes onboarding when visited. Card funds are available at once
  // here (as with Stripe's pm_card_bypassPending): payouts would otherwise wait, deferred and retried,
  // for the two days the fake keeps card money pending (docs/ledger-flows.md).
  const fake = new FakeStripeServer({
    autoSettlePayoutsAfterMs: 2_000,
    availableAfterSeconds: 0,
  });
  const { host, port } = await fake.start(0, '127.0.0.1');
  const gateway = new StripeGateway({ apiKey: FAKE_STRIPE_KEY, host, port, protocol: 'http' });
  return { gateway, stripe: gateway, fake };
}

function lockDataDir(config: Config, options: StartOptions): DataDirLock {
  try {
    return acquireDataDirLock(config.dataDir, {
      role: 'app',
      command: 'start',
      onLost: (reason) => options.onFatal?.(`lost the lock on ${config.dataDir}: ${reason}`),
    });
  } catch (error) {
    if (error instanceof DataDirBusyError)
      throw new StartupError('DATA_DIR', error.message, { cause: error });
    throw new StartupError('DATA_DIR', `${config.dataDir} is not usable: ${describeFsError(error)}`, {
      cause: error,
    });
  }
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
