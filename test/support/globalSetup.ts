import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { dumpDatabaseImage, openDatabase } from '../../src/db/database.js';
import { migrateLatest } from '../../src/db/migrate.js';

/**
 * Migrates one template database per test run, so that each test's fresh database is a copy of it
 * (test/support/database.ts) rather than a new cluster migrated from scratch. On PGlite that is the
 * difference between loading an image (~1 s) and running initdb plus every migration (~5 s on two busy
 * cores); on Postgres, `CREATE DATABASE ... TEMPLATE` instead of every migration per database.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    /** Tar image of a migrated in-memory PGlite database (PGlite runs). */
    pgliteImagePath: string | null;
    /** Name of a migrated template database next to DATABASE_URL's (Postgres runs). */
    postgresTemplate: string | null;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    const dir = mkdtempSync(path.join(tmpdir(), 'ledger-test-template-'));
    const imagePath = path.join(dir, 'migrated.tar');
    const db = await openDatabase({ kind: 'pglite' });
    try {
      await migrateLatest(db);
      writeFileSync(imagePath, Buffer.from(await (await dumpDatabaseImage(db)).arrayBuffer()));
    } finally {
      await db.close();
    }
    project.provide('pgliteImagePath', imagePath);
    project.provide('postgresTemplate', null);
    return async () => rmSync(dir, { recursive: true, force: true });
  }
  const name = `ledger_tpl_${randomBytes(6).toString('hex')}`;
  await adminQuery(base, `CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const db = await openDatabase({ kind: 'postgres', url: url.toString(), poolMax: 2 });
  try {
    await migrateLatest(db, { databaseUrl: url.toString() });
  } finally {
    await db.close();
  }
  project.provide('pgliteImagePath', null);
  project.provide('postgresTemplate', name);
  return async () => adminQuery(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

export async function adminQuery(base: string, sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5_000 });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}
