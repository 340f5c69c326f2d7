import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { RecordedEvent } from '../../src/eventstore/port.js';
import { applyBatch } from '../../src/projections/ledgerProjection.js';
import { PostgresLedgerQueries } from '../../src/projections/postgresLedgerQueries.js';
import { createReadModelTables, LIVE_SCHEMA, SHADOW_SCHEMA } from '../../src/projections/schema.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { appendAll, buildEvents, dumpSchema, foldBalances, opArb, resetSchema } from './fixtures.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 12);

describe('projection determinism (property)', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    await t.db.knex.transaction((trx) => createReadModelTables(trx, SHADOW_SCHEMA));
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it('incremental projection in random batch splits equals one full replay; as-of balance equals the fold', async () => {
    const queries = new PostgresLedgerQueries(t.db);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
        async (ops, splits, probes) => {
          run++;
          const store = new MemoryEventStore();
          await appendAll(store, buildEvents(ops, `run${run}`));
          const events = await store.readAll({ maxCount: 10_000 });
          if (events.length === 0) return;
          const { knex } = t.db;
          await resetSchema(knex, LIVE_SCHEMA);
          await resetSchema(knex, SHADOW_SCHEMA);

          // Incremental: random batch sizes, one transaction per batch.
          let position = -1n;
          for (let i = 0, s = 0; i < events.length; s++) {
            const size = splits[s % splits.length]!;
            const batch = events.slice(i, i + size);
            position = (await knex.transaction((trx) => applyBatch(trx, LIVE_SCHEMA, batch, position)))
              .position;
            i += size;
          }
          // Full replay: everything in one batch.
          await knex.transaction((trx) => applyBatch(trx, SHADOW_SCHEMA, events, -1n));
          expect(await dumpSchema(knex, LIVE_SCHEMA)).toEqual(await dumpSchema(knex, SHADOW_SCHEMA));

          // Balance as of a random position equals the fold of the events up to it.
          for (const probe of probes) {
            const at: RecordedEvent = events[probe % events.length]!;
            const folded = foldBalances(events, at.position);
            for (const [key, expected] of folded) {
              const [tenant, account, currency] = key.split('/') as [string, string, string];
              const got = await queries.getAccountBalance(
                tenant,
                account,
                { position: at.position },
                { currency },
              );
              expect(got).toMatchObject({
                debitsPending: expected.debitsPending,
                debitsPosted: expected.debitsPosted,
                creditsPending: expected.creditsPending,
                creditsPosted: expected.creditsPosted,
                available: expected.available,
                version: expected.version,
              });
            }
          }
          // And now-balances equal the full fold.
          for (const [key, expected] of foldBalances(events)) {
            const [tenant, account, currency] = key.split('/') as [string, string, string];
            const got = await queries.getAccountBalance(tenant, account, undefined, { currency });
            expect(got?.version).toBe(expected.version);
            expect(got?.available).toBe(expected.available);
          }
        },
      ),
      { numRuns: RUNS },
    );
    await queries.close();
  });
});
