import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { StreamNotFoundError } from '../../src/eventstore/port.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';
import { makeEvent, namespace } from './contract.js';
import { deferred } from './waiting.js';

/**
 * The store's hot statements bypass knex's query builder (Database.query / withSession): prepared by
 * name on real Postgres, on the same bounded pool as every other query, and a missing stream is
 * reported without capturing a stack.
 */

// One connection, so that "the same pool" is observable: anything outside it would not wait.
let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase({ poolMax: 1 });
});
afterAll(async () => {
  await testDb?.dispose();
});

/** Names of the statements prepared on the pool's one connection. */
async function preparedNames(db: Database): Promise<string[]> {
  const rows = await db.query<{ name: string }>({
    text: 'SELECT name FROM pg_prepared_statements ORDER BY name',
    values: [],
  });
  return rows.map((r) => r.name);
}

describe(`Database sessions (${usingRealPostgres ? 'postgres' : 'PGlite'})`, () => {
  it('runs a statement with $n placeholders and returns its rows, parsed as knex would', async () => {
    const rows = await testDb.db.query<{ n: number; doc: { a: number }; s: string | null }>({
      name: 'test_session_values',
      text: 'SELECT $1::bigint AS n, $2::jsonb AS doc, $3::text AS s',
      values: [41, JSON.stringify({ a: 1 }), null],
    });
    expect(rows).toEqual([{ n: 41, doc: { a: 1 }, s: null }]);
  });

  it('holds one pooled connection for the whole session: a query outside it waits until it ends', async () => {
    const inside = deferred();
    const release = deferred();
    const session = testDb.db.withSession(async (s) => {
      await s.query({ text: 'BEGIN', values: [] });
      await s.query({ text: `SELECT set_config('application_name', 'held_session', true)`, values: [] });
      inside.resolve();
      await release.promise;
      await s.query({ text: 'COMMIT', values: [] });
    });
    await inside.promise;
    let outsideDone = false;
    const outside = testDb.db.knex
      .raw<{ rows: Array<{ name: string }> }>(`SELECT current_setting('application_name') AS name`)
      .then((r) => {
        outsideDone = true;
        return r.rows[0]!.name;
      });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(outsideDone).toBe(false);
    release.resolve();
    await session;
    // It ran after COMMIT, so the transaction-local setting was gone.
    expect(await outside).not.toBe('held_session');
  });

  it('prepares named statements once per connection on Postgres; PGlite prepares them unnamed', async () => {
    const statement = { name: 'test_session_named', text: 'SELECT $1::int + 1 AS n', values: [1] };
    expect(await testDb.db.query(statement)).toEqual([{ n: 2 }]);
    expect(await testDb.db.query({ ...statement, values: [2] })).toEqual([{ n: 3 }]);
    const names = await preparedNames(testDb.db);
    if (usingRealPostgres) expect(names).toContain('test_session_named');
    else expect(names).toEqual([]);
  });
});

describe(`PostgresEventStore statements (${usingRealPostgres ? 'postgres' : 'PGlite'})`, () => {
  let store: PostgresEventStore;
  beforeAll(() => {
    store = new PostgresEventStore(testDb.db);
  });
  afterAll(async () => {
    await store?.close();
  });

  it('appends and stream reads run as named prepared statements on Postgres (unnamed on PGlite)', async () => {
    const ns = namespace();
    const stream = ns.stream('prepared');
    await store.append(stream, [makeEvent('A')], { expectedRevision: 'no_stream' });
    const read = await store.readStream(stream, { direction: 'backwards', maxCount: 1, fromRevision: 0n });
    expect(read.map((e) => e.type)).toEqual(['A']);
    await store.readStream(stream, { direction: 'forwards', maxCount: 10 });
    const names = await preparedNames(testDb.db);
    if (!usingRealPostgres) {
      expect(names).toEqual([]);
      return;
    }
    expect(names).toEqual(
      expect.arrayContaining([
        'event_store_group_state',
        'event_store_read_stream_backwards_from',
        'event_store_read_stream_forwards_all',
        'event_store_write_plan',
      ]),
    );
  });

  it('stream reads wait for the pool like every other query (a held transaction delays them)', async () => {
    const ns = namespace();
    const stream = ns.stream('pooled');
    await store.append(stream, [makeEvent('A')], { expectedRevision: 'no_stream' });
    const release = deferred();
    const entered = deferred();
    const held = testDb.db.knex.transaction(async (trx) => {
      await trx.raw('SELECT 1');
      entered.resolve();
      await release.promise;
    });
    await entered.promise;
    let readDone = false;
    const read = store.readStream(stream, { direction: 'forwards', maxCount: 10 }).then((events) => {
      readDone = true;
      return events;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(readDone).toBe(false);
    release.resolve();
    await held;
    expect((await read).map((e) => e.type)).toEqual(['A']);
  });

  it('a missing stream rejects with StreamNotFoundError, built without a stack, and leaves stack traces on', async () => {
    const limitBefore = Error.stackTraceLimit;
    const stream = namespace().stream('missing');
    const error = await store.readStream(stream, { direction: 'forwards', maxCount: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(StreamNotFoundError);
    expect(error).toMatchObject({ code: 'stream_not_found', streamName: stream });
    expect((error as Error).stack).not.toMatch(/\n\s+at /);
    expect(Error.stackTraceLimit).toBe(limitBefore);
    expect(new Error('probe').stack).toMatch(/\n\s+at /);
  });
});
