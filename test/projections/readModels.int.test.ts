import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore, RecordedEvent } from '../../src/eventstore/port.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { applyBatch } from '../../src/projections/ledgerProjection.js';
import { PostgresLedgerQueries } from '../../src/projections/postgresLedgerQueries.js';
import { ProjectionRunner } from '../../src/projections/projectionRunner.js';
import { rebuildReadModels } from '../../src/projections/rebuild.js';
import { APP_ROLE, createReadModelTables, LIVE_SCHEMA, SHADOW_SCHEMA } from '../../src/projections/schema.js';
import { verifyReadModels } from '../../src/projections/verifier.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';
import { appendAll, buildEvents, dumpSchema, foldBalances, opArb, resetSchema } from './fixtures.js';

const PROPERTY_RUNS = Number(process.env.PROPERTY_RUNS ?? 12);

const history = (seed: number, length: number) =>
  buildEvents(fc.sample(opArb, { numRuns: length, seed }), `seed${seed}`);

describe('read models: determinism, runner, rebuild, verifier and RLS', () => {
  let t: TestDatabase;
  let queries: PostgresLedgerQueries;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await queries?.close();
    await t?.dispose();
  });
  beforeEach(async () => {
    await t.db.knex.raw(`DROP SCHEMA IF EXISTS ${SHADOW_SCHEMA} CASCADE`);
    await resetSchema(t.db.knex, LIVE_SCHEMA);
    // Each test starts the read models from zero again, so the queries' cached position must too.
    await queries?.close();
    queries = new PostgresLedgerQueries(t.db);
  });

  /** The read models a clean, single-batch replay of the store produces (built in the shadow schema). */
  async function cleanReplay(store: EventStore): Promise<Record<string, unknown[]>> {
    await t.db.knex.raw(`DROP SCHEMA IF EXISTS ${SHADOW_SCHEMA} CASCADE`);
    await t.db.knex.transaction((trx) => createReadModelTables(trx, SHADOW_SCHEMA));
    const events = await store.readAll({ maxCount: 10_000 });
    await t.db.knex.transaction((trx) => applyBatch(trx, SHADOW_SCHEMA, events, -1n));
    const dump = await dumpSchema(t.db.knex, SHADOW_SCHEMA);
    await t.db.knex.raw(`DROP SCHEMA ${SHADOW_SCHEMA} CASCADE`);
    return dump;
  }

  it('incremental projection in random batch splits equals one full replay; as-of balance equals the fold', async () => {
    // Each property run resets both schemas; the runs share one database to stay fast.
    await t.db.knex.transaction((trx) => createReadModelTables(trx, SHADOW_SCHEMA));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
        async (ops, splits, probes) => {
          run++;
          const store = new MemoryEventStore();
          await appendAll(store, buildEvents(ops, `run${run}`));
          const events = await store.readAll({ maxCount: 10_000 });
          if (events.length === 0) return;
          const { knex } = t.db;
          await resetSchema(knex, LIVE_SCHEMA);
          await resetSchema(knex, SHADOW_SCHEMA);

          // Incremental: random batch sizes, one transaction per batch.
          let position = -1n;
          for (let i = 0, s = 0; i < events.length; s++) {
            const size = splits[s % splits.length]!;
            const batch = events.slice(i, i + size);
            position = (await knex.transaction((trx) => applyBatch(trx, LIVE_SCHEMA, batch, position)))
              .position;
            i += size;
          }
          // Full replay: everything in one batch.
          await knex.transaction((trx) => applyBatch(trx, SHADOW_SCHEMA, events, -1n));
          expect(await dumpSchema(knex, LIVE_SCHEMA)).toEqual(await dumpSchema(knex, SHADOW_SCHEMA));

          // Balance as of a random position equals the fold of the events up to it.
          for (const probe of probes) {
            const at: RecordedEvent = events[probe % events.length]!;
            const folded = foldBalances(events, at.position);
            for (const [key, expected] of folded) {
              const [tenant, account, currency] = key.split('/') as [string, string, string];
              const got = await queries.getAccountBalance(
                tenant,
                account,
                { position: at.position },
                { currency },
              );
              expect(got).toMatchObject({
                debitsPending: expected.debitsPending,
                debitsPosted: expected.debitsPosted,
                creditsPending: expected.creditsPending,
                creditsPosted: expected.creditsPosted,
                available: expected.available,
                version: expected.version,
              });
            }
          }
          // And now-balances equal the full fold.
          for (const [key, expected] of foldBalances(events)) {
            const [tenant, account, currency] = key.split('/') as [string, string, string];
            const got = await queries.getAccountBalance(tenant, account, undefined, { currency });
            expect(got?.version).toBe(expected.version);
            expect(got?.available).toBe(expected.available);
          }
        },
      ),
      { numRuns: PROPERTY_RUNS },
    );
  });

  it('applies history and live events, wakes read-your-writes waiters by notification, reports lag', async () => {
    const store = new MemoryEventStore();
    await appendAll(store, history(1, 80));
    const runner = new ProjectionRunner({ db: t.db, store, batchMaxEvents: 25 });
    runner.start();
    try {
      expect(await queries.waitForPosition(await store.headPosition(), 20_000)).toBe(true);
      const live = await appendAll(store, history(2, 10));
      expect(await queries.waitForPosition(live, 20_000)).toBe(true);
      expect(await queries.projectedPosition()).toBe(live);
      expect(await runner.lag()).toMatchObject({ events: 0, ms: 0, position: live });
      // Bounded: a position nobody will reach times out with false.
      expect(await queries.waitForPosition(live + 1_000n, 30)).toBe(false);
      expect(runner.status()).toMatchObject({ state: 'active', position: live });
    } finally {
      await runner.stop();
    }
    expect(runner.status().state).toBe('stopped');
    expect(await dumpSchema(t.db.knex, LIVE_SCHEMA)).toEqual(await cleanReplay(store));
  });

  it('projects from the Postgres event store in the same database', async () => {
    // The only test in this file that writes the database's own event store, so it starts empty.
    const store = new PostgresEventStore(t.db);
    try {
      await appendAll(store, history(12, 40));
      const runner = new ProjectionRunner({ db: t.db, store, batchMaxEvents: 16 });
      runner.start();
      try {
        expect(await queries.waitForPosition(await store.headPosition(), 20_000)).toBe(true);
        const live = await appendAll(store, history(13, 10));
        expect(await queries.waitForPosition(live, 20_000)).toBe(true);
      } finally {
        await runner.stop();
      }
      expect(await dumpSchema(t.db.knex, LIVE_SCHEMA)).toEqual(await cleanReplay(store));
      const verified = await verifyReadModels({ db: t.db, store, clearingMaxAgeMs: Number.MAX_SAFE_INTEGER });
      expect(verified.differences).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('crash safety: failures inside the transaction and between batches never lose or repeat an event', async () => {
    const store = new MemoryEventStore();
    const events = history(3, 150);
    await appendAll(store, events.slice(0, 100));
    let batches = 0;
    let crashes = 0;
    const makeRunner = (batchMaxEvents: number) =>
      new ProjectionRunner({
        db: t.db,
        store,
        batchMaxEvents,
        backoffInitialMs: 1,
        backoffMaxMs: 5,
        onError: () => undefined,
        hooks: {
          // Applied but not committed: the transaction rolls back.
          beforeCommit: () => {
            if (++batches % 3 === 0) {
              crashes++;
              throw new Error('crash before commit');
            }
          },
          // Committed, then the process "dies" before the next batch.
          afterCommit: () => {
            if (batches % 4 === 1) {
              crashes++;
              throw new Error('crash between batches');
            }
          },
        },
      });
    for (const [round, size] of [7, 3, 11].entries()) {
      const runner = makeRunner(size);
      runner.start();
      if (round === 1) await appendAll(store, events.slice(100));
      const head = await store.headPosition();
      expect(await queries.waitForPosition(head, 30_000)).toBe(true);
      await runner.stop();
    }
    expect(crashes).toBeGreaterThan(5);
    const dump = await dumpSchema(t.db.knex, LIVE_SCHEMA);
    expect(dump).toEqual(await cleanReplay(store));
    const applied = await t.db.knex.raw(`SELECT events_applied FROM ${LIVE_SCHEMA}.checkpoint`);
    expect(Number(applied.rows[0].events_applied)).toBe(events.length);
    expect(dump.audit_events).toHaveLength(events.length);
  });

  it('two runners: one works, one waits; stopping the first hands over', async () => {
    const store = new MemoryEventStore();
    await appendAll(store, history(4, 30));
    const a = new ProjectionRunner({ db: t.db, store, lockPollMs: 20 });
    const b = new ProjectionRunner({ db: t.db, store, lockPollMs: 20 });
    a.start();
    b.start();
    try {
      expect(await queries.waitForPosition(await store.headPosition(), 20_000)).toBe(true);
      const states = [a.status().state, b.status().state].sort();
      expect(states).toEqual(['active', 'waiting_for_lock']);
      const [active, waiting] = a.status().state === 'active' ? [a, b] : [b, a];
      await active.stop();
      const more = await appendAll(store, history(5, 10));
      expect(await queries.waitForPosition(more, 20_000)).toBe(true);
      expect(waiting.status().state).toBe('active');
    } finally {
      await a.stop();
      await b.stop();
    }
    // Read after stop: the NOTIFY can wake the waiter before the runner updates its own counters.
    expect(a.status().eventsApplied).toBeGreaterThan(0);
    expect(b.status().eventsApplied).toBeGreaterThan(0);
    expect(await dumpSchema(t.db.knex, LIVE_SCHEMA)).toEqual(await cleanReplay(store));
  });

  // Real Postgres only: PGlite is one in-process session, so there is no second session to kill, and its
  // runner lock is in-process (runnerLock.ts); the in-process handover is covered by the test above.
  it.runIf(usingRealPostgres)(
    'a runner whose database session dies loses the lock to the waiting one',
    async () => {
      const store = new MemoryEventStore();
      await appendAll(store, history(6, 20));
      const a = new ProjectionRunner({ db: t.db, store, lockPollMs: 20, onError: () => undefined });
      a.start();
      expect(await queries.waitForPosition(await store.headPosition(), 20_000)).toBe(true);
      const b = new ProjectionRunner({ db: t.db, store, lockPollMs: 20, onError: () => undefined });
      b.start();
      try {
        // Kill the lock holder's session, as if its process had died.
        await t.db.knex.raw(
          `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 7245010`,
        );
        // The waiting runner notices the freed lock on its next poll (no event to await for that).
        await vi.waitFor(() => expect(b.status().state).toBe('active'), { timeout: 10_000, interval: 20 });
        const more = await appendAll(store, history(7, 10));
        expect(await queries.waitForPosition(more, 20_000)).toBe(true);
        // The killed runner reconnects with a new session and takes over again when the other stops.
        await b.stop();
        await vi.waitFor(() => expect(a.status().state).toBe('active'), { timeout: 10_000, interval: 20 });
        const again = await appendAll(store, history(14, 10));
        expect(await queries.waitForPosition(again, 20_000)).toBe(true);
      } finally {
        await a.stop();
        await b.stop();
      }
      expect(await dumpSchema(t.db.knex, LIVE_SCHEMA)).toEqual(await cleanReplay(store));
    },
  );

  it('row-level security: no tenant setting sees nothing; tenant A never sees tenant B', async () => {
    const store = new MemoryEventStore();
    await appendAll(store, history(8, 60));
    await t.db.knex.transaction(async (trx) =>
      applyBatch(trx, LIVE_SCHEMA, await store.readAll({ maxCount: 10_000 }), -1n),
    );
    const tables = ['balances', 'postings', 'journal_entries', 'audit_events'];
    const counts = (setting: string | null) =>
      t.db.knex.transaction(async (trx) => {
        await trx.raw(`SELECT set_config('role', ?, true)`, [APP_ROLE]);
        if (setting !== null) await trx.raw(`SELECT set_config('app.tenant_id', ?, true)`, [setting]);
        const out: Record<string, number[]> = {};
        for (const table of tables) {
          const r = await trx.raw(
            `SELECT count(*) FILTER (WHERE tenant_id = 'ta')::int AS a, count(*) FILTER (WHERE tenant_id = 'tb')::int AS b
               FROM ${LIVE_SCHEMA}.${table}`,
          );
          out[table] = [r.rows[0].a, r.rows[0].b];
        }
        return out;
      });
    const all = await t.db.knex.raw(`SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.audit_events`);
    expect(all.rows[0].n).toBe(Number(await store.headPosition()) + 1);
    for (const table of tables) {
      expect((await counts(null))[table]).toEqual([0, 0]);
      const [a, b] = (await counts('ta'))[table]!;
      expect(b).toBe(0);
      expect(a).toBeGreaterThan(0);
      expect((await counts('tb'))[table]![0]).toBe(0);
    }
    // The app role cannot write.
    await expect(
      t.db.knex.transaction(async (trx) => {
        await trx.raw(`SELECT set_config('role', ?, true)`, [APP_ROLE]);
        await trx.raw(`DELETE FROM ${LIVE_SCHEMA}.balances`);
      }),
    ).rejects.toThrow(/permission denied/);
    // The trial balance through the queries is per tenant and zero.
    for (const tenant of ['ta', 'tb']) {
      for (const row of await queries.getTrialBalance(tenant)) {
        expect(row.postedDifference).toBe(0);
        expect(row.pendingDifference).toBe(0);
      }
    }
  });

  it('rebuild swaps fresh tables in while reads keep working, and resumes after a crash', async () => {
    const store = new MemoryEventStore();
    await appendAll(store, history(9, 120));
    const runner = new ProjectionRunner({ db: t.db, store });
    runner.start();
    const head = await store.headPosition();
    expect(await queries.waitForPosition(head, 20_000)).toBe(true);
    await runner.stop();
    const before = await dumpSchema(t.db.knex, LIVE_SCHEMA);
    const trial = await queries.getTrialBalance('ta');

    // First attempt crashes after its second batch; reads in between still see the live models.
    let batches = 0;
    await expect(
      rebuildReadModels({
        db: t.db,
        store,
        batchSize: 20,
        afterBatch: () => {
          if (++batches === 2) throw new Error('crash during rebuild');
        },
      }),
    ).rejects.toThrow('crash during rebuild');
    expect(await queries.getTrialBalance('ta')).toEqual(trial);
    expect(await queries.projectedPosition()).toBe(head);

    const seen: string[] = [];
    const result = await rebuildReadModels({
      db: t.db,
      store,
      batchSize: 20,
      onProgress: (p) => seen.push(p.phase),
    });
    expect(result).toMatchObject({ resumed: true, position: head, eventsApplied: Number(head) + 1 - 40 });
    expect(seen).toContain('replaying');
    expect(seen[seen.length - 1]).toBe('done');
    const after = await dumpSchema(t.db.knex, LIVE_SCHEMA);
    expect(after).toEqual(before);
    expect(await queries.getTrialBalance('ta')).toEqual(trial);

    // A runner started after the swap continues from the swapped-in checkpoint.
    const runner2 = new ProjectionRunner({ db: t.db, store });
    runner2.start();
    const more = await appendAll(store, history(10, 10));
    expect(await queries.waitForPosition(more, 20_000)).toBe(true);
    await runner2.stop();
    // Fixture events are dated 2026-01-01, so old open holds are not what this checks.
    const verified = await verifyReadModels({ db: t.db, store, clearingMaxAgeMs: Number.MAX_SAFE_INTEGER });
    expect(verified.differences).toEqual([]);
  });

  it('verifier: clean read models pass; a tampered total and a wrong version are reported', async () => {
    const store = new MemoryEventStore();
    await appendAll(store, history(11, 80));
    await t.db.knex.transaction(async (trx) =>
      applyBatch(trx, LIVE_SCHEMA, await store.readAll({ maxCount: 10_000 }), -1n),
    );
    const clean = await verifyReadModels({ db: t.db, store, clearingMaxAgeMs: Number.MAX_SAFE_INTEGER });
    const count = Number(await store.headPosition()) + 1;
    expect(clean).toMatchObject({ ok: true, totalDifferences: 0, eventsFolded: count });

    const [victim, other] = (
      await t.db.knex.raw(
        `SELECT tenant_id, account, currency FROM ${LIVE_SCHEMA}.balances ORDER BY 1, 2, 3 LIMIT 2`,
      )
    ).rows;
    await t.db.knex.raw(
      `UPDATE ${LIVE_SCHEMA}.balances SET credits_posted = credits_posted + 1 WHERE tenant_id = ? AND account = ? AND currency = ?`,
      [victim.tenant_id, victim.account, victim.currency],
    );
    await t.db.knex.raw(
      `UPDATE ${LIVE_SCHEMA}.balances SET version = version + 1 WHERE tenant_id = ? AND account = ? AND currency = ?`,
      [other.tenant_id, other.account, other.currency],
    );
    const tampered = await verifyReadModels({ db: t.db, store, clearingMaxAgeMs: Number.MAX_SAFE_INTEGER });
    expect(tampered.ok).toBe(false);
    const kinds = tampered.differences.map((d) => `${d.kind}:${d.account}`);
    expect(kinds).toContain(`balance_mismatch:${victim.account}`);
    expect(kinds).toContain(`balance_mismatch:${other.account}`);
    expect(kinds).toContain(`version_gap:${other.account}`);
    expect(tampered.differences.some((d) => d.kind === 'trial_balance_not_zero')).toBe(true);

    // Clearing accounts left non-zero are found by age.
    const stale = await verifyReadModels({ db: t.db, store, clearingMaxAgeMs: 0 });
    const clearing = (
      await t.db.knex.raw(
        `SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.balances WHERE account LIKE 'clearing:%'
           AND (credits_posted <> debits_posted OR credits_pending <> debits_pending)`,
      )
    ).rows[0].n;
    expect(stale.differences.filter((d) => d.kind === 'clearing_not_zero')).toHaveLength(clearing);
  });

  it('verifier: the daily metrics carry money, so a tampered one is reported', async () => {
    const store = new MemoryEventStore();
    await appendAll(store, history(12, 60));
    await t.db.knex.raw(`TRUNCATE ${LIVE_SCHEMA}.balances, ${LIVE_SCHEMA}.postings, ${LIVE_SCHEMA}.journal_entries,
      ${LIVE_SCHEMA}.audit_events, ${LIVE_SCHEMA}.daily_metrics, ${LIVE_SCHEMA}.daily_active_wallets,
      ${LIVE_SCHEMA}.search_terms, ${LIVE_SCHEMA}.event_refs, ${LIVE_SCHEMA}.bookings, ${LIVE_SCHEMA}.payouts,
      ${LIVE_SCHEMA}.top_ups, ${LIVE_SCHEMA}.tutor_payouts`);
    await t.db.knex.raw(`UPDATE ${LIVE_SCHEMA}.checkpoint SET position = -1`);
    await t.db.knex.transaction(async (trx) =>
      applyBatch(trx, LIVE_SCHEMA, await store.readAll({ maxCount: 10_000 }), -1n),
    );
    const clean = await verifyReadModels({ db: t.db, store, clearingMaxAgeMs: Number.MAX_SAFE_INTEGER });
    expect(clean.differences).toEqual([]);
    const metrics = (await t.db.knex.raw(`SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.daily_metrics`))
      .rows[0].n;
    expect(metrics).toBeGreaterThan(0);
    await t.db.knex.raw(
      `UPDATE ${LIVE_SCHEMA}.daily_metrics SET amount = amount + 1 WHERE metric = 'held_for_students'`,
    );
    const tampered = await verifyReadModels({ db: t.db, store, clearingMaxAgeMs: Number.MAX_SAFE_INTEGER });
    expect(tampered.ok).toBe(false);
    const details = tampered.differences
      .filter((d) => d.kind === 'daily_metric_mismatch')
      .map((d) => d.detail);
    expect(details.some((d) => d.startsWith('held_for_students on '))).toBe(true);
    expect(details.some((d) => d.startsWith('money held for students: daily metrics sum to'))).toBe(true);
  });
});
