import type { Registry } from 'prom-client';
import { billingSettingsRoutes } from './api/routes/billingSettings.js';
import { documentRoutes } from './api/routes/documents.js';
import { statementRoutes } from './api/routes/statements.js';
import type { RouteModule } from './api/v1/routeKit.js';
import type { ChainStore } from './chain/chainStore.js';
import { BillingSettingsService } from './commands/billingSettings.js';
import type { CheckpointStore } from './commands/checkpointStore.js';
import type { CommandHandler } from './commands/commandHandler.js';
import { type Logger, silentLogger } from './commands/logger.js';
import type { ProcessManagerHandle } from './commands/processManagerRunner.js';
import type { Database } from './db/database.js';
import { startDocumentIssuer } from './documents/issuer.js';
import {
  type MonthlyCommissionHandle,
  MonthlyCommissionInvoicing,
  startMonthlyCommissionInvoicing,
} from './documents/monthlyCommission.js';
import { DocumentStore } from './documents/store.js';
import type { EventStore } from './eventstore/port.js';
import { BalancesAsOfQueries } from './projections/balancesAsOf.js';
import { TutorStatementQueries } from './projections/tutorStatements.js';

/**
 * Documents, wired: the route module for the /v1 context and the issuer, a checkpointed consumer of
 * the log (src/documents/issuer.ts). src/server.ts and the tests build them the same way.
 */
export interface DocumentsFeatureOptions {
  db: Database;
  store: EventStore;
  handler: CommandHandler;
  checkpoints: CheckpointStore;
  clock?: () => Date;
  logger?: Logger;
  registry?: Registry;
  /** The tenants' hash chains, for the chain head the closing-balances CSV ends with. */
  chain?: ChainStore;
  /** How often the month-end commission invoicing looks for due months (monthlyCommission.ts); off when absent. */
  monthlyIntervalMs?: number;
}

export interface DocumentsFeature {
  routes: RouteModule[];
  documents: DocumentStore;
  billing: BillingSettingsService;
  start(): void;
  issuer(): ProcessManagerHandle | undefined;
  monthly: MonthlyCommissionInvoicing;
  stop(): Promise<void>;
}

export function createDocumentsFeature(options: DocumentsFeatureOptions): DocumentsFeature {
  const documents = new DocumentStore(options.db);
  const clock = options.clock ?? (() => new Date());
  const billing = new BillingSettingsService(options.handler, clock);
  let issuer: ProcessManagerHandle | undefined;
  const monthly = new MonthlyCommissionInvoicing({
    store: options.store,
    handler: options.handler,
    documents,
    clock,
    logger: options.logger ?? silentLogger,
  });
  let monthlyTimer: MonthlyCommissionHandle | undefined;
  return {
    routes: [
      documentRoutes({ documents }),
      billingSettingsRoutes({ billing }),
      statementRoutes({
        statements: new TutorStatementQueries(options.db),
        balances: new BalancesAsOfQueries(options.db),
        billing,
        clock,
        ...(options.chain ? { chain: options.chain } : {}),
      }),
    ],
    documents,
    billing,
    start() {
      issuer ??= startDocumentIssuer({
        store: options.store,
        checkpoints: options.checkpoints,
        handler: options.handler,
        documents,
        settings: async (tenantId) => {
          const b = await billing.get(tenantId);
          return { legalName: b.legalName, address: b.address, taxId: b.taxId, locale: b.locale };
        },
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.registry ? { registry: options.registry } : {}),
      });
      if (options.monthlyIntervalMs !== undefined) {
        monthlyTimer ??= startMonthlyCommissionInvoicing(monthly, {
          intervalMs: options.monthlyIntervalMs,
          logger: options.logger ?? silentLogger,
        });
      }
    },
    issuer: () => issuer,
    monthly,
    async stop() {
      await Promise.all([issuer?.stop(), monthlyTimer?.stop()]);
    },
  };
}
