import type { RouteModule } from '../../src/api/v1/routeKit.js';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import { CommandHandler } from '../../src/commands/commandHandler.js';
import type { Database } from '../../src/db/database.js';
import { createDocumentsFeature } from '../../src/documentsFeature.js';
import type { EventStore } from '../../src/eventstore/port.js';

/**
 * The document, billing settings and statement routes for the shell harness (role matrix, fuzz), on a
 * database another shell feature made (migrated: it has every table); the issuer does not run.
 */
export function documentShellFeatures(database: () => { db: Database } | undefined): {
  routes: (store: EventStore) => Promise<RouteModule[]>;
} {
  return {
    async routes(store) {
      const db = database();
      if (!db) throw new Error('documentShellFeatures needs the database of a feature built before it');
      return createDocumentsFeature({
        db: db.db,
        store,
        handler: new CommandHandler({ store, clock: () => new Date() }),
        checkpoints: new MemoryCheckpointStore(),
      }).routes;
    },
  };
}
