import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateCommand } from '../../src/cli/migrateCommand.js';
import { storedEvents } from '../../src/db/migrate.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { makeEvent } from '../eventstore/contract.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';

let testDb: TestDatabase | undefined;
afterAll(async () => {
  await testDb?.dispose();
});

/** Runs `migrate` with the given flags; returns its exit code and what it wrote. */
async function migrate(db: TestDatabase, args: { down: boolean; deleteAllEvents: boolean }) {
  const out = { stdout: '', stderr: '' };
  const stream = (key: 'stdout' | 'stderr') => {
    const s = new PassThrough();
    s.on('data', (chunk: Buffer) => {
      out[key] += chunk.toString();
    });
    return s;
  };
  const code = await migrateCommand(
    {
      db: db.db,
      ...(db.url ? { databaseUrl: db.url } : {}),
      stdout: stream('stdout'),
      stderr: stream('stderr'),
    },
    args,
  );
  return { code, ...out };
}

describe(`migrate --down (${usingRealPostgres ? 'Postgres' : 'PGlite'})`, () => {
  it('rolls back an empty store; on a store holding events it refuses unless the loss is named', async () => {
    testDb = await createTestDatabase();
    expect(await migrate(testDb, { down: true, deleteAllEvents: false })).toMatchObject({
      code: 0,
      stdout: 'rolled back all migrations\n',
    });
    expect(await storedEvents(testDb.db)).toBeNull();
    expect((await migrate(testDb, { down: false, deleteAllEvents: false })).stdout).toMatch(
      /^applied: 0001_event_store/,
    );

    const store = new PostgresEventStore(testDb.db);
    await store.append('wallet-t1-s1', [makeEvent('Seeded'), makeEvent('Seeded')], {
      expectedRevision: 'no_stream',
    });
    await store.append('wallet-t1-s2', [makeEvent('Seeded')], { expectedRevision: 'no_stream' });
    await store.close();

    const refused = await migrate(testDb, { down: true, deleteAllEvents: false });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^refusing: migrate --down drops the event store, which holds 3 event\(s\) in 2 stream\(s\).*migrate --down --delete-all-events\n$/,
    );
    expect(await storedEvents(testDb.db)).toEqual({ events: 3, streams: 2 });

    expect((await migrate(testDb, { down: false, deleteAllEvents: true })).code).toBe(2);

    expect(await migrate(testDb, { down: true, deleteAllEvents: true })).toMatchObject({
      code: 0,
      stdout: 'rolled back all migrations and deleted 3 event(s)\n',
    });
    expect(await storedEvents(testDb.db)).toBeNull();
  });
});
