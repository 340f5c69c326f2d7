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
        'event_store_read_stream',
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

/**
 * The store's lookups by key stay index lookups whatever the planner's statistics
 * say. A prepared statement keeps the plan it chose when `events` was small, and the bad case was a
 * full scan of `events` per append; here the planner is pushed as hard as it can be towards sequential
 * scans (on the pool's one connection: free sequential pages and rows, dear random pages), every write
 * path and read runs on it, and the tables' sequential scan counters must not move. The control, the
 * id check as it was written before, does scan under the same settings, so the setting is effective.
 */
describe(`PostgresEventStore lookups under planner costs that favour sequential scans (${usingRealPostgres ? 'postgres' : 'PGlite'})`, () => {
  const SEQ_FAVOURING = ['SET seq_page_cost = 0', 'SET cpu_tuple_cost = 0', 'SET random_page_cost = 1000000'];
  const RESET = ['RESET seq_page_cost', 'RESET cpu_tuple_cost', 'RESET random_page_cost'];

  async function run(texts: string[]): Promise<void> {
    for (const text of texts) await testDb.db.query({ text, values: [] });
  }

  /** Sequential scans of the event tables so far, with this connection's pending counts published. */
  async function seqScans(): Promise<{ events: number; streams: number }> {
    await testDb.db.query({ text: 'SELECT pg_stat_force_next_flush()', values: [] });
    const rows = await testDb.db.query<{ relname: string; seq_scan: number }>({
      text: `SELECT relname, seq_scan::int AS seq_scan FROM pg_stat_user_tables
             WHERE relname IN ('events', 'event_streams')`,
      values: [],
    });
    const of = (name: string) => rows.find((r) => r.relname === name)?.seq_scan ?? 0;
    return { events: of('events'), streams: of('event_streams') };
  }

  afterAll(async () => {
    await run(RESET);
  });

  it('appends (one round trip, read-then-write, locked), replays and stream reads scan no event table', async () => {
    const ns = namespace();
    // Enough rows that a scan is a real scan, written before the costs change.
    const seeded = new PostgresEventStore(testDb.db);
    for (let i = 0; i < 20; i++) {
      await seeded.append(ns.stream(`seed${i}`), [makeEvent('A'), makeEvent('B')], {
        expectedRevision: 'no_stream',
      });
    }
    await seeded.close();
    await run(SEQ_FAVOURING);
    const before = await seqScans();

    const control = await testDb.db.query({
      text: 'SELECT 1 FROM events WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::uuid)',
      values: [JSON.stringify([makeEvent('X').id])],
    });
    expect(control).toEqual([]);
    const afterControl = await seqScans();
    expect(afterControl.events).toBeGreaterThan(before.events);

    const first = new PostgresEventStore(testDb.db);
    const second = new PostgresEventStore(testDb.db);
    const locked = new PostgresEventStore(testDb.db, { optimisticAttempts: 0 });
    try {
      const again = makeEvent('A');
      // first: read-then-write (nothing cached yet), then one round trip; second: the head moved under
      // its cache, read-then-write; locked: lock first, then read, then write; then a replay of each.
      await first.append(ns.stream('one'), [again], { expectedRevision: 'no_stream' });
      await first.append(ns.stream('one'), [makeEvent('B')], { expectedRevision: 0n });
      await second.append(ns.stream('two'), [makeEvent('A')], { expectedRevision: 'no_stream' });
      await first.append(ns.stream('one'), [makeEvent('C')], { expectedRevision: 1n });
      await locked.append(ns.stream('three'), [makeEvent('A')], { expectedRevision: 'no_stream' });
      expect(await second.append(ns.stream('one'), [again], { expectedRevision: 'no_stream' })).toMatchObject(
        {
          nextExpectedRevision: 0n,
        },
      );
      expect(await locked.append(ns.stream('one'), [again], { expectedRevision: 'no_stream' })).toMatchObject(
        {
          nextExpectedRevision: 0n,
        },
      );
      for (const direction of ['forwards', 'backwards'] as const) {
        expect(await first.readStream(ns.stream('one'), { direction, maxCount: 10 })).toHaveLength(3);
        expect(
          await first.readStream(ns.stream('one'), { direction, maxCount: 10, fromRevision: 1n }),
        ).toHaveLength(direction === 'forwards' ? 2 : 2);
      }
      await expect(
        first.readStream(ns.stream('missing'), { direction: 'forwards', maxCount: 1 }),
      ).rejects.toBeInstanceOf(StreamNotFoundError);
      const stats = [first.stats(), second.stats(), locked.stats()];
      expect(stats[0]!.cachedWrites).toBeGreaterThan(0);
      expect(stats[1]!.cacheMisses + stats[1]!.stateRereads + stats[0]!.cacheMisses).toBeGreaterThan(0);
    } finally {
      await Promise.all([first.close(), second.close(), locked.close()]);
    }
    expect(await seqScans()).toEqual(afterControl);
  });
});
