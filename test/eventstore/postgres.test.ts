import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { createTestDatabase } from '../support/database.js';
import { describeEventStoreContract } from './contract.js';

describeEventStoreContract(process.env.DATABASE_URL ? 'postgres' : 'postgres on PGlite', async () => {
  const testDb = await createTestDatabase();
  const store = new PostgresEventStore(testDb.db);
  return {
    store,
    async dispose() {
      await store.close();
      await testDb.dispose();
    },
  };
});
