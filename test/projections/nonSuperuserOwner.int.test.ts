import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { PostgresLedgerQueries } from '../../src/projections/postgresLedgerQueries.js';
import { ProjectionRunner } from '../../src/projections/projectionRunner.js';
import { rebuildReadModels } from '../../src/projections/rebuild.js';
import { bulkLoadMethodOf } from '../../src/projections/sql.js';
import { type VerifyResult, verifyReadModels } from '../../src/projections/verifier.js';
import { createTestDatabase, usingRealPostgres } from '../support/database.js';
import { appendAll, buildEvents, opArb } from './fixtures.js';

/**
 * Production may connect as a database owner that is neither superuser nor BYPASSRLS. The read models
 * FORCE row-level security, and Postgres refuses COPY FROM into such tables for a role subject to it,
 * so the projection must write with INSERT there (sql.ts, bulkLoadMethodOf) — or the runner retries the
 * same failing batch forever and every balance freezes.
 */
const OWNER = 'ledger_t_owner';

/** The verifier's findings about the read models themselves (random histories leave clearing accounts open). */
function readModelDifferences(result: VerifyResult): VerifyResult['differences'] {
  return result.differences.filter((d) => d.kind !== 'clearing_not_zero');
}

describe.runIf(usingRealPostgres)('read models owned by a non-superuser role (real Postgres)', () => {
  const base = process.env.DATABASE_URL ?? '';
  const dbName = `ledger_t_owner_${process.pid}`;
  let db: Database;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5_000 });
    await admin.connect();
    try {
      // Roles are cluster-wide and test files run in parallel: tolerate a concurrent creator.
      await admin.query(`DO $$ BEGIN
          CREATE ROLE ${OWNER} LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`);
      await admin.query(`CREATE DATABASE ${dbName} OWNER ${OWNER}`);
    } finally {
      await admin.end();
    }
    const url = new URL(base);
    url.pathname = `/${dbName}`;
    url.username = OWNER;
    url.password = '';
    db = await openDatabase({ kind: 'postgres', url: url.toString(), poolMax: 4 });
    await migrateLatest(db, { databaseUrl: url.toString() });
  });

  afterAll(async () => {
    await db?.close();
    const admin = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5_000 });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  });

  it('the runner and a rebuild keep the read models exact (INSERT, since COPY is refused)', async () => {
    expect(await bulkLoadMethodOf(db)).toBe('insert');
    const store = new MemoryEventStore();
    const head = await appendAll(store, buildEvents(fc.sample(opArb, { numRuns: 150, seed: 31 }), 'owner'));

    const runner = new ProjectionRunner({ db, store, idleFlushMs: 1 });
    runner.start();
    const queries = new PostgresLedgerQueries(db);
    try {
      expect(await queries.waitForPosition(head, 20_000)).toBe(true);
    } finally {
      await runner.stop();
      await queries.close();
    }
    const live = await verifyReadModels({ db, store });
    expect(readModelDifferences(live)).toEqual([]);
    expect(live.position).toBe(head);

    // The rebuild secures the shadow before its final catch-up and swap: that catch-up writes too.
    const rebuilt = await rebuildReadModels({ db, store, batchSize: 40 });
    expect(rebuilt.position).toBe(head);
    expect(readModelDifferences(await verifyReadModels({ db, store }))).toEqual([]);
  });

  it('a superuser connection still loads with COPY', async () => {
    const t = await createTestDatabase({ migrate: false });
    try {
      expect(await bulkLoadMethodOf(t.db)).toBe('copy');
    } finally {
      await t.dispose();
    }
  });
});
