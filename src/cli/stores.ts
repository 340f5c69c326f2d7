import type { Config } from '../config/config.js';
import { type Database, openDatabase } from '../db/database.js';
import { acquireDataDirLock, DataDirBusyError, type DataDirLock } from '../db/dataDirLock.js';
import { migrateLatest } from '../db/migrate.js';
import { EsdbEventStore } from '../eventstore/esdb.js';
import type { EventStore } from '../eventstore/port.js';
import { PostgresEventStore } from '../eventstore/postgres.js';

/**
 * How CLI commands open the configured stores. On the embedded default the command first takes the
 * DATA_DIR lock (src/db/dataDirLock.ts), held until it closes: a CLI command never opens PGlite's
 * files while the app (or another command) has them open. On Postgres no lock is taken: the commands
 * that are safe beside a live app (rebuild with its swap, verify, replay, export) run beside it.
 */

/** A refusal the CLI prints as one line on stderr (exit 1), without a stack trace. */
export class CliRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliRefusal';
  }
}

export interface OpenedDatabase {
  config: Config;
  db: Database;
  close(): Promise<void>;
}

/** Takes the DATA_DIR lock when embedded; refuses with the holder's one line when it is held. */
export function lockForCommand(config: Config, command: string): DataDirLock | undefined {
  if (config.databaseUrl !== null) return undefined;
  try {
    return acquireDataDirLock(config.dataDir, {
      role: 'cli',
      command,
      onLost: (reason) => {
        process.stderr.write(`lost the lock on ${config.dataDir} (${reason}); stopping\n`);
        process.exit(1);
      },
    });
  } catch (error) {
    if (error instanceof DataDirBusyError) throw new CliRefusal(error.message);
    throw error;
  }
}

/** Opens the database (no migrations) under the DATA_DIR lock when embedded. */
export async function openCliDatabase(
  config: Config,
  command: string,
  options: { poolMax?: number } = {},
): Promise<OpenedDatabase> {
  const lock = lockForCommand(config, command);
  try {
    const db = await openDatabase(
      config.databaseUrl
        ? { kind: 'postgres', url: config.databaseUrl, poolMax: options.poolMax ?? 4 }
        : { kind: 'pglite', dataDir: `${config.dataDir}/pglite` },
    );
    return {
      config,
      db,
      async close() {
        try {
          await db.close();
        } finally {
          lock?.release();
        }
      },
    };
  } catch (error) {
    lock?.release();
    throw error;
  }
}

export interface CliStores {
  db: Database;
  store: EventStore;
}

/** The migrated database and the configured event store for one command, closed after `fn`. */
export async function withCliStores<T>(
  config: Config,
  command: string,
  fn: (stores: CliStores) => Promise<T>,
): Promise<T> {
  const opened = await openCliDatabase(config, command);
  let store: EventStore | undefined;
  try {
    await migrateLatest(opened.db, { databaseUrl: config.databaseUrl ?? undefined });
    store = openEventStore(config, opened.db);
    return await fn({ db: opened.db, store });
  } finally {
    await store?.close();
    await opened.close();
  }
}

export function openEventStore(config: Config, db: Database): EventStore {
  return config.eventStore === 'esdb'
    ? new EsdbEventStore({ connectionString: config.eventStoreUrl! })
    : new PostgresEventStore(db);
}
