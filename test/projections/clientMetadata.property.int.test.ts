import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import type { ClientMetadata } from '../../src/domain/clientMetadata.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { PostgresConsoleQueries } from '../../src/projections/consoleQueries.js';
import { PostgresLedgerQueries } from '../../src/projections/postgresLedgerQueries.js';
import { ProjectionRunner } from '../../src/projections/projectionRunner.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Metadata filters against a reference model: over random adjustments carrying random metadata, every
 * filtered read (account entries paged, the statement in both orders, the journal, search) returns
 * exactly the model's entries whose metadata holds every pair of the filter, in the read's order, and
 * every entry returns the metadata its command carried.
 */
const KEYS = { order: ['A', 'B', 'C'], channel: ['web', 'app'], lesson: ['x', 'y'] } as const;
type Key = keyof typeof KEYS;
const metadataArb: fc.Arbitrary<ClientMetadata> = fc
  .record(
    Object.fromEntries(
      (Object.keys(KEYS) as Key[]).map((k) => [
        k,
        fc.option(fc.constantFrom(...KEYS[k]), { nil: undefined }),
      ]),
    ) as Record<Key, fc.Arbitrary<string | undefined>>,
  )
  .map((m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined)) as ClientMetadata);
const opArb = fc.record({
  wallet: fc.nat(1),
  amount: fc.integer({ min: 1, max: 1_000 }),
  metadata: metadataArb,
});
const filterArb = metadataArb.filter((m) => Object.keys(m).length > 0);

const matches = (metadata: ClientMetadata, filter: ClientMetadata) =>
  Object.entries(filter).every(([k, v]) => metadata[k] === v);

describe('metadata filters (property, against a reference model)', () => {
  let t: TestDatabase;
  let service: LedgerService;
  let runner: ProjectionRunner;
  let queries: PostgresLedgerQueries;
  let console: PostgresConsoleQueries;

  beforeAll(async () => {
    t = await createTestDatabase();
    const store = new PostgresEventStore(t.db);
    service = createLedgerService({ store, clock: () => new Date('2026-12-01T10:00:00.000Z') });
    runner = new ProjectionRunner({ db: t.db, store, idleFlushMs: 1 });
    runner.start();
    queries = new PostgresLedgerQueries(t.db);
    console = new PostgresConsoleQueries(t.db);
  }, 180_000);
  afterAll(async () => {
    await runner?.stop();
    await queries?.close();
    await t?.dispose();
  });

  it('filtered reads return exactly the entries whose metadata holds every pair', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 12 }),
        fc.array(filterArb, { minLength: 1, maxLength: 4 }),
        async (ops, filters) => {
          const tenantId = `pm${run++}`;
          const model: Array<{ entryId: string; account: string; metadata: ClientMetadata }> = [];
          let position = -1n;
          for (const [i, op] of ops.entries()) {
            const account = `student:s${op.wallet}:wallet`;
            const result = await service.adjust(
              {
                tenantId,
                actor: { id: 'fin', role: 'finance_admin' },
                idempotencyKey: `k${i}`,
                correlationId: `c${i}`,
                causationId: `c${i}`,
                clientMetadata: op.metadata,
              },
              { account, direction: 'credit', amount: { amount: op.amount, currency: 'usd' }, reason: 'p' },
            );
            model.push({ entryId: result.entryId, account, metadata: op.metadata });
            position = result.position;
          }
          expect(await queries.waitForPosition(position, 30_000)).toBe(true);

          for (const account of ['student:s0:wallet', 'student:s1:wallet']) {
            const all = await queries.getAccountEntries(tenantId, account, { limit: 200 });
            const expectedAll = model.filter((m) => m.account === account).reverse();
            expect(all.items.map((i) => [i.entryId, i.metadata])).toEqual(
              expectedAll.map((m) => [m.entryId, m.metadata]),
            );
            for (const filter of filters) {
              const expected = expectedAll.filter((m) => matches(m.metadata, filter)).map((m) => m.entryId);
              // Paged two at a time: the keyset cursor carries the filter's order.
              const paged: string[] = [];
              let cursor: string | undefined;
              do {
                const page = await queries.getAccountEntries(tenantId, account, {
                  limit: 2,
                  metadata: filter,
                  ...(cursor ? { cursor } : {}),
                });
                paged.push(...page.items.map((i) => i.entryId));
                cursor = page.nextCursor ?? undefined;
              } while (cursor);
              expect(paged).toEqual(expected);
              const asc = await console.getStatement(tenantId, account, {
                order: 'asc',
                limit: 200,
                metadata: filter,
              });
              if (expectedAll.length === 0) expect(asc).toBeNull();
              else expect(asc!.items.map((i) => i.entryId)).toEqual([...expected].reverse());
            }
          }
          for (const filter of filters) {
            const expected = model.filter((m) => matches(m.metadata, filter)).map((m) => m.entryId);
            const journal = await console.getJournal(tenantId, { limit: 200, metadata: filter });
            expect(journal.items.map((i) => i.entryId)).toEqual(expected);
            expect(journal.items.every((i) => matches(i.metadata, filter))).toBe(true);
            const found = await console.search(tenantId, '', 50, filter);
            expect(found.map((r) => r.id)).toEqual([...expected].reverse());
          }
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 15) },
    );
  }, 300_000);
});
