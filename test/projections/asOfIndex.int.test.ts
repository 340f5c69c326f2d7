import fc from 'fast-check';
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import * as m0011 from '../../migrations/0011_postings_as_of_currency.js';
import { migrations } from '../../migrations/index.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { PostgresLedgerQueries } from '../../src/projections/postgresLedgerQueries.js';
import { ProjectionRunner } from '../../src/projections/projectionRunner.js';
import { readAsTenant } from '../../src/projections/readTransaction.js';
import { rebuildReadModels } from '../../src/projections/rebuild.js';
import {
  LIVE_SCHEMA,
  POSTINGS_AS_OF_INDEXES,
  RETIRED_POSTINGS_INDEXES,
  TENANT_TABLES,
} from '../../src/projections/schema.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { appendAll, buildEvents, foldBalances, opArb } from './fixtures.js';

/** The as-of statements of PostgresLedgerQueries.getAccountBalance, as the API sends them. */
const AS_OF_POSITION = `SELECT * FROM ${LIVE_SCHEMA}.postings WHERE tenant_id = ? AND account = ? AND currency = ?
  AND position <= ?::int8 ORDER BY position DESC, line DESC LIMIT 1`;
const AS_OF_TIME = `SELECT * FROM ${LIVE_SCHEMA}.postings WHERE tenant_id = ? AND account = ? AND currency = ?
  AND occurred_at <= ? ORDER BY occurred_at DESC, position DESC, line DESC LIMIT 1`;

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  Filter?: string;
  Plans?: PlanNode[];
}

function planNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(planNodes)];
}

/** The plan of `sql` as the API's read role sees it (RLS on, tenant set). */
async function planOf(knex: Knex, tenantId: string, sql: string, bindings: string[]): Promise<PlanNode[]> {
  const r = (await readAsTenant(knex, tenantId, (trx) =>
    trx.raw(`EXPLAIN (FORMAT JSON) ${sql}`, bindings),
  )) as { rows: Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> | string }> };
  const raw = r.rows[0]!['QUERY PLAN'];
  const doc = typeof raw === 'string' ? (JSON.parse(raw) as Array<{ Plan: PlanNode }>) : raw;
  return planNodes(doc[0]!.Plan);
}

async function postingsIndexes(knex: Knex): Promise<string[]> {
  const r = (await knex.raw(
    `SELECT indexname FROM pg_indexes WHERE schemaname = ? AND tablename = 'postings' ORDER BY indexname`,
    [LIVE_SCHEMA],
  )) as { rows: Array<{ indexname: string }> };
  return r.rows.map((x) => x.indexname);
}

// Multi-currency accounts in two tenants: the as-of seek must not have to skip the other currency.
const history = (length: number, seed: number) =>
  buildEvents(fc.sample(opArb, { numRuns: length, seed }), `asof${seed}`);

describe('as-of balance indexes', () => {
  let t: TestDatabase | undefined;
  afterEach(async () => {
    await t?.dispose();
    t = undefined;
  });

  it('a rebuild leaves planner statistics, and as-of reads are one index seek with no filter or sort', async () => {
    t = await createTestDatabase();
    const store = new MemoryEventStore();
    await appendAll(store, history(3_000, 11));
    await rebuildReadModels({ db: t.db, store, batchSize: 500 });

    // Only ANALYZE fills pg_stats (an index build updates the row count, not the column statistics).
    for (const table of TENANT_TABLES) {
      const stats = (await t.db.knex.raw(
        'SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = ? AND tablename = ?',
        [LIVE_SCHEMA, table],
      )) as { rows: Array<{ n: number }> };
      const rows = (await t.db.knex.raw(`SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.${table}`)) as {
        rows: Array<{ n: number }>;
      };
      if (rows.rows[0]!.n > 0) expect(stats.rows[0]!.n, `${table} has statistics`).toBeGreaterThan(0);
    }

    const plans = [
      {
        sql: AS_OF_POSITION,
        bindings: ['ta', 'stripe:balance', 'usd', '1500'],
        index: 'postings_as_of_position',
      },
      {
        sql: AS_OF_TIME,
        bindings: ['ta', 'stripe:balance', 'usd', '2026-01-01T00:25:00.000Z'],
        index: 'postings_as_of_time',
      },
    ];
    for (const { sql, bindings, index } of plans) {
      const nodes = await planOf(t.db.knex, 'ta', sql, bindings);
      const scans = nodes.filter((n) => n['Node Type'] === 'Index Scan');
      expect(scans.map((n) => n['Index Name'])).toEqual([index]);
      // Every predicate is an index condition (no Filter on the scan), and the index yields the order.
      expect(scans[0]!.Filter).toBeUndefined();
      expect(nodes.map((n) => n['Node Type'])).not.toContain('Sort');
    }
  });

  it('migration 0011 replaces the currency-less indexes of an existing database and keeps answers', async () => {
    t = await createTestDatabase({ migrate: false });
    const { db } = t;
    const databaseUrl = t.url;
    // The database as the previous version left it: every migration before 0011, old as-of indexes.
    await migrateLatest(db, {
      ...(databaseUrl ? { databaseUrl } : {}),
      list: migrations.filter((m) => m.name < '0011'),
    });
    await db.knex.transaction((trx) => m0011.down(trx));
    expect(await postingsIndexes(db.knex)).toEqual(
      [...RETIRED_POSTINGS_INDEXES.map((i) => i.name), 'postings_pkey'].sort(),
    );

    const store = new MemoryEventStore();
    const head = await appendAll(store, history(400, 12));
    const runner = new ProjectionRunner({ db, store, idleFlushMs: 1 });
    runner.start();
    const queries = new PostgresLedgerQueries(db);
    try {
      await queries.waitForPosition(head, 20_000);
      await runner.stop();

      const applied = await migrateLatest(db, { ...(databaseUrl ? { databaseUrl } : {}) });
      expect(applied).toContain('0011_postings_as_of_currency');
      expect(await postingsIndexes(db.knex)).toEqual(
        [...POSTINGS_AS_OF_INDEXES.map((i) => i.name), 'postings_pkey'].sort(),
      );

      // The same answers through the new indexes: as-of balances equal the fold of the events.
      const events = await store.readAll({ maxCount: 10_000 });
      for (const upTo of [head / 3n, head / 2n, head]) {
        const folded = foldBalances(events, upTo);
        for (const [key, expected] of folded) {
          const [tenantId, account, currency] = key.split('/') as [string, string, string];
          const b = await queries.getAccountBalance(tenantId, account, { position: upTo }, { currency });
          expect(b?.version, `${key} as of ${upTo}`).toBe(expected.version);
          expect(b?.available, `${key} as of ${upTo}`).toBe(expected.available);
        }
      }
    } finally {
      await runner.stop();
      await queries.close();
    }
  });
  it('statement pages over multi-currency accounts list every posting once, newest first', async () => {
    t = await createTestDatabase();
    const store = new MemoryEventStore();
    await appendAll(store, history(600, 13));
    await rebuildReadModels({ db: t.db, store, batchSize: 100 });
    const queries = new PostgresLedgerQueries(t.db);
    try {
      const expected = (await t.db.knex.raw(
        `SELECT p.tenant_id, p.account, p.position::text AS position, p.line FROM ${LIVE_SCHEMA}.postings p
          ORDER BY p.tenant_id, p.account, p.position DESC, p.line DESC`,
      )) as { rows: Array<{ tenant_id: string; account: string; position: string; line: number }> };
      const byAccount = new Map<string, string[]>();
      const currencies = new Map<string, Set<string>>();
      for (const r of expected.rows) {
        const key = `${r.tenant_id}|${r.account}`;
        byAccount.set(key, [...(byAccount.get(key) ?? []), r.position]);
      }
      for (const [key, positions] of byAccount) {
        const [tenantId, account] = key.split('|') as [string, string];
        const got: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages <= positions.length; pages++) {
          const page = await queries.getAccountEntries(tenantId, account, {
            limit: 3,
            ...(cursor ? { cursor } : {}),
          });
          for (const line of page.items) {
            got.push(line.position.toString());
            currencies.set(key, (currencies.get(key) ?? new Set()).add(line.currency));
          }
          if (!page.nextCursor) break;
          cursor = page.nextCursor;
        }
        expect(got, key).toEqual(positions);
      }
      // The history must really hold accounts in several currencies, or the merge was not exercised.
      expect([...currencies.values()].some((c) => c.size > 1)).toBe(true);
    } finally {
      await queries.close();
    }
  });
});
