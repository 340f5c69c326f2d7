import fc from 'fast-check';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import {
  effectiveAtOf,
  nextPeriod,
  periodEndMs,
  periodOf,
  periodStartMs,
} from '../../src/domain/effectiveTime.js';
import { DomainError } from '../../src/domain/errors.js';
import { decodeEvent, entryOf } from '../../src/domain/events.js';
import { PERIOD_CLOSE_GRACE_MS } from '../../src/domain/periods.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { PostgresConsoleQueries } from '../../src/projections/consoleQueries.js';
import { EFFECTIVE_AS_OF_INDEX, effectiveSeek } from '../../src/projections/effectivePostings.js';
import { PostgresLedgerQueries } from '../../src/projections/postgresLedgerQueries.js';
import { ProjectionRunner } from '../../src/projections/projectionRunner.js';
import { readAsTenant } from '../../src/projections/readTransaction.js';
import { rebuildReadModels } from '../../src/projections/rebuild.js';
import { LIVE_SCHEMA } from '../../src/projections/schema.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { appendAll, buildEvents, opArb as historyOpArb } from './fixtures.js';

/**
 * Backdated entries and closed periods (docs/ledger-flows.md, "Backdated entries and closed periods"),
 * against a reference model: random adjustments (backdated by up to two months, on unconstrained
 * accounts and a wallet) and period closes, with the clock moving on by hours to weeks between them.
 * Then, for random (T, K): every account's balance as of effective time T as known at K equals the
 * model's fold of the accepted entries recorded by K and effective by T; the statement as known at K
 * lists exactly those entries in effective order; and the event log holds no entry effective inside
 * a period that was closed before it was appended.
 */
const ACCOUNTS = ['platform:expense:disputes', 'stripe:balance', 'student:s1:wallet'] as const;
const HOUR_MS = 3_600_000;
const START_MS = Date.parse('2026-01-10T00:00:00.000Z');

type Op =
  | { kind: 'adjust'; account: number; debit: boolean; amount: number; backHours: number; waitHours: number }
  | { kind: 'close'; skip: number; waitHours: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('adjust' as const),
      account: fc.nat(ACCOUNTS.length - 1),
      debit: fc.boolean(),
      amount: fc.integer({ min: 1, max: 1_000 }),
      backHours: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 24 * 60 })),
      waitHours: fc.integer({ min: 0, max: 24 * 12 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('close' as const),
      // 0: the next period in order; 1: the one after it (out of order, must be refused).
      skip: fc.constantFrom(0, 0, 0, 1),
      waitHours: fc.integer({ min: 0, max: 24 * 12 }),
    }),
  },
);

interface ModelEntry {
  entryId: string;
  account: string;
  debit: boolean;
  amount: number;
  effectiveMs: number;
  knownMs: number;
}

describe('bi-temporal balances and closed periods (property, against a reference model)', () => {
  let t: TestDatabase;
  let store: PostgresEventStore;
  let service: LedgerService;
  let runner: ProjectionRunner;
  let queries: PostgresLedgerQueries;
  let consoleQueries: PostgresConsoleQueries;
  let nowMs = START_MS;

  beforeAll(async () => {
    t = await createTestDatabase();
    store = new PostgresEventStore(t.db);
    service = createLedgerService({ store, clock: () => new Date(nowMs) });
    runner = new ProjectionRunner({ db: t.db, store, idleFlushMs: 1 });
    runner.start();
    queries = new PostgresLedgerQueries(t.db);
    consoleQueries = new PostgresConsoleQueries(t.db);
  }, 180_000);
  afterAll(async () => {
    await runner?.stop();
    await queries?.close();
    await t?.dispose();
  });

  it('balances as of (T, K) equal the fold of the entries known at K effective by T; none lands in a closed period', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 14 }),
        fc.nat(),
        async (ops, sampleSeed) => {
          const tenantId = `bt${run++}`;
          nowMs = START_MS;
          const startHead = await store.headPosition();
          const ctx = (i: number): CommandContext => ({
            tenantId,
            actor: { id: `fin${i % 2}`, role: 'finance_admin' },
            idempotencyKey: `k${i}`,
            correlationId: `c${i}`,
            causationId: `c${i}`,
          });
          const model: ModelEntry[] = [];
          let closedThrough: string | null = null;
          let walletBalance = 0;
          for (const [i, op] of ops.entries()) {
            nowMs += op.waitHours * HOUR_MS + 1_000;
            if (op.kind === 'close') {
              const first = periodOf(nowMs - 40 * 24 * HOUR_MS);
              let period: string = closedThrough === null ? first : nextPeriod(closedThrough);
              if (op.skip) period = nextPeriod(period);
              // The first close may name any ended month (it closes the books up to it).
              const inOrder = op.skip === 0 || closedThrough === null;
              const ended = nowMs >= periodEndMs(period) + PERIOD_CLOSE_GRACE_MS;
              const attempt = service.closePeriod(ctx(i), { period });
              if (inOrder && ended) {
                await attempt;
                closedThrough = period;
              } else {
                await expect(attempt).rejects.toMatchObject({ code: 'invalid_state' });
              }
              continue;
            }
            const account = ACCOUNTS[op.account]!;
            const wallet = account.startsWith('student:');
            const effectiveMs = nowMs - op.backHours * HOUR_MS;
            const effectivePeriod = periodOf(effectiveMs);
            const direction =
              wallet && (walletBalance < op.amount || !op.debit) ? 'credit' : op.debit ? 'debit' : 'credit';
            const attempt = service.adjust(ctx(i), {
              account,
              direction,
              amount: { amount: op.amount, currency: 'usd' },
              reason: 'property',
              ...(op.backHours > 0 ? { effectiveAt: new Date(effectiveMs).toISOString() } : {}),
            });
            if (closedThrough !== null && effectivePeriod <= closedThrough) {
              await expect(attempt).rejects.toMatchObject({
                code: 'period_closed',
                details: { period: effectivePeriod },
              });
            } else if (wallet && effectiveMs < periodStartMs(periodOf(nowMs))) {
              await expect(attempt).rejects.toMatchObject({ code: 'validation_failed' });
            } else {
              const result = await attempt;
              model.push({
                entryId: result.entryId,
                account,
                debit: direction === 'debit',
                amount: op.amount,
                effectiveMs,
                knownMs: nowMs,
              });
              if (wallet) walletBalance += direction === 'credit' ? op.amount : -op.amount;
            }
          }
          const head = await store.headPosition();
          expect(await queries.waitForPosition(head, 30_000)).toBe(true);

          // Nothing in the log is effective inside a period closed before it was appended.
          const events = await store.readAll({ maxCount: 10_000, after: startHead });
          let closed: string | null = null;
          for (const stored of events) {
            const event = decodeEvent(stored);
            if (event.tenantId !== tenantId) continue;
            if (event.type === 'PeriodClosed') closed = event.data.period;
            else if (entryOf(event) && closed !== null) {
              expect(
                periodOf(Date.parse(effectiveAtOf(event))) > closed,
                `${event.type} at ${event.position}`,
              ).toBe(true);
            }
          }

          // Random (T, K) and the instants that matter: every entry's effective and known times.
          const times = [
            ...model.flatMap((m) => [m.effectiveMs, m.knownMs, m.effectiveMs - 1]),
            START_MS,
            nowMs,
          ];
          const random = fc.sample(fc.integer({ min: START_MS - HOUR_MS, max: nowMs + HOUR_MS }), {
            numRuns: 6,
            seed: sampleSeed,
          });
          const instants = [...times, ...random];
          const pairs = fc.sample(fc.tuple(fc.constantFrom(...instants), fc.constantFrom(...instants)), {
            numRuns: 12,
            seed: sampleSeed,
          });
          for (const [T, K] of pairs) {
            for (const account of ACCOUNTS) {
              const known = model.filter(
                (m) => m.account === account && m.knownMs <= K && m.effectiveMs <= T,
              );
              const debits = known.filter((m) => m.debit).reduce((s, m) => s + m.amount, 0);
              const credits = known.filter((m) => !m.debit).reduce((s, m) => s + m.amount, 0);
              const b = await queries.getAccountBalance(tenantId, account, {
                time: new Date(T),
                knownAt: new Date(K),
              });
              const where = `${account} as of ${new Date(T).toISOString()} known at ${new Date(K).toISOString()}`;
              expect(b?.debitsPosted ?? 0, where).toBe(debits);
              expect(b?.creditsPosted ?? 0, where).toBe(credits);
              // The statement as known at K, in effective order (ties: recorded order).
              const statement = await consoleQueries.getStatement(tenantId, account, {
                order: 'asc',
                limit: 200,
                asOf: new Date(T),
                knownAt: new Date(K),
              });
              const expected = [...known]
                .sort((a, b) => a.effectiveMs - b.effectiveMs || a.knownMs - b.knownMs)
                .map((m) => m.entryId);
              expect(statement?.items.map((i) => i.entryId) ?? [], where).toEqual(expected);
            }
          }
        },
      ),
      { numRuns: 12 },
    );
  }, 600_000);

  it('a close and a backdated adjustment decided against the same periods revision: one of them is refused', async () => {
    const tenantId = 'btrace';
    nowMs = Date.parse('2026-03-05T00:00:00.000Z');
    const ctx = (key: string): CommandContext => ({
      tenantId,
      actor: { id: key, role: 'finance_admin' },
      idempotencyKey: key,
      correlationId: key,
      causationId: key,
    });
    for (let round = 0; round < 5; round++) {
      const period = `2026-0${round + 1}`;
      const effectiveAt = new Date(periodStartMs(period) + 10 * HOUR_MS).toISOString();
      nowMs = periodEndMs(period) + PERIOD_CLOSE_GRACE_MS + 1_000;
      const [close, adjust] = await Promise.allSettled([
        service.closePeriod(ctx(`close${round}`), { period }),
        service.adjust(ctx(`adj${round}`), {
          account: 'stripe:balance',
          direction: 'credit',
          amount: { amount: 5, currency: 'usd' },
          reason: 'race',
          effectiveAt,
        }),
      ]);
      expect(close.status).toBe('fulfilled');
      if (adjust.status === 'rejected') {
        expect(adjust.reason).toBeInstanceOf(DomainError);
        expect((adjust.reason as DomainError).code).toBe('period_closed');
      }
      // Whatever the interleaving, the log says the adjustment came before the close, or not at all.
      const events = (await store.readStream(`period-${tenantId}.ledger`, { maxCount: 1_000 })).map(
        decodeEvent,
      );
      const closeAt = events.findIndex((e) => e.type === 'PeriodClosed' && e.data.period === period);
      const adjustedAt = events.findIndex(
        (e) => e.type === 'LedgerAdjustedBackdated' && e.data.effectiveAt === effectiveAt,
      );
      expect(closeAt).toBeGreaterThanOrEqual(0);
      if (adjust.status === 'fulfilled') expect(adjustedAt).toBeLessThan(closeAt);
      else expect(adjustedAt).toBe(-1);
    }
  });
});

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Filter?: string;
  Plans?: PlanNode[];
}
const planNodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(planNodes)];

async function planOf(knex: Knex, tenantId: string, sql: string, bindings: unknown[]): Promise<PlanNode[]> {
  const r = (await readAsTenant(knex, tenantId, (trx) =>
    trx.raw(`EXPLAIN (FORMAT JSON) ${sql}`, bindings as string[]),
  )) as { rows: Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> | string }> };
  const raw = r.rows[0]!['QUERY PLAN'];
  const doc = typeof raw === 'string' ? (JSON.parse(raw) as Array<{ Plan: PlanNode }>) : raw;
  return planNodes(doc[0]!.Plan);
}

describe('the bi-temporal as-of index', () => {
  let t: TestDatabase | undefined;
  afterAll(async () => {
    await t?.dispose();
  });

  it('"as of T as known at K" and "as of T" are each one index seek, with no filter or sort', async () => {
    t = await createTestDatabase();
    const store = new MemoryEventStore();
    await appendAll(store, buildEvents(fc.sample(historyOpArb, { numRuns: 3_000, seed: 11 }), 'bt11'));
    await rebuildReadModels({ db: t.db, store, batchSize: 500 });
    const count = (await t.db.knex.raw(
      `SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.effective_postings`,
    )) as {
      rows: Array<{ n: number }>;
    };
    expect(count.rows[0]!.n).toBeGreaterThan(1_000);
    const T = new Date('2026-01-01T00:25:00.000Z');
    const K = new Date('2026-01-01T00:40:00.000Z');
    for (const [sql, bindings] of [
      effectiveSeek(LIVE_SCHEMA, 'ta', 'stripe:balance', 'usd', T, K),
      effectiveSeek(LIVE_SCHEMA, 'ta', 'stripe:balance', 'usd', T),
    ]) {
      const nodes = await planOf(t.db.knex, 'ta', sql, bindings);
      const scans = nodes.filter((n) => n['Node Type'] === 'Index Scan');
      expect(scans.map((n) => n['Index Name'])).toEqual([EFFECTIVE_AS_OF_INDEX.name]);
      expect(scans[0]!.Filter).toBeUndefined();
      expect(nodes.map((n) => n['Node Type'])).not.toContain('Sort');
      if (bindings.length === 5) expect(scans[0]!['Index Cond']).toMatch(/known_at/);
    }
  }, 180_000);
});
