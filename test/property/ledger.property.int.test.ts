import fc from 'fast-check';
import { describe, it } from 'vitest';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { createTestDatabase } from '../support/database.js';
import { opsArb, runOps } from './ledgerModel.js';

/** PROPERTY_RUNS overrides the number of runs (default 1,000 on the memory store, 50 on Postgres). */
const runsOverride = process.env.PROPERTY_RUNS ? Number(process.env.PROPERTY_RUNS) : undefined;
const MAX_OPS = 24;
/** Shorter sequences on Postgres: every append is a real transaction and the suite must stay fast. */
const MAX_OPS_POSTGRES = 16;

describe('ledger model-based properties', () => {
  it('memory store: random command sequences keep the model and invariants 1, 2, 4-10', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(opsArb(MAX_OPS), async (ops) => {
        const store = new MemoryEventStore();
        try {
          await runOps(store, ops, `m${run++}`);
        } finally {
          await store.close();
        }
      }),
      { numRuns: runsOverride ?? 1_000 },
    );
  }, 120_000);

  // The Postgres variant needs a real server (CI sets DATABASE_URL); PGlite is covered by the memory
  // run's semantics and the event store contract suite, and would be too slow for many runs here.
  it.runIf(Boolean(process.env.DATABASE_URL))(
    'postgres store: the same properties against the Postgres event store',
    async () => {
      const testDb = await createTestDatabase();
      const store = new PostgresEventStore(testDb.db);
      let run = 0;
      try {
        await fc.assert(
          fc.asyncProperty(opsArb(MAX_OPS_POSTGRES), async (ops) => runOps(store, ops, `p${run++}`)),
          { numRuns: runsOverride ?? 50 },
        );
      } finally {
        await store.close();
        await testDb.dispose();
      }
    },
    300_000,
  );
});
