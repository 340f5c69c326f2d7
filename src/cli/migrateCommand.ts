import type { Database } from '../db/database.js';
import { migrateDownAll, migrateLatest, storedEvents } from '../db/migrate.js';

/**
 * `migrate [--down [--delete-all-events]]`. Rolling back drops the event store's tables, so on a store
 * that holds events it is refused unless the operator names that loss with --delete-all-events (read
 * models can be rebuilt from the events; nothing rebuilds the events). Exit code: 0 done, 1 refused,
 * 2 bad usage.
 */
export interface MigrateArgs {
  down: boolean;
  deleteAllEvents: boolean;
}

export interface MigrateDeps {
  db: Database;
  databaseUrl?: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export async function migrateCommand(deps: MigrateDeps, args: MigrateArgs): Promise<number> {
  const options = deps.databaseUrl ? { databaseUrl: deps.databaseUrl } : {};
  if (!args.down) {
    if (args.deleteAllEvents) {
      deps.stderr.write('--delete-all-events goes with --down only\n');
      return 2;
    }
    const applied = await migrateLatest(deps.db, options);
    deps.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'already up to date\n');
    return 0;
  }
  const held = await storedEvents(deps.db);
  const events = held?.events ?? 0;
  if (events > 0 && !args.deleteAllEvents) {
    deps.stderr.write(
      `refusing: migrate --down drops the event store, which holds ${events} event(s) in ${held?.streams ?? 0} ` +
        'stream(s): the ledger itself (read models are rebuilt from it; nothing rebuilds it). Keep a copy first ' +
        '(npm run cli -- export --out FILE), then, to delete them: migrate --down --delete-all-events\n',
    );
    return 1;
  }
  await migrateDownAll(deps.db, options);
  deps.stdout.write(`rolled back all migrations${events > 0 ? ` and deleted ${events} event(s)` : ''}\n`);
  return 0;
}
