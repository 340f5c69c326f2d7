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

/**
 * What the event store's tables hold (null: they do not exist), for commands that would destroy them.
 * Positions are dense in the Postgres event store, so the head position tells the count.
 */
export async function storedEvents(db: Database): Promise<{ events: number; streams: number } | null> {
  const exists = (await db.knex.raw(
    "SELECT to_regclass('event_store_head') IS NOT NULL AS head, to_regclass('event_streams') IS NOT NULL AS streams",
  )) as { rows: Array<{ head: boolean; streams: boolean }> };
  const tables = exists.rows[0];
  if (!tables?.head) return null;
  const head = (await db.knex.raw('SELECT position FROM event_store_head WHERE id = 1')) as {
    rows: Array<{ position: number }>;
  };
  const streams = tables.streams
    ? ((await db.knex.raw('SELECT count(*)::int AS n FROM event_streams')) as { rows: Array<{ n: number }> })
        .rows[0]!.n
    : 0;
  return { events: (head.rows[0]?.position ?? -1) + 1, streams };
}
