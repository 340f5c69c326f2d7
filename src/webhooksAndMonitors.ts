import type { Registry } from 'prom-client';
import { ApiError } from './api/problem.js';
import { balanceMonitorRoutes } from './api/routes/balanceMonitors.js';
import { webhookRoutes } from './api/routes/webhooks.js';
import type { RouteModule } from './api/v1/routeKit.js';
import type { CheckpointStore } from './commands/checkpointStore.js';
import type { CommandHandler } from './commands/commandHandler.js';
import type { Logger } from './commands/logger.js';
import type { ProcessManagerHandle } from './commands/processManagerRunner.js';
import type { Database } from './db/database.js';
import type { EventStore } from './eventstore/port.js';
import { BalanceMonitors } from './monitors/balanceMonitors.js';
import { type BalanceAtPosition, startBalanceMonitorEvaluator } from './monitors/evaluator.js';
import { MonitorStore } from './monitors/monitorStore.js';
import { createAddressPolicy, type Resolver } from './webhooks/addressPolicy.js';
import { DeliveryStore } from './webhooks/deliveryStore.js';
import { type DispatcherOptions, WebhookDispatcher } from './webhooks/dispatcher.js';
import { WebhookEndpoints } from './webhooks/endpoints.js';
import { startWebhookFanout } from './webhooks/fanout.js';
import { createHttpSender, type WebhookSender } from './webhooks/httpSender.js';
import { createWebhookSecrets } from './webhooks/secrets.js';
import { webhookMetrics } from './webhooks/webhookMetrics.js';

/**
 * Outbound webhooks and balance monitors, wired: their route modules for the /v1 context, and the
 * three background loops (the fan-out and the monitor evaluator, both checkpointed consumers of the
 * log, and the delivery dispatcher). src/server.ts and the tests build them the same way.
 */
export interface WebhooksAndMonitorsOptions {
  db: Database;
  store: EventStore;
  handler: CommandHandler;
  checkpoints: CheckpointStore;
  balances: BalanceAtPosition;
  clock: () => Date;
  /** null: no webhook secret key configured; endpoint routes refuse with a clear problem. */
  secretKey: string | null;
  allowedNetworks: readonly string[];
  registry?: Registry;
  logger?: Logger;
  resolver?: Resolver;
  /** The HTTP client (tests may pass one bound to a fake clock); built from the policy otherwise. */
  sender?: WebhookSender;
  timeoutMs?: number;
  dispatcher?: Partial<
    Pick<
      DispatcherOptions,
      'retryWindowMs' | 'baseDelayMs' | 'maxDelayMs' | 'retentionMs' | 'pollIntervalMs' | 'random' | 'lock'
    >
  >;
}

export interface WebhooksAndMonitors {
  routes: RouteModule[];
  endpoints: WebhookEndpoints | null;
  monitors: BalanceMonitors;
  deliveries: DeliveryStore;
  dispatcher: WebhookDispatcher | null;
  /** Starts the fan-out, the evaluator and the dispatcher. */
  start(): void;
  fanout(): ProcessManagerHandle | undefined;
  evaluator(): ProcessManagerHandle | undefined;
  stop(): Promise<void>;
}

export function createWebhooksAndMonitors(options: WebhooksAndMonitorsOptions): WebhooksAndMonitors {
  const policy = createAddressPolicy(options.allowedNetworks);
  const deliveries = new DeliveryStore(options.db);
  const monitorStore = new MonitorStore(options.db);
  const metrics = options.registry ? webhookMetrics(options.registry) : undefined;
  const monitors = new BalanceMonitors({
    handler: options.handler,
    events: options.store,
    store: monitorStore,
    clock: options.clock,
  });
  const sender =
    options.sender ??
    createHttpSender({
      policy,
      ...(options.resolver ? { resolver: options.resolver } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    });
  const endpoints = options.secretKey
    ? new WebhookEndpoints({
        handler: options.handler,
        clock: options.clock,
        policy,
        secrets: createWebhookSecrets(options.secretKey),
        ...(options.resolver ? { resolver: options.resolver } : {}),
      })
    : null;
  const dispatcher = endpoints
    ? new WebhookDispatcher({
        db: options.db,
        deliveries,
        endpoints,
        sender,
        clock: options.clock,
        ...(metrics ? { metrics } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        ...options.dispatcher,
      })
    : null;
  const routes: RouteModule[] = [balanceMonitorRoutes({ monitors })];
  routes.push(
    endpoints && dispatcher
      ? webhookRoutes({
          endpoints,
          deliveries,
          retry: (tenantId, endpointId, deliveryId) => dispatcher.retry(tenantId, endpointId, deliveryId),
        })
      : unconfiguredWebhookRoutes,
  );

  let fanout: ProcessManagerHandle | undefined;
  let evaluator: ProcessManagerHandle | undefined;
  return {
    routes,
    endpoints,
    monitors,
    deliveries,
    dispatcher,
    start() {
      evaluator ??= startBalanceMonitorEvaluator({
        store: options.store,
        checkpoints: options.checkpoints,
        handler: options.handler,
        monitors: monitorStore,
        balances: options.balances,
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.registry ? { registry: options.registry } : {}),
      });
      if (!dispatcher) return;
      fanout ??= startWebhookFanout({
        store: options.store,
        checkpoints: options.checkpoints,
        deliveries,
        clock: options.clock,
        onEnqueued: () => dispatcher.wake(),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.registry ? { registry: options.registry } : {}),
      });
      dispatcher.start();
    },
    fanout: () => fanout,
    evaluator: () => evaluator,
    async stop() {
      await Promise.all([fanout?.stop(), evaluator?.stop(), dispatcher?.stop()]);
      await sender.close();
    },
  };
}

/** Without WEBHOOK_SECRET_KEY there is nothing to sign with: the endpoint routes say so. */
const unconfiguredWebhookRoutes: RouteModule = async (app) => {
  app.all(
    '/webhook-endpoints*',
    { schema: { hide: true }, config: { policy: [{ role: 'tenant_admin' }, { role: 'finance_admin' }] } },
    async () => {
      throw new ApiError(
        'unavailable',
        'outbound webhooks are not configured: the operator sets WEBHOOK_SECRET_KEY',
      );
    },
  );
};
