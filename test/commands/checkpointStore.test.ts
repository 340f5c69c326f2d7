import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CheckpointStore,
  MemoryCheckpointStore,
  PostgresCheckpointStore,
} from '../../src/commands/checkpointStore.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

function describeCheckpointStore(name: string, make: () => CheckpointStore) {
  describe(name, () => {
    it('starts empty, only moves forward, and records poison events once', async () => {
      const store = make();
      expect(await store.load('pm')).toBeUndefined();
      await store.save('pm', 5n);
      await store.save('pm', 3n);
      expect(await store.load('pm')).toBe(5n);
      await store.save('pm', 9_007_199_254_740_000n);
      expect(await store.load('pm')).toBe(9_007_199_254_740_000n);
      expect(await store.load('other')).toBeUndefined();
      const poison = {
        subscriber: 'pm',
        eventId: '6f1d7c52-4b0e-4b8e-9a57-2a8f3c0d9e11',
        position: 7n,
        tenantId: 't1',
        streamName: 'booking-t1.b1',
        eventType: 'BookingCompleted',
        errorCode: 'invalid_state',
        errorMessage: 'hold already resolved',
      };
      await store.recordPoison(poison);
      await store.recordPoison(poison);
      expect(await store.listPoison('pm', 10)).toEqual([poison]);
    });
  });
}

describeCheckpointStore('MemoryCheckpointStore', () => new MemoryCheckpointStore());

describe('PostgresCheckpointStore', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => {
    await tdb?.dispose();
  });
  describeCheckpointStore('on the test database', () => new PostgresCheckpointStore(tdb.db));
});
