import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type Database, openDatabase } from '../../src/db/database.js';
import { migrateLatest } from '../../src/db/migrate.js';

export interface TestDatabase {
  db: Database;
  /** Connection string of the fresh database (real Postgres only). */
  url?: string;
  /** Closes the handle and drops the database. */
  dispose(): Promise<void>;
}

/** Real Postgres when DATABASE_URL is set (CI), in-memory PGlite otherwise (fresh clone, no services). */
export const usingRealPostgres = Boolean(process.env.DATABASE_URL);

/**
 * A fresh, migrated database per call: on real Postgres a new database named ledger_t_<random> created
 * next to DATABASE_URL's (dropped on dispose); otherwise a new in-memory PGlite.
 */
export async function createTestDatabase(
  options: { migrate?: boolean; poolMax?: number } = {},
): Promise<TestDatabase> {
  const migrate = options.migrate ?? true;
  const base = process.env.DATABASE_URL;
  if (!base) {
    const db = await openDatabase({ kind: 'pglite' });
    if (migrate) await migrateLatest(db);
    return { db, dispose: () => db.close() };
  }
  const name = `ledger_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5_000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  const db = await openDatabase({ kind: 'postgres', url: url.toString(), poolMax: options.poolMax ?? 10 });
  if (migrate) await migrateLatest(db, { databaseUrl: url.toString() });
  return {
    db,
    url: url.toString(),
    async dispose() {
      await db.close();
      const c = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5_000 });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
