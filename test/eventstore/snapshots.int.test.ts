import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandHandler } from '../../src/commands/commandHandler.js';
import { snapshotKindOf } from '../../src/commands/snapshots.js';
import { walletDecider } from '../../src/domain/wallet.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { PostgresSnapshotStore } from '../../src/eventstore/snapshots.js';
import { uuid } from '../domain/fixtures.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';

/**
 * The snapshot store on Postgres/PGlite (table stream_snapshots): one row per stream that only moves
 * forward within a kind and is replaced by another kind; and the command handler loading a wallet
 * from it on the real event store.
 */
let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb?.dispose();
});

describe(`PostgresSnapshotStore (${usingRealPostgres ? 'postgres' : 'PGlite'})`, () => {
  it('keeps the latest snapshot of a kind, never an older one, and lets another kind replace it', async () => {
    const store = new PostgresSnapshotStore(testDb.db);
    const base = { streamName: 'wallet-t1.snap1', kind: 'wallet.v1.a', eventId: uuid('e1') };
    expect(await store.read(base.streamName, base.kind)).toBeUndefined();
    await store.write({ ...base, revision: 5n, payload: 'five' });
    await store.write({ ...base, revision: 3n, payload: 'three', eventId: uuid('e3') });
    expect(await store.read(base.streamName, base.kind)).toEqual({ ...base, revision: 5n, payload: 'five' });
    await store.write({ ...base, revision: 9n, payload: 'nine', eventId: uuid('e9') });
    expect((await store.read(base.streamName, base.kind))?.payload).toBe('nine');
    // A new decider version writes its own kind over it, even at a lower revision.
    await store.write({ ...base, kind: 'wallet.v2.b', revision: 2n, payload: 'v2' });
    expect(await store.read(base.streamName, base.kind)).toBeUndefined();
    expect((await store.read(base.streamName, 'wallet.v2.b'))?.revision).toBe(2n);
  });

  it('a cold handler loads a wallet from its snapshot plus the tail, equal to the full fold', async () => {
    const events = new PostgresEventStore(testDb.db);
    const snapshots = new PostgresSnapshotStore(testDb.db);
    const clock = () => new Date('2026-01-01T00:00:00.000Z');
    const stream = 'wallet-t1.stu_snap';
    const ctx = (key: string) => ({
      tenantId: 't1',
      actor: { id: 'svc', role: 'service' },
      idempotencyKey: key,
      correlationId: key,
      causationId: key,
    });
    const writer = new CommandHandler({ store: events, clock, snapshots, snapshotEveryEvents: 5 });
    for (let i = 0; i < 12; i++) {
      await writer.handle(
        walletDecider,
        stream,
        {
          type: 'CreditTopUp',
          studentId: 'stu_snap',
          topUpId: `tu_${i}`,
          paymentIntentId: `pi_${i}`,
          amount: 100,
          currency: 'usd',
          entryId: uuid(`snap-entry-${i}`),
        },
        ctx(`snap-${i}`),
        { commandType: 'CreditTopUp' },
      );
    }
    // Background writes: wait until the snapshot at revision 9 is there.
    const kind = snapshotKindOf(walletDecider)!;
    for (let i = 0; i < 100 && (await snapshots.read(stream, kind))?.revision !== 9n; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await snapshots.read(stream, kind))?.revision).toBe(9n);
    const cold = new CommandHandler({ store: events, clock, snapshots });
    const loaded = await cold.load(walletDecider, stream);
    const full = await new CommandHandler({ store: events, clock }).load(walletDecider, stream);
    expect(loaded.revision).toBe(11n);
    expect(JSON.parse(JSON.stringify(loaded.state))).toEqual(JSON.parse(JSON.stringify(full.state)));
    expect(cold.stats().snapshotLoads).toBe(1);
    // A retry of the first top-up (before the snapshot) replays on the handler that loaded from it.
    const again = await cold.handle(
      walletDecider,
      stream,
      {
        type: 'CreditTopUp',
        studentId: 'stu_snap',
        topUpId: 'tu_0',
        paymentIntentId: 'pi_0',
        amount: 100,
        currency: 'usd',
        entryId: uuid('snap-entry-0'),
      },
      ctx('snap-0'),
      { commandType: 'CreditTopUp' },
    );
    expect(again.replayed).toBe(true);
    await events.close();
  });
});
