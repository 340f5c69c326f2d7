import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toApiError } from '../../src/api/problem.js';
import type { Database } from '../../src/db/database.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { applyBatch } from '../../src/projections/ledgerProjection.js';
import { PostgresLedgerQueries } from '../../src/projections/postgresLedgerQueries.js';
import {
  inlineBindings,
  queryAsTenant,
  ReadQueueFullError,
  TenantReadBatcher,
} from '../../src/projections/readTransaction.js';
import { LIVE_SCHEMA } from '../../src/projections/schema.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { appendAll, buildEvents, opArb } from './fixtures.js';

/**
 * The one-round-trip read path (queryAsTenant) keeps readAsTenant's guarantee: statements run as
 * ledger_app under forced RLS with the tenant of the call, and a pooled connection carries nothing over
 * to its next user. The pool is one connection, so every call below reuses the same session.
 */
describe('queryAsTenant: one message, same isolation as a read transaction', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase({ poolMax: 1 });
    const store = new MemoryEventStore();
    await appendAll(store, buildEvents(fc.sample(opArb, { numRuns: 60, seed: 7 }), 'qat'));
    await t.db.knex.transaction(async (trx) =>
      applyBatch(trx, LIVE_SCHEMA, await store.readAll({ maxCount: 10_000 }), -1n),
    );
  });
  afterAll(async () => {
    await t?.dispose();
  });

  const session = async () =>
    (
      await t.db.knex.raw(
        `SELECT current_user AS who, coalesce(current_setting('app.tenant_id', true), '') AS tenant`,
      )
    ).rows[0] as { who: string; tenant: string };

  it('a statement that forgets its tenant filter sees only the tenant of the call', async () => {
    const total = (await t.db.knex.raw(`SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.postings`)).rows[0].n;
    const counts = async (tenant: string) => {
      const [rows] = await queryAsTenant(t.db, tenant, [
        {
          sql: `SELECT tenant_id, count(*)::int AS n FROM ${LIVE_SCHEMA}.postings GROUP BY tenant_id`,
          bindings: [],
        },
      ]);
      return rows!;
    };
    const a = await counts('ta');
    const b = await counts('tb');
    expect(a.map((r) => r.tenant_id)).toEqual(['ta']);
    expect(b.map((r) => r.tenant_id)).toEqual(['tb']);
    expect(Number(a[0]!.n) + Number(b[0]!.n)).toBe(total);
    expect(await counts('nobody')).toEqual([]);
  });

  it('the reused connection carries neither the role nor the tenant to its next user', async () => {
    const before = await session();
    expect(before.tenant).toBe('');
    const [inside] = await queryAsTenant(t.db, 'ta', [
      { sql: `SELECT current_user AS who, current_setting('app.tenant_id', true) AS tenant`, bindings: [] },
    ]);
    expect(inside![0]).toEqual({ who: 'ledger_app', tenant: 'ta' });
    expect(await session()).toEqual(before);
    // A failing statement rolls the whole message back: the next user is still clean.
    await expect(
      queryAsTenant(t.db, 'tb', [
        { sql: `SELECT count(*) FROM ${LIVE_SCHEMA}.balances`, bindings: [] },
        { sql: 'SELECT 1 / 0', bindings: [] },
      ]),
    ).rejects.toThrow(/division by zero/);
    expect(await session()).toEqual(before);
    // And tenant tb's reads after ta's see nothing of ta.
    const [rows] = await queryAsTenant(t.db, 'tb', [
      { sql: `SELECT DISTINCT tenant_id FROM ${LIVE_SCHEMA}.balances`, bindings: [] },
    ]);
    expect(rows!.map((r) => r.tenant_id)).toEqual(['tb']);
  });

  it('the read role cannot write, even inside the message', async () => {
    await expect(
      queryAsTenant(t.db, 'ta', [{ sql: `DELETE FROM ${LIVE_SCHEMA}.balances`, bindings: [] }]),
    ).rejects.toThrow(/permission denied/);
    expect(
      (await t.db.knex.raw(`SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.balances`)).rows[0].n,
    ).toBeGreaterThan(0);
  });

  it('values are data, never SQL: quotes, backslashes and placeholders round-trip', async () => {
    const tricky = [`o'brien`, `a\\'b`, `'); DELETE FROM ${LIVE_SCHEMA}.balances; --`, '?', `\\`, 'é€'];
    for (const value of tricky) {
      const [rows] = await queryAsTenant(t.db, 'ta', [
        { sql: 'SELECT ?::text AS v, ? AS n', bindings: [value, 7] },
      ]);
      expect(rows![0]).toEqual({ v: value, n: 7 });
    }
    expect(
      (await t.db.knex.raw(`SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.balances`)).rows[0].n,
    ).toBeGreaterThan(0);
  });

  it('refuses what it cannot inline safely', async () => {
    await expect(queryAsTenant(t.db, 'ta', [{ sql: 'SELECT ?', bindings: ['a\u0000b'] }])).rejects.toThrow(
      /not allowed/,
    );
    await expect(queryAsTenant(t.db, 'TA; drop', [{ sql: 'SELECT 1', bindings: [] }])).rejects.toThrow(
      /tenantId/,
    );
    expect(() => inlineBindings('SELECT ?', [0.5])).toThrow(/safe integers/);
    expect(() => inlineBindings('SELECT ?, ?', ['x'])).toThrow(/placeholders/);
    expect(() => inlineBindings('SELECT 1; SELECT ?', ['x'])).toThrow(/single statement/);
  });

  it('the queries answer through it exactly as the read models hold them', async () => {
    const queries = new PostgresLedgerQueries(t.db);
    try {
      const direct = (
        await t.db.knex.raw(
          `SELECT account, currency, available FROM ${LIVE_SCHEMA}.balances WHERE tenant_id = 'ta' AND account = 'student:s1:wallet'`,
        )
      ).rows as Array<{ currency: string; available: number }>;
      expect(direct.length).toBeGreaterThan(0);
      for (const row of direct) {
        const balance = await queries.getAccountBalance('ta', 'student:s1:wallet', undefined, {
          currency: row.currency,
        });
        expect(balance?.available).toBe(Number(row.available));
      }
      // Another tenant's account is invisible however it is asked for.
      expect(
        await queries.getAccountBalance('nobody', 'student:s1:wallet', undefined, { currency: 'usd' }),
      ).toBe(null);
      expect(await queries.getTrialBalance('nobody')).toEqual([]);
    } finally {
      await queries.close();
    }
  });

  /** The test database, counting the messages sent. */
  function counted(): { db: Database; messages: () => number } {
    let messages = 0;
    const db: Database = {
      ...t.db,
      simpleQuery: (sql) => {
        messages++;
        return t.db.simpleQuery(sql);
      },
    };
    return { db, messages: () => messages };
  }

  const forgetfulRead = (tenant: string) => ({
    tenantId: tenant,
    statements: [
      { sql: `SELECT DISTINCT tenant_id FROM ${LIVE_SCHEMA}.balances ORDER BY tenant_id`, bindings: [] },
      { sql: `SELECT current_setting('app.tenant_id', true) AS tenant`, bindings: [] },
    ],
  });

  it('group read: concurrent reads of different tenants share messages, each sees only its tenant', async () => {
    const { db, messages } = counted();
    const batcher = new TenantReadBatcher(db, { maxConcurrentMessages: 1, maxReadsPerMessage: 50 });
    const tenants = Array.from({ length: 30 }, (_, i) => ['ta', 'tb', 'nobody'][i % 3]!);
    const results = await Promise.all(tenants.map((tn) => batcher.read(tn, forgetfulRead(tn).statements)));
    // The first read goes alone; the 29 that queued behind it travel together.
    expect(messages()).toBe(2);
    results.forEach((rows, i) => {
      const tenant = tenants[i]!;
      expect(rows[0]!.map((r) => r.tenant_id)).toEqual(tenant === 'nobody' ? [] : [tenant]);
      expect(rows[1]).toEqual([{ tenant }]);
    });
    const after = await session();
    expect(after.tenant).toBe('');
    expect(after.who).not.toBe('ledger_app');
  });

  it('group read: a failing read fails alone, its neighbours are answered', async () => {
    const { db } = counted();
    const batcher = new TenantReadBatcher(db, { maxConcurrentMessages: 1, maxReadsPerMessage: 50 });
    const reads = [
      batcher.read('ta', forgetfulRead('ta').statements),
      batcher.read('tb', forgetfulRead('tb').statements),
      batcher.read('ta', [{ sql: 'SELECT 1 / 0', bindings: [] }]),
      batcher.read('tb', forgetfulRead('tb').statements),
    ];
    const settled = await Promise.allSettled(reads);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const tenantsSeen = settled.flatMap((r) =>
      r.status === 'fulfilled' ? [r.value[0]!.map((x) => x.tenant_id)] : [],
    );
    expect(tenantsSeen).toEqual([['ta'], ['tb'], ['tb']]);
  });

  it('group read: bounded queue and batch size', async () => {
    const { db, messages } = counted();
    const batcher = new TenantReadBatcher(db, {
      maxConcurrentMessages: 1,
      maxReadsPerMessage: 4,
      maxQueuedReads: 9,
    });
    const reads = Array.from({ length: 11 }, () => batcher.read('ta', forgetfulRead('ta').statements));
    const settled = await Promise.allSettled(reads);
    // One went out at once, nine queued, the eleventh was refused; the nine went in messages of <= 4.
    expect(settled.filter((r) => r.status === 'rejected')).toHaveLength(1);
    const refused = (settled[10] as PromiseRejectedResult).reason;
    expect(refused).toBeInstanceOf(ReadQueueFullError);
    // The API sheds it as 503 with Retry-After, not as a 500.
    expect(toApiError(refused)).toMatchObject({ status: 503, code: 'unavailable' });
    expect(messages()).toBe(1 + 3);
  });
});
