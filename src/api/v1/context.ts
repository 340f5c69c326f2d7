import type { FastifyPluginAsync } from 'fastify';
import type { LedgerCommands } from '../../commands/ledgerCommands.js';
import type { EventStore } from '../../eventstore/port.js';
import type { LedgerQueries } from '../../projections/ledgerQueries.js';
import type { Authenticator } from '../auth.js';
import type { IdempotencyStore } from '../idempotency.js';
import type { Metrics } from '../metrics.js';
import type { RateLimiter, RateLimitPolicy } from '../rateLimit.js';
import { ledgerRoutes } from '../routes/ledger.js';
import { moneyRoutes } from '../routes/money.js';
import { payoutAccountRoutes } from '../routes/payoutAccounts.js';
import { periodRoutes } from '../routes/periods.js';
import { authentication } from './authentication.js';
import { authorization } from './authorization.js';
import { idempotentRequests } from './idempotentRequests.js';
import { rateLimiting } from './rateLimiting.js';
import { readYourWrites } from './readYourWrites.js';
import { createRouteKit, type RouteModule } from './routeKit.js';

export interface V1ContextOptions {
  commands: LedgerCommands;
  queries: LedgerQueries;
  store: EventStore;
  authenticator: Authenticator;
  idempotency: IdempotencyStore;
  rateLimiter: RateLimiter;
  rateLimits: RateLimitPolicy;
  metrics: Metrics;
  consistencyWaitMs: number;
  /** Route modules with dependencies of their own (AppDeps.routes), after ROUTE_MODULES. */
  routes: readonly RouteModule[];
}

/** The route modules that need nothing but the kit. */
const ROUTE_MODULES: readonly RouteModule[] = [moneyRoutes, ledgerRoutes, payoutAccountRoutes, periodRoutes];

/**
 * The /v1 API as one encapsulated fastify context. Its concerns are plugins (fastify-plugin: their hooks
 * apply to every route of this context and to nothing outside it), registered in the order they run:
 *
 *   onRequest   authentication -> rate limiting          (before the body is parsed)
 *   preHandler  authorization -> read-your-writes (GET) -> idempotent requests (money routes)
 *   onSend      idempotent requests (records the response of a claimed key)
 *
 * then the route modules (routeKit.ts says how to add one). Nothing here answers an error itself: every
 * concern and route throws, and the root's error handler (app.ts) replies with problem+json.
 */
export const v1Context: FastifyPluginAsync<V1ContextOptions> = async (app, options) => {
  await app.register(authentication, { authenticator: options.authenticator });
  await app.register(rateLimiting, {
    rateLimiter: options.rateLimiter,
    rateLimits: options.rateLimits,
    metrics: options.metrics,
  });
  await app.register(authorization, { queries: options.queries, store: options.store });
  await app.register(readYourWrites, {
    queries: options.queries,
    store: options.store,
    consistencyWaitMs: options.consistencyWaitMs,
  });
  await app.register(idempotentRequests, { idempotency: options.idempotency });

  const kit = createRouteKit(options);
  for (const routes of [...ROUTE_MODULES, ...options.routes]) await app.register(routes, { kit });
};
