import { expect } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { PostgresEventStore, type PostgresEventStoreOptions } from '../../src/eventstore/postgres.js';
import { deferred } from './waiting.js';

/**
 * A store whose appends stop inside their transaction (written, head row locked, not committed) until
 * the test releases them: the late-commit and lock-wait cases. `thenFail` rolls the held write back
 * with that message instead of committing it.
 */
export function heldWriter(
  db: Database,
  options: Omit<PostgresEventStoreOptions, 'beforeCommit'> & { thenFail?: string } = {},
): { store: PostgresEventStore; entered: Promise<void>; release: () => void } {
  const entered = deferred();
  const released = deferred();
  const { thenFail, ...storeOptions } = options;
  const store = new PostgresEventStore(db, {
    ...storeOptions,
    beforeCommit: async () => {
      entered.resolve();
      await released.promise;
      if (thenFail !== undefined) throw new Error(thenFail);
    },
  });
  return { store, entered: entered.promise, release: released.resolve };
}

/** Sessions of this database blocked on a lock while running an event store write (real Postgres). */
export async function sessionsWaitingOnHead(admin: Database): Promise<number> {
  const { rows } = await admin.knex.raw<{ rows: Array<{ n: number }> }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%event_store_head%'`,
  );
  return rows[0]!.n;
}

/** The invariant `events_pkey` depends on: positions 0..head, each once, and nothing above the head. */
export async function expectDenseLog(db: Database): Promise<void> {
  const { rows } = await db.knex.raw<{ rows: Array<{ head: number; top: number | null; n: number }> }>(
    `SELECT (SELECT position FROM event_store_head WHERE id = 1) AS head,
            max(position) AS top, count(*)::int AS n
     FROM events`,
  );
  const { head, top, n } = rows[0]!;
  expect(top ?? -1).toBe(head);
  expect(n).toBe(head + 1);
}
