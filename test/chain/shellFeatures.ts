import type { RouteModule } from '../../src/api/v1/routeKit.js';
import { createChainFeature } from '../../src/chainFeature.js';
import type { Database } from '../../src/db/database.js';
import type { EventStore } from '../../src/eventstore/port.js';

/**
 * The chain-head route for the shell harness (role matrix, fuzz), on a database another shell feature
 * made (migrated: it has the chain tables); the chainer does not run.
 */
export function chainShellFeatures(database: () => { db: Database } | undefined): {
  routes: (store: EventStore) => Promise<RouteModule[]>;
} {
  return {
    async routes(store) {
      const db = database();
      if (!db) throw new Error('chainShellFeatures needs the database of a feature built before it');
      return createChainFeature({ db: db.db, store }).routes;
    },
  };
}
