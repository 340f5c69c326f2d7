import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { LISTENER_APPLICATION_NAME } from '../../src/db/pgListener.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import {
  BALANCES_CHANGED_CHANNEL,
  BalanceCache,
  balanceCacheKey,
  balanceChangePayloads,
  parseBalanceChange,
} from '../../src/projections/balanceCache.js';
import { PostgresLedgerQueries } from '../../src/projections/postgresLedgerQueries.js';
import { PROJECTED_CHANNEL, ProjectionRunner } from '../../src/projections/projectionRunner.js';
import { rebuildReadModels } from '../../src/projections/rebuild.js';
import { eventually } from '../eventstore/waiting.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';
import { appendAll, buildEvents, opArb, TENANTS } from './fixtures.js';

const PROPERTY_RUNS = Number(process.env.PROPERTY_RUNS ?? 100);

describe('balance change notifications', () => {
  const key = fc
    .tuple(
      fc.stringMatching(/^[a-z0-9_]{1,40}$/),
      fc.stringMatching(/^[a-z]{1,8}(:[A-Za-z0-9_-]{1,64}){1,3}$/),
    )
    .map(([tenantId, account]) => ({ tenantId, account }));

  it('fit NOTIFY (< 8000 bytes), carry the position, and name every changed balance (or everything)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -1n, max: 2n ** 62n }),
        fc.array(key, { maxLength: 3_000 }),
        (position, changed) => {
          const payloads = balanceChangePayloads(position, changed);
          expect(payloads.length).toBeGreaterThan(0);
          const named = new Set<string>();
          let all = false;
          for (const payload of payloads) {
            expect(Buffer.byteLength(payload)).toBeLessThan(8_000);
            const change = parseBalanceChange(payload)!;
            expect(change.position).toBe(position);
            if (change.keys === 'all') all = true;
            else for (const k of change.keys) named.add(k);
          }
          const expected = new Set(changed.map((c) => balanceCacheKey(c.tenantId, c.account)));
          if (!all) expect(named).toEqual(expected);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('a key with a tab or newline is a broken invariant, not a silently wrong notification', () => {
    expect(() => balanceChangePayloads(1n, [{ tenantId: 'a', account: 'x\ty' }])).toThrow(/tab or newline/);
  });

  it('anything that is not one of ours parses as null (the listener flushes on it)', () => {
    for (const p of ['', 'x', '12\na', '1.5\n*', 'abc\nt\ta']) expect(parseBalanceChange(p)).toBeNull();
    expect(parseBalanceChange('7')).toEqual({ position: 7n, keys: [] });
  });
});

/**
 * The cache against a reference model: a database of versioned keys whose every write queues a
 * notification, reads that take their snapshot when they start and finish later, notifications
 * delivered late and in order, and a listener connection that drops and comes back. Whatever the
 * interleaving, a value served from the cache is never older than the last notification delivered for
 * its key, and once everything is delivered and finished the cache holds only current values.
 */
describe('balance cache against a reference model', () => {
  type Step =
    | { kind: 'write'; key: number }
    | { kind: 'startRead'; key: number }
    | { kind: 'finishRead'; which: number }
    | { kind: 'deliver' }
    | { kind: 'get'; key: number }
    | { kind: 'lose' }
    | { kind: 'listen' };
  const KEYS = 2;
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), key: fc.nat(KEYS - 1) }),
    fc.record({ kind: fc.constant('startRead' as const), key: fc.nat(KEYS - 1) }),
    fc.record({ kind: fc.constant('finishRead' as const), which: fc.nat(7) }),
    fc.record({ kind: fc.constant('deliver' as const) }),
    fc.record({ kind: fc.constant('get' as const), key: fc.nat(KEYS - 1) }),
    fc.constant({ kind: 'lose' as const }),
    fc.constant({ kind: 'listen' as const }),
  );

  it('never serves a value older than the changes it has heard of, and converges', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 80, size: 'max' }), async (steps) => {
        const cache = new BalanceCache<number>({ maxEntries: 3 });
        cache.listening();
        const db = Array.from({ length: KEYS }, () => 0);
        const heard = Array.from({ length: KEYS }, () => 0);
        let position = 0n;
        // Notifications queued at commit; delivered only while the listener is connected.
        let queue: Array<{ key: number; version: number; position: bigint }> = [];
        let connected = true;
        const reads: Array<{ resolve: () => void; done: Promise<number> }> = [];
        const deliverAll = () => {
          for (const n of queue) {
            heard[n.key] = Math.max(heard[n.key]!, n.version);
            cache.changed({ position: n.position, keys: [`k${n.key}`] });
          }
          queue = [];
        };
        for (const s of steps) {
          switch (s.kind) {
            case 'write':
              db[s.key]!++;
              position++;
              // A change made while the listener is away is never delivered to it.
              if (connected) queue.push({ key: s.key, version: db[s.key]!, position });
              break;
            case 'startRead': {
              const snapshot = db[s.key]!;
              let resolve!: () => void;
              const gate = new Promise<void>((r) => {
                resolve = r;
              });
              const heardAtStart = heard[s.key]!;
              const done = cache.read(`k${s.key}`, async () => {
                await gate;
                return snapshot;
              });
              // Whether it reads itself or joins a read under way, it answers nothing older than
              // what had been heard when it was asked.
              reads.push({
                resolve,
                done: done.then((value) => {
                  expect(value).toBeGreaterThanOrEqual(heardAtStart);
                  return value;
                }),
              });
              break;
            }
            case 'finishRead': {
              // Lets one database read answer (a read that joined another one answers with it).
              reads[s.which % Math.max(1, reads.length)]?.resolve();
              await new Promise((r) => setImmediate(r));
              break;
            }
            case 'deliver':
              if (connected && queue.length > 0) {
                const n = queue.shift()!;
                heard[n.key] = Math.max(heard[n.key]!, n.version);
                cache.changed({ position: n.position, keys: [`k${n.key}`] });
              }
              break;
            case 'get': {
              const value = cache.get(`k${s.key}`);
              if (value !== undefined) expect(value).toBeGreaterThanOrEqual(heard[s.key]!);
              break;
            }
            case 'lose':
              if (connected) {
                connected = false;
                queue = [];
                cache.lost();
              }
              break;
            case 'listen':
              if (!connected) {
                connected = true;
                cache.listening();
              }
              break;
          }
        }
        if (!connected) cache.listening();
        connected = true;
        deliverAll();
        for (const read of reads) read.resolve();
        await Promise.all(reads.map((r) => r.done));
        deliverAll();
        for (let k = 0; k < KEYS; k++) {
          const value = cache.get(`k${k}`);
          if (value !== undefined) expect(value).toBe(db[k]);
        }
        expect(cache.stats().entries).toBeLessThanOrEqual(3);
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });

  it('has heard a position only when the projection says the whole batch is in', () => {
    const cache = new BalanceCache<number>({ maxEntries: 10 });
    cache.listening();
    // A batch at 10 split into two payloads: after the first, a consistentWith=10 read must not trust memory.
    cache.changed({ position: 10n, keys: ['t\ta'] });
    expect(cache.heardPosition).toBe(-1n);
    cache.changed({ position: 10n, keys: ['t\tb'] });
    cache.heardUpTo(10n);
    expect(cache.heardPosition).toBe(10n);
  });

  it('does not keep values the caller says are not worth keeping', async () => {
    const cache = new BalanceCache<number | null>({ maxEntries: 10 });
    cache.listening();
    await cache.read(
      'missing',
      async () => null,
      (v) => v !== null,
    );
    expect(cache.get('missing')).toBeUndefined();
    expect(cache.stats().entries).toBe(0);
  });

  it('serves nothing from memory until the notifications are live', async () => {
    const cache = new BalanceCache<number>({ maxEntries: 10 });
    expect(await cache.read('a', async () => 1)).toBe(1);
    expect(cache.get('a')).toBeUndefined();
    cache.listening();
    await cache.read('a', async () => 2);
    expect(cache.get('a')).toBe(2);
    cache.lost();
    expect(cache.get('a')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ live: false, entries: 0 });
  });
});

/** The cache inside PostgresLedgerQueries, fed by the real projection runner's notifications. */
describe('wallet reads through the balance cache', () => {
  let t: TestDatabase;
  let store: PostgresEventStore;
  let runner: ProjectionRunner;
  let cached: PostgresLedgerQueries;
  let direct: PostgresLedgerQueries;
  beforeAll(async () => {
    t = await createTestDatabase();
    store = new PostgresEventStore(t.db);
    runner = new ProjectionRunner({ db: t.db, store, idleFlushMs: 1, batchMaxEvents: 7 });
    runner.start();
    cached = new PostgresLedgerQueries(t.db, { balanceCacheEntries: 100 });
    direct = new PostgresLedgerQueries(t.db);
  });
  afterAll(async () => {
    await runner?.stop();
    await cached?.close();
    await direct?.close();
    await store?.close();
    await t?.dispose();
  });

  const wallets = ['s1', 's2'] as const;
  const readAll = async (q: PostgresLedgerQueries) =>
    Promise.all(TENANTS.flatMap((tenant) => wallets.map((s) => q.getWallet(tenant, s))));

  it('answers exactly what the database holds at every position a writer waited for', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 6 }),
        async (rounds) => {
          run++;
          for (const [i, ops] of rounds.entries()) {
            // Reads racing the projection: whatever they return, they must not stick once it is done.
            const racing = readAll(cached);
            const position = await appendAll(store, buildEvents(ops, `cache-${run}-${i}`));
            await racing;
            expect(await cached.waitForPosition(position, 10_000)).toBe(true);
            expect(await readAll(cached)).toEqual(await readAll(direct));
          }
        },
      ),
      { numRuns: 8 },
    );
    const stats = cached.balanceCacheStats()!;
    expect(stats.live).toBe(true);
    expect(stats.hits).toBeGreaterThan(0);
    expect(stats.invalidations).toBeGreaterThan(0);
  });

  it('is never live with one of its two feeds missing: if either LISTEN fails, reads go to the database', async () => {
    for (const failing of [BALANCES_CHANGED_CHANNEL, PROJECTED_CHANNEL]) {
      let fail = true;
      const db: Database = {
        ...t.db,
        listen: (channel, onNotify, onState) =>
          fail && channel === failing
            ? Promise.reject(new Error(`LISTEN ${channel} timed out`))
            : t.db.listen(channel, onNotify, onState),
      };
      const q = new PostgresLedgerQueries(db, { balanceCacheEntries: 100 });
      try {
        for (let i = 0; i < 3; i++) {
          expect(await readAll(q)).toEqual(await readAll(direct));
          await new Promise((r) => setImmediate(r));
        }
        expect(q.balanceCacheStats()).toMatchObject({ live: false, hits: 0, entries: 0 });
        // Once LISTEN works, the next read subscribes and the cache serves from memory.
        fail = false;
        await readAll(q);
        await eventually(async () => q.balanceCacheStats()!.live, `live after ${failing} recovers`);
        await readAll(q);
        await readAll(q);
        expect(q.balanceCacheStats()!.hits).toBeGreaterThan(0);
        expect(await readAll(q)).toEqual(await readAll(direct));
      } finally {
        await q.close();
      }
    }
  });

  it('starts over when a rebuild swaps the read models in', async () => {
    await readAll(cached);
    const flushes = cached.balanceCacheStats()!.flushes;
    const { position } = await rebuildReadModels({ db: t.db, store });
    await eventually(async () => cached.balanceCacheStats()!.flushes > flushes, 'flush after swap', 5_000);
    expect(await cached.waitForPosition(position, 10_000)).toBe(true);
    expect(await readAll(cached)).toEqual(await readAll(direct));
  });

  it.skipIf(!usingRealPostgres)(
    'bypasses memory while its listener connection is down, and serves from it again once back',
    async () => {
      await readAll(cached);
      const admin = new pg.Client({ connectionString: t.url });
      await admin.connect();
      try {
        const killed = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = $1`,
          [LISTENER_APPLICATION_NAME],
        );
        expect(killed.rowCount).toBeGreaterThan(0);
      } finally {
        await admin.end();
      }
      await eventually(async () => cached.balanceCacheStats()!.live === false, 'listener lost', 5_000);
      // While it is down, a change is not heard: reads must come from the database.
      const position = await appendAll(
        store,
        buildEvents([{ kind: 'post', tenant: 0, from: 0, to: 1, amount: 5, currency: 0 }], 'while-down'),
      );
      expect(await direct.waitForPosition(position, 10_000)).toBe(true);
      expect(await readAll(cached)).toEqual(await readAll(direct));
      await eventually(async () => cached.balanceCacheStats()!.live === true, 'listener back', 10_000);
      const hits = cached.balanceCacheStats()!.hits;
      await readAll(cached);
      await readAll(cached);
      expect(cached.balanceCacheStats()!.hits).toBeGreaterThan(hits);
      expect(await readAll(cached)).toEqual(await readAll(direct));
    },
  );
});
