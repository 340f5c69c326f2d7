import type { Knex } from 'knex';
import pg from 'pg';
import { migrations as allMigrations, type Migration } from '../../migrations/index.js';
import type { Database } from './database.js';

const MIGRATION_LOCK_KEY = 7_245_001; // pg_advisory_lock key reserved for schema migrations

class StaticMigrationSource implements Knex.MigrationSource<Migration> {
  constructor(private readonly list: Migration[]) {}
  async getMigrations(): Promise<Migration[]> {
    return this.list;
  }
  getMigrationName(migration: Migration): string {
    return migration.name;
  }
  async getMigration(migration: Migration): Promise<Knex.Migration> {
    return { up: migration.up, down: migration.down };
  }
}

export interface MigrateOptions {
  /** Needed on Postgres to hold the advisory lock on a dedicated session. */
  databaseUrl?: string;
  list?: Migration[];
}

const config = (list: Migration[]): Knex.MigratorConfig => ({
  migrationSource: new StaticMigrationSource(list),
  tableName: 'knex_migrations',
});

/**
 * Applies all pending migrations under a Postgres advisory lock so concurrent starts do not race.
 * knex's own lock row is freed first: under our advisory lock nobody else is migrating, and a process
 * killed mid-migration must not leave every later start stuck on a stale row.
 */
export async function migrateLatest(db: Database, options: MigrateOptions = {}): Promise<string[]> {
  const list = options.list ?? allMigrations;
  return withMigrationLock(db, options.databaseUrl, async () => {
    await db.knex.migrate.forceFreeMigrationsLock(config(list));
    const [, applied] = (await db.knex.migrate.latest(config(list))) as [number, string[]];
    return applied;
  });
}

/** Rolls back every migration (down), newest first. */
export async function migrateDownAll(db: Database, options: MigrateOptions = {}): Promise<void> {
  const list = options.list ?? allMigrations;
  await withMigrationLock(db, options.databaseUrl, async () => {
    await db.knex.migrate.forceFreeMigrationsLock(config(list));
    await db.knex.migrate.rollback(config(list), true);
  });
}

async function withMigrationLock<T>(db: Database, url: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (db.kind === 'pglite' || !url) return fn();
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query('SET lock_timeout = 60000');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    return await fn();
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
