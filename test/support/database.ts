import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { adminQuery } from './globalSetup.js';

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
 * next to DATABASE_URL's (dropped on dispose); otherwise a new in-memory PGlite. Migrated ones are copies
 * of the run's template (test/support/globalSetup.ts); `migrate: false` gives an empty one.
 */
export async function createTestDatabase(
  options: { migrate?: boolean; poolMax?: number } = {},
): Promise<TestDatabase> {
  const migrate = options.migrate ?? true;
  const base = process.env.DATABASE_URL;
  if (!base) {
    const imagePath = migrate ? inject('pgliteImagePath') : null;
    const db = await openDatabase(
      imagePath ? { kind: 'pglite', image: new Blob([readFileSync(imagePath)]) } : { kind: 'pglite' },
    );
    // Without a template (a file run outside vitest's globalSetup) migrate here.
    if (migrate && !imagePath) await migrateLatest(db);
    return { db, dispose: () => db.close() };
  }
  const name = `ledger_t_${randomBytes(6).toString('hex')}`;
  const template = migrate ? inject('postgresTemplate') : null;
  await adminQuery(
    base,
    template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`,
  );
  const url = new URL(base);
  url.pathname = `/${name}`;
  const db = await openDatabase({ kind: 'postgres', url: url.toString(), poolMax: options.poolMax ?? 10 });
  if (migrate && !template) await migrateLatest(db, { databaseUrl: url.toString() });
  return {
    db,
    url: url.toString(),
    async dispose() {
      await db.close();
      await adminQuery(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
