import pino from 'pino';
import { type AppDeps, buildApp, type LedgerApp } from '../../../src/api/app.js';
import { type Role, signToken } from '../../../src/api/auth.js';
import type { IdempotencyStore } from '../../../src/api/idempotency.js';
import { createMetrics } from '../../../src/api/metrics.js';
import { MemoryRateLimiter, type RateLimiter, type RateLimitPolicy } from '../../../src/api/rateLimit.js';
import { financeRoutes } from '../../../src/api/routes/finance.js';
import { promoCodeRoutes } from '../../../src/api/routes/promoCodes.js';
import { reconciliationRoutes } from '../../../src/api/routes/reconciliation.js';
import { referralRoutes } from '../../../src/api/routes/referrals.js';
import { subscriptionRoutes } from '../../../src/api/routes/subscriptions.js';
import type { RouteModule } from '../../../src/api/v1/routeKit.js';
import { AdjustmentProposals } from '../../../src/commands/adjustmentProposals.js';
import { createLedgerService } from '../../../src/commands/ledgerService.js';
import { PromoCodes } from '../../../src/commands/promoCodes.js';
import { MemoryEventStore } from '../../../src/eventstore/memory.js';
import type { EventStore } from '../../../src/eventstore/port.js';
import { eventStoreFactSource } from '../../../src/reconciliation/ledgerFacts.js';
import { Reconciler } from '../../../src/reconciliation/reconciler.js';
import type { StripeBalanceSource } from '../../../src/stripe/gateway.js';
import { emptyConsoleQueries } from './emptyConsoleQueries.js';
import { FakeLedger } from './fakeLedger.js';
import { MemoryIdempotencyStore } from './memoryIdempotencyStore.js';

export const JWT_SECRET = 'test-secret-0123456789abcdef';

/** Generous limits so only the rate-limit tests ever see a 429. */
export const LOOSE_LIMITS: RateLimitPolicy = {
  default: { limit: 1_000_000, windowMs: 60_000 },
  money: { limit: 1_000_000, windowMs: 60_000 },
};

export function token(
  tenant: string,
  sub: string,
  roles: Role | Role[],
  options: { ttlSeconds?: number; secret?: string; issuedAt?: number | null; notBefore?: number } = {},
): Promise<string> {
  return signToken({
    tenant,
    sub,
    roles: Array.isArray(roles) ? roles : [roles],
    secret: options.secret ?? JWT_SECRET,
    ttlSeconds: options.ttlSeconds ?? 600,
    ...(options.issuedAt !== undefined ? { issuedAt: options.issuedAt } : {}),
    ...(options.notBefore !== undefined ? { notBefore: options.notBefore } : {}),
  });
}

export interface ShellHarness {
  app: LedgerApp;
  fake: FakeLedger;
  store: EventStore;
  idempotency: IdempotencyStore;
  close(): Promise<void>;
}

/** A Stripe account with no balance transactions: reconciliation runs complete with nothing to match. */
const EMPTY_STRIPE: StripeBalanceSource = {
  listBalanceTransactions: () => ({
    [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true as const, value: undefined }) }),
  }),
  retrieveBalance: async () => ({ available: [], pending: [] }),
};

/**
 * The API over the fake ledger and a memory event store, with the reconciliation routes in /v1 as the
 * server wires them; the idempotency store is the given one or an in-memory double (no database:
 * PGlite start-up is the slowest part of a test file).
 */
export async function shellHarness(
  overrides: Partial<AppDeps> = {},
  extra: { routes?: (store: EventStore) => Promise<RouteModule[]> } = {},
): Promise<ShellHarness> {
  const fake = new FakeLedger();
  // The fake's commands stand for appends: the store's head follows the fake's positions.
  const memory = overrides.store ?? new MemoryEventStore();
  const store: EventStore = new Proxy(memory, {
    get(target, property, receiver) {
      if (property === 'headPosition') {
        return async () => {
          const head = await target.headPosition();
          // bigint: Math.max does not apply.
          if (head > fake.position) return head;
          return fake.position;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const idempotency = overrides.idempotency ?? new MemoryIdempotencyStore();
  const rateLimiter: RateLimiter = overrides.rateLimiter ?? new MemoryRateLimiter({ maxKeys: 10_000 });
  const extraRoutes = extra.routes ? await extra.routes(store) : [];
  // Proposals and subscriptions over the memory store: the real write side, for the matrix and the fuzz.
  const writeSide = createLedgerService({ store, clock: () => new Date() });
  const app = buildApp({
    commands: fake.commands,
    queries: fake.queries,
    store,
    auth: { jwtSecret: JWT_SECRET },
    idempotency,
    rateLimiter,
    readiness: [],
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    metrics: createMetrics(),
    rateLimits: LOOSE_LIMITS,
    docsUi: false,
    routes: [
      reconciliationRoutes({
        reconciler: new Reconciler({
          stripe: EMPTY_STRIPE,
          ledger: () => eventStoreFactSource(store),
          store,
          clock: () => new Date(),
        }),
        store,
      }),
      financeRoutes({
        queries: emptyConsoleQueries,
        store,
        // Proposals over the memory store: the real write side, for the matrix and the fuzz.
        proposals: new AdjustmentProposals(writeSide, () => new Date()),
      }),
      // Promo codes over the memory store: the real write side, for the matrix and the fuzz.
      promoCodeRoutes({
        promoCodes: new PromoCodes(
          createLedgerService({ store, clock: () => new Date() }).handler,
          () => new Date(),
        ),
      }),
      subscriptionRoutes({ subscriptions: writeSide.subscriptions }),
      referralRoutes({ referrals: writeSide.referrals }),
      ...extraRoutes,
    ],
    ...overrides,
  });
  await app.ready();
  return {
    app,
    fake,
    store,
    idempotency,
    async close() {
      await app.close();
    },
  };
}
