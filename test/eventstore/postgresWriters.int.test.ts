import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { InvariantViolation } from '../../src/domain/errors.js';
import {
  EventStoreUnavailableError,
  IdempotencyViolationError,
  WrongExpectedRevisionError,
} from '../../src/eventstore/port.js';
import { mapDatabaseError, PostgresEventStore } from '../../src/eventstore/postgres.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';
import { makeEvent, namespace } from './contract.js';
import { expectDenseLog, heldWriter, sessionsWaitingOnHead } from './postgresHelpers.js';
import { startTcpProxy } from './tcpProxy.js';
import { eventually } from './waiting.js';

/**
 * Several writers (store instances, as separate app processes would be) on one database, and writers
 * whose connection dies mid-append, as after `kill -9` of an app. The soak once saw
 * `duplicate key value violates unique constraint "events_pkey"` (a reused position) after such a
 * kill; these tests pin down the cases that could reuse a position or an event id, and the typed
 * errors callers get instead of a driver error.
 */

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb?.dispose();
});

describe(`several writers on one database (${usingRealPostgres ? 'postgres' : 'PGlite'})`, () => {
  it('the same event id appended concurrently by other instances while the first write is uncommitted: one write, a replay, and typed refusals, never a unique violation', async () => {
    const ns = namespace();
    const stream = ns.stream('contested');
    const { store: holder, entered, release } = heldWriter(testDb.db);
    // Each a separate instance: none has a record of this stream, and each read its state (or, locking
    // first, queued for the head lock) while the holder's write was not yet visible.
    const twin = new PostgresEventStore(testDb.db);
    const changed = new PostgresEventStore(testDb.db, { optimisticAttempts: 0 });
    const rival = new PostgresEventStore(testDb.db);
    const head = await twin.headPosition();
    const event = makeEvent(ns.type('Contested'), { amount: 1 });
    try {
      const first = holder.append(stream, [event], { expectedRevision: 'no_stream' });
      await entered;
      const replay = twin.append(stream, [event], { expectedRevision: 'no_stream' });
      const sameIdOtherContent = changed
        .append(stream, [{ ...event, data: { amount: 2 } }], { expectedRevision: 'no_stream' })
        .catch((e: unknown) => e);
      const otherId = rival
        .append(stream, [makeEvent(ns.type('Contested'))], { expectedRevision: 'no_stream' })
        .catch((e: unknown) => e);
      if (usingRealPostgres) {
        const admin = await openDatabase({ kind: 'postgres', url: testDb.url!, poolMax: 1 });
        try {
          await eventually(
            async () => (await sessionsWaitingOnHead(admin)) === 3,
            'the three other writers to wait on the head lock',
          );
        } finally {
          await admin.close();
        }
      }
      release();
      const original = await first;
      expect(original).toEqual({ nextExpectedRevision: 0n, position: head + 1n });
      expect(await replay).toEqual(original);
      expect(await sameIdOtherContent).toBeInstanceOf(IdempotencyViolationError);
      const conflict = await otherId;
      expect(conflict).toBeInstanceOf(WrongExpectedRevisionError);
      expect((conflict as WrongExpectedRevisionError).actual).toBe(0n);
      const stored = await twin.readStream(stream, { maxCount: 10 });
      expect(stored.map((e) => [e.id, e.position])).toEqual([[event.id, head + 1n]]);
      await expectDenseLog(testDb.db);
    } finally {
      release();
      await Promise.all([holder.close(), twin.close(), changed.close(), rival.close()]);
    }
  });

  it('one group commit holding the same event ids twice (a retry queued behind the original) writes them once, from the cached head', async () => {
    const ns = namespace();
    const stream = ns.stream('batched');
    const { store, entered, release } = heldWriter(testDb.db);
    try {
      // The first append occupies the writer, so the next three queue up and go as one group.
      const first = store.append(stream, [makeEvent(ns.type('First'))], { expectedRevision: 'no_stream' });
      await entered;
      const retried = [makeEvent(ns.type('Retried')), makeEvent(ns.type('Retried'))];
      const queued = [
        store.append(stream, retried, { expectedRevision: 0n }),
        store.append(stream, retried, { expectedRevision: 0n }),
        store.append(stream, [makeEvent(ns.type('Next'))], { expectedRevision: 2n }),
      ];
      const before = store.stats();
      release();
      const head = (await first).position;
      const [original, replay, next] = await Promise.all(queued);
      expect(original).toEqual({ nextExpectedRevision: 2n, position: head + 2n });
      expect(replay).toEqual(original);
      expect(next).toEqual({ nextExpectedRevision: 3n, position: head + 3n });
      const after = store.stats();
      expect(after.groupsCommitted - before.groupsCommitted).toBe(2);
      expect(after.cachedWrites - before.cachedWrites).toBe(1);
      expect(after.groupsSplit).toBe(before.groupsSplit);
      const stored = await store.readStream(stream, { maxCount: 10 });
      expect(stored.map((e) => e.position)).toEqual([head, head + 1n, head + 2n, head + 3n]);
      await expectDenseLog(testDb.db);
    } finally {
      release();
      await store.close();
    }
  });

  it("a database that forgot a commit and grew back to the same head position does not pass a writer's stale record of its streams", async () => {
    const ns = namespace();
    const mine = ns.stream('mine');
    const a = new PostgresEventStore(testDb.db);
    const b = new PostgresEventStore(testDb.db);
    try {
      const written = await a.append(mine, [makeEvent(ns.type('ByA'))], { expectedRevision: 'no_stream' });
      // What a crash under asynchronous commit (or a failover to an asynchronous standby) leaves behind:
      // the acknowledged commit is gone, and `a` still remembers it.
      await testDb.db.knex.transaction(
        async (trx) => {
          await trx.raw('UPDATE event_store_head SET position = ? WHERE id = 1', [
            Number(written.position) - 1,
          ]);
          await trx.raw('DELETE FROM events WHERE position = ?', [Number(written.position)]);
          await trx.raw('DELETE FROM event_streams WHERE stream_name = ?', [mine]);
        },
        { isolationLevel: 'read committed' },
      );
      const other = await b.append(ns.stream('other'), [makeEvent(ns.type('ByB'))], {
        expectedRevision: 'no_stream',
      });
      expect(other.position).toBe(written.position);

      const missesBefore = a.stats().cacheMisses;
      const stale = await a
        .append(mine, [makeEvent(ns.type('ByA'))], { expectedRevision: 0n })
        .catch((e: unknown) => e);
      expect(a.stats().cacheMisses).toBe(missesBefore + 1);
      expect(stale).toBeInstanceOf(WrongExpectedRevisionError);
      expect((stale as WrongExpectedRevisionError).actual).toBe('no_stream');
      await expectDenseLog(testDb.db);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('connection losses without a SQLSTATE map to EventStoreUnavailableError; other errors pass through', () => {
    for (const message of [
      'Connection terminated unexpectedly',
      'WITH locked AS (SELECT 1) SELECT 1 - Connection terminated unexpectedly',
      'Client has encountered a connection error and is not queryable',
      'Client was closed and is not queryable',
    ]) {
      expect(mapDatabaseError(new Error(message)), message).toBeInstanceOf(EventStoreUnavailableError);
    }
    const uniqueViolation = Object.assign(new Error('duplicate key value violates unique constraint'), {
      code: '23505',
    });
    expect(mapDatabaseError(uniqueViolation)).toBe(uniqueViolation);
    const lookalike = new Error('Connection terminated unexpectedly (quoted in a bug report)');
    expect(mapDatabaseError(lookalike)).toBe(lookalike);
    const positionTaken = Object.assign(
      new Error('duplicate key value violates unique constraint "events_pkey"'),
      {
        code: '23505',
        constraint: 'events_pkey',
        detail: 'Key (position)=(3) already exists.',
      },
    );
    expect(mapDatabaseError(positionTaken)).toBeInstanceOf(InvariantViolation);
  });

  it("an events table ahead of its head row (what the soak's events_pkey error needs) refuses appends with an explicit InvariantViolation", async () => {
    const ns = namespace();
    const writer = new PostgresEventStore(testDb.db);
    await writer.append(ns.stream('before'), [makeEvent(ns.type('Before'))], {
      expectedRevision: 'no_stream',
    });
    const head = Number(await writer.headPosition());
    const stray = makeEvent(ns.type('Stray'));
    // A row above the head that no append wrote (a restore or hand edit of one table without the other).
    await testDb.db.knex.raw(
      `INSERT INTO events (position, stream_name, revision, id, type, data, metadata)
       VALUES (?, ?, 0, ?, ?, '{}', '{}')`,
      [head + 1, ns.stream('stray'), stray.id, stray.type],
    );
    const restarted = new PostgresEventStore(testDb.db);
    try {
      for (const store of [writer, restarted]) {
        const refused = await store
          .append(ns.stream('after'), [makeEvent(ns.type('After'))], { expectedRevision: 'any' })
          .catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(InvariantViolation);
        expect((refused as Error).message).toMatch(
          new RegExp(`Key \\("?position"?\\)=\\(${head + 1}\\) already exists`),
        );
      }
    } finally {
      await testDb.db.knex.raw('DELETE FROM events WHERE id = ?', [stray.id]);
      await Promise.all([writer.close(), restarted.close()]);
    }
    await expectDenseLog(testDb.db);
  });
});

describe.skipIf(!usingRealPostgres)(
  'an app killed mid-append, then restarted (needs real Postgres: PGlite has no connections to cut)',
  () => {
    it('the killed writer gets EventStoreUnavailableError; its orphaned statement commits later; the restarted writer replays it at the same position, and positions stay dense', async () => {
      const ns = namespace();
      // Holds the head lock (written, not committed) and then rolls back, so the orphaned statement
      // queued behind it finds the head where it planned and commits after its client is gone.
      const {
        store: holder,
        entered,
        release,
      } = heldWriter(testDb.db, {
        thenFail: 'holder rolls back',
      });
      const admin = await openDatabase({ kind: 'postgres', url: testDb.url!, poolMax: 1 });
      const proxy = await startTcpProxy(testDb.url!);
      const killedDb = await openDatabase({ kind: 'postgres', url: proxy.url, poolMax: 2 });
      const killed = new PostgresEventStore(killedDb);
      const restarted = new PostgresEventStore(testDb.db);
      try {
        const head = await restarted.headPosition();
        const held = holder
          .append(ns.stream('held'), [makeEvent(ns.type('Held'))], { expectedRevision: 'no_stream' })
          .catch((e: unknown) => e);
        await entered;
        const orphan = makeEvent(ns.type('Orphan'));
        const lost = killed
          .append(ns.stream('orphan'), [orphan], { expectedRevision: 'no_stream' })
          .catch((e: unknown) => e);
        await eventually(
          async () => (await sessionsWaitingOnHead(admin)) === 1,
          'the doomed append to wait on the head lock',
        );
        proxy.cutClients();
        const error = await lost;
        expect(error).toBeInstanceOf(EventStoreUnavailableError);

        release();
        expect(await held).toMatchObject({ message: 'holder rolls back' });
        // The server never noticed the client went away: the statement it was running takes the lock,
        // finds the head where it planned, and commits an append its caller was told failed.
        await eventually(async () => {
          const { rows } = await admin.knex.raw<{ rows: unknown[] }>('SELECT 1 FROM events WHERE id = ?', [
            orphan.id,
          ]);
          return rows.length === 1;
        }, 'the orphaned statement to commit');

        // The caller retries through the restarted app with the same (deterministic) event id.
        const retried = await restarted.append(ns.stream('orphan'), [orphan], {
          expectedRevision: 'no_stream',
        });
        expect(retried).toEqual({ nextExpectedRevision: 0n, position: head + 1n });
        const next = await restarted.append(ns.stream('after'), [makeEvent(ns.type('After'))], {
          expectedRevision: 'no_stream',
        });
        expect(next.position).toBe(head + 2n);
        await expectDenseLog(testDb.db);
      } finally {
        release();
        await Promise.all([holder.close(), killed.close(), restarted.close()]);
        await killedDb.close();
        await proxy.close();
        await admin.close();
      }
    });
  },
);
