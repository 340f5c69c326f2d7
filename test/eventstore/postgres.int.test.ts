import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as eventStoreMigration from '../../migrations/0001_event_store.js';
import { openDatabase } from '../../src/db/database.js';
import {
  type EventFilter,
  EventStoreUnavailableError,
  type EventToAppend,
  InvalidAppendError,
  WrongExpectedRevisionError,
} from '../../src/eventstore/port.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';
import { collect, describeEventStoreContract, makeEvent, namespace } from './contract.js';
import { heldWriter, sessionsWaitingOnHead } from './postgresHelpers.js';
import { eventually } from './waiting.js';

// One database per file (PGlite takes seconds to start on a busy machine); tests keep apart by namespace.
let shared: Promise<TestDatabase> | undefined;
const sharedDatabase = (): Promise<TestDatabase> => {
  shared ??= createTestDatabase();
  return shared;
};
afterAll(async () => {
  await (await shared)?.dispose();
});

describeEventStoreContract(usingRealPostgres ? 'postgres' : 'postgres on PGlite', async () => {
  const store = new PostgresEventStore((await sharedDatabase()).db);
  return { store, dispose: () => store.close() };
});

describe(`PostgresEventStore specifics (${usingRealPostgres ? 'postgres' : 'PGlite'})`, () => {
  let testDb: TestDatabase;
  let store: PostgresEventStore;

  beforeAll(async () => {
    testDb = await sharedDatabase();
    store = new PostgresEventStore(testDb.db);
  });
  afterAll(async () => {
    await store?.close();
  });

  it('late commit: an append held open in its transaction is delivered before any append that follows it', async () => {
    const ns = namespace();
    const { store: holder, entered, release } = heldWriter(testDb.db);
    const head = await store.headPosition();
    const subscription = store.subscribe({ after: head, filter: { streamNamePrefixes: [ns.prefix] } });
    await collect(subscription, (c) => c.caughtUp.length === 1, { close: false });

    const early = holder.append(ns.stream('early'), [makeEvent(ns.type('Early'))], {
      expectedRevision: 'no_stream',
    });
    await entered;
    // A second writer (another store instance, as another process would be) tries to append meanwhile.
    let lateSettled = false;
    const late = store
      .append(ns.stream('late'), [makeEvent(ns.type('Late'))], { expectedRevision: 'no_stream' })
      .finally(() => {
        lateSettled = true;
      });
    if (usingRealPostgres) {
      // Prove the late writer really is in flight, blocked on the head row lock rather than committed.
      const admin = await openDatabase({ kind: 'postgres', url: testDb.url!, poolMax: 1 });
      try {
        await eventually(
          async () => (await sessionsWaitingOnHead(admin)) === 1,
          'the second append to wait on the head lock',
        );
        const visible = await admin.knex.raw<{ rows: unknown[] }>('SELECT 1 FROM events WHERE position > ?', [
          Number(head),
        ]);
        expect(visible.rows).toHaveLength(0);
      } finally {
        await admin.close();
      }
    }
    expect(lateSettled).toBe(false);
    release();
    const [earlyResult, lateResult] = await Promise.all([early, late]);
    expect(lateResult.position).toBe(earlyResult.position + 1n);
    const seen = await collect(subscription, (c) => c.events.length === 2);
    expect(seen.events.map((e) => e.type)).toEqual([ns.type('Early'), ns.type('Late')]);
    expect(seen.events.map((e) => e.position)).toEqual([earlyResult.position, lateResult.position]);
    await holder.close();
  });

  it('a rolled-back append leaves no gap and does not fail the appends grouped with it', async () => {
    const ns = namespace();
    const failing = new PostgresEventStore(testDb.db, {
      beforeCommit: async (streamName) => {
        if (streamName === ns.stream('boom')) throw new Error('boom: rolled back on purpose');
      },
    });
    const head = await failing.headPosition();
    const outcomes = await Promise.allSettled([
      failing.append(ns.stream('ok1'), [makeEvent(ns.type('Fine'))], { expectedRevision: 'no_stream' }),
      failing.append(ns.stream('boom'), [makeEvent(ns.type('Doomed'))], { expectedRevision: 'no_stream' }),
      failing.append(ns.stream('ok2'), [makeEvent(ns.type('Fine')), makeEvent(ns.type('Fine'))], {
        expectedRevision: 'no_stream',
      }),
      failing.append(ns.stream('ok3'), [makeEvent(ns.type('Fine'))], { expectedRevision: 'no_stream' }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({
      message: 'boom: rolled back on purpose',
    });
    const after = await failing.readAll({ after: head, maxCount: 100 });
    expect(after.map((e) => e.position)).toEqual([head + 1n, head + 2n, head + 3n, head + 4n]);
    expect(after.some((e) => e.streamName === ns.stream('boom'))).toBe(false);
    const next = await failing.append(ns.stream('ok1'), [makeEvent(ns.type('Fine'))], {
      expectedRevision: 0n,
    });
    expect(next.position).toBe(head + 5n);
    await failing.close();
  });

  it('a writer never trusts its own record of revisions after another writer appended', async () => {
    const ns = namespace();
    const s = ns.stream('shared');
    const a = new PostgresEventStore(testDb.db);
    const b = new PostgresEventStore(testDb.db);
    await a.append(s, [makeEvent(ns.type('ByA'))], { expectedRevision: 'no_stream' });
    await a.append(s, [makeEvent(ns.type('ByA'))], { expectedRevision: 0n });
    await a.append(ns.stream('other'), [makeEvent(ns.type('ByA'))], { expectedRevision: 'no_stream' });
    expect(a.stats().cachedWrites).toBeGreaterThan(0);
    await b.append(s, [makeEvent(ns.type('ByB'))], { expectedRevision: 1n });
    // `a` learns the head moved through a write elsewhere; its record of `s` must not survive that.
    await a.append(ns.stream('other'), [makeEvent(ns.type('ByA'))], { expectedRevision: 0n });
    const conflict = await a
      .append(s, [makeEvent(ns.type('ByA'))], { expectedRevision: 1n })
      .catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(WrongExpectedRevisionError);
    expect((conflict as WrongExpectedRevisionError).actual).toBe(2n);
    const next = await a.append(s, [makeEvent(ns.type('ByA'))], { expectedRevision: 'any' });
    expect(next.nextExpectedRevision).toBe(3n);
    const idempotent = makeEvent(ns.type('ByB'));
    const original = await b.append(ns.stream('fresh'), [idempotent], { expectedRevision: 'no_stream' });
    // `a` has never seen this stream or id: its cached write must notice both exist and replay.
    expect(await a.append(ns.stream('fresh'), [idempotent], { expectedRevision: 'no_stream' })).toEqual(
      original,
    );
    const events = await a.readStream(s, { maxCount: 10 });
    expect(events.map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n]);
    await a.close();
    await b.close();
  });

  it('refuses malformed filters with InvalidAppendError', async () => {
    const bad = { streamNamePrefixes: [42] } as unknown as EventFilter;
    await expect(store.readAll({ maxCount: 10, filter: bad })).rejects.toBeInstanceOf(InvalidAppendError);
    expect(() => store.subscribe({ filter: { eventTypes: Array.from({ length: 101 }, () => 'T') } })).toThrow(
      InvalidAppendError,
    );
  });

  it('bounds the append queue: beyond it appends fail fast with EventStoreUnavailableError', async () => {
    const ns = namespace();
    const { store: small, entered, release } = heldWriter(testDb.db, { maxQueuedAppends: 2 });
    const append = (entity: string) =>
      small.append(ns.stream(entity), [makeEvent(ns.type('Queued'))], { expectedRevision: 'any' });
    const inFlight = append('a');
    await entered;
    const queued = [append('b'), append('c')];
    await expect(append('d')).rejects.toBeInstanceOf(EventStoreUnavailableError);
    release();
    await Promise.all([inFlight, ...queued]);
    await small.close();
  });

  it('a subscription holds at most maxBuffered events ahead and still delivers everything in order', async () => {
    const ns = namespace();
    const events: EventToAppend[] = Array.from({ length: 7 }, (_, i) => makeEvent(ns.type('Paged'), { i }));
    await store.append(ns.stream('paged'), events, { expectedRevision: 'no_stream' });
    const seen = await collect(
      store.subscribe({ filter: { streamNamePrefixes: [ns.prefix] }, maxBuffered: 2 }),
      (c) => c.caughtUp.length === 1,
    );
    expect(seen.events.map((e) => e.data.i)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it.skipIf(!usingRealPostgres).each([
    { mode: 'optimistic, then locked', optimisticAttempts: 3 },
    { mode: 'always locked first', optimisticAttempts: 0 },
  ])(
    'two store instances on separate connection pools (two processes) append concurrently: gap-free, commit-ordered, $mode (needs real Postgres; PGlite is one in-process connection)',
    async ({ optimisticAttempts }) => {
      const ns = namespace();
      const otherDb = await openDatabase({ kind: 'postgres', url: testDb.url!, poolMax: 4 });
      const other = new PostgresEventStore(otherDb, { optimisticAttempts });
      const store = new PostgresEventStore(testDb.db, { optimisticAttempts });
      try {
        const head = await store.headPosition();
        const writers = 16;
        const appendsPerWriter = 32;
        const total = writers * appendsPerWriter * 2;
        const live = collect(
          store.subscribe({ after: head, filter: { streamNamePrefixes: [ns.prefix] } }),
          (c) => c.events.length >= total,
          { timeoutMs: 60_000 },
        );
        await Promise.all(
          Array.from({ length: writers }, async (_, w) => {
            const target = w % 2 === 0 ? store : other;
            for (let n = 0; n < appendsPerWriter; n++) {
              await target.append(
                ns.stream(`s${(w + n) % 10}`),
                [makeEvent(ns.type('Both'), { w }), makeEvent(ns.type('Both'), { w })],
                { expectedRevision: 'any' },
              );
            }
          }),
        );
        const seen = (await live).events;
        expect(seen).toHaveLength(total);
        expect(seen.map((e) => e.position)).toEqual(
          Array.from({ length: total }, (_, i) => head + 1n + BigInt(i)),
        );
        expect(new Set(seen.map((e) => Number(e.data.w) % 2)).size).toBe(2);
        // Both wrote to the same streams: a stale state read would have failed a group (unique
        // revision) and split it. None did; rereads happen whenever the other instance got in between.
        expect(store.stats().groupsSplit + other.stats().groupsSplit).toBe(0);
        const nextRevision = new Map<string, bigint>();
        for (const e of seen) {
          const expected = nextRevision.get(e.streamName) ?? 0n;
          expect(e.revision).toBe(expected);
          nextRevision.set(e.streamName, expected + 1n);
        }
      } finally {
        await store.close();
        await other.close();
        await otherDb.close();
      }
    },
  );
});

describe('migration 0001_event_store', () => {
  it('goes down and up cleanly', async () => {
    const { db } = await sharedDatabase();
    const tables = async (trx: Knex.Transaction): Promise<number> => {
      const { rows } = await trx.raw<{ rows: Array<{ n: number }> }>(
        `SELECT count(*)::int AS n FROM information_schema.tables
         WHERE table_schema = 'migration_check' AND table_name IN ('events', 'event_streams', 'event_store_head')`,
      );
      return rows[0]!.n;
    };
    // In a scratch schema inside a rolled-back transaction, so the shared database is left as it was.
    await db.knex
      .transaction(
        async (trx) => {
          await trx.raw('CREATE SCHEMA migration_check');
          await trx.raw('SET LOCAL search_path TO migration_check');
          await eventStoreMigration.up(trx);
          expect(await tables(trx)).toBe(3);
          const { rows } = await trx.raw<{ rows: Array<{ position: number }> }>(
            'SELECT position FROM event_store_head',
          );
          expect(rows).toEqual([{ position: -1 }]);
          await eventStoreMigration.down(trx);
          expect(await tables(trx)).toBe(0);
          await eventStoreMigration.up(trx);
          expect(await tables(trx)).toBe(3);
          throw new RollbackScratch();
        },
        { isolationLevel: 'read committed' },
      )
      .catch((error: unknown) => {
        if (!(error instanceof RollbackScratch)) throw error;
      });
  });
});

class RollbackScratch extends Error {}
