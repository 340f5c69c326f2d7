import type { RouteModule } from '../../src/api/v1/routeKit.js';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import { CommandHandler } from '../../src/commands/commandHandler.js';
import type { EventStore } from '../../src/eventstore/port.js';
import { createWebhooksAndMonitors } from '../../src/webhooksAndMonitors.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { WEBHOOK_SECRET_KEY } from './support.js';

/**
 * The webhook and balance monitor routes for the shell harness (role matrix, fuzz): the real command
 * path over the harness's store and a fresh database for the delivery log and monitor list. No
 * background loops run (nothing is delivered or evaluated).
 */
export function webhookShellFeatures(): {
  routes: (store: EventStore) => Promise<RouteModule[]>;
  /** The database routes() made (other shell features share it: one PGlite start-up per file). */
  database(): TestDatabase | undefined;
  close(): Promise<void>;
} {
  let db: TestDatabase | undefined;
  return {
    async routes(store) {
      db = await createTestDatabase();
      const features = createWebhooksAndMonitors({
        db: db.db,
        store,
        handler: new CommandHandler({ store, clock: () => new Date() }),
        checkpoints: new MemoryCheckpointStore(),
        balances: { waitForPosition: async () => true, balancesAt: async () => [] },
        clock: () => new Date(),
        secretKey: WEBHOOK_SECRET_KEY,
        allowedNetworks: ['127.0.0.1/32'],
      });
      return features.routes;
    },
    database: () => db,
    async close() {
      await db?.dispose();
    },
  };
}
