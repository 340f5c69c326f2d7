import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { applyBatch } from '../../src/projections/ledgerProjection.js';
import { rebuildReadModels } from '../../src/projections/rebuild.js';
import { createReadModelTables, LIVE_SCHEMA, SHADOW_SCHEMA } from '../../src/projections/schema.js';
import { CopyRowBuffer, copyField, copyLine } from '../../src/projections/sql.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';
import { appendAll, type BuiltEvent, buildEvents, dumpSchema, opArb, resetSchema } from './fixtures.js';

const PROPERTY_RUNS = Number(process.env.PROPERTY_RUNS ?? 12);

/** Text with every character COPY text format or an array literal treats specially, and non-ASCII. */
const awkwardText = fc
  .string({
    unit: fc.constantFrom(
      'a',
      'N',
      '.',
      ' ',
      '\t',
      '\n',
      '\r',
      '\\',
      '"',
      "'",
      ',',
      '{',
      '}',
      'é',
      '€',
      '😀',
    ),
    maxLength: 12,
  })
  .map((s) => `x${s}`);

/** Puts awkward text into the free-text fields the projection copies into its rows. */
function withText(e: BuiltEvent, text: string): BuiltEvent {
  const data = { ...e.event.data };
  if (data.entry && typeof data.entry === 'object' && !Array.isArray(data.entry))
    data.entry = { ...data.entry, description: text };
  return {
    streamName: `${e.streamName}${text.replace(/[^a-z]/g, '')}`,
    event: {
      ...e.event,
      data,
      metadata: {
        ...e.event.metadata,
        correlationId: text,
        actor: { id: `${text}\\N`, role: 'finance_admin' },
      },
    },
  };
}

describe('COPY text format', () => {
  it('escapes backslash, tab, newline and carriage return; NULL is \\N; numbers as digits', () => {
    expect(copyField(null)).toBe('\\N');
    expect(copyField('\\N')).toBe('\\\\N');
    expect(copyField('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyField(-42)).toBe('-42');
    const buffer = new CopyRowBuffer([
      ['a', 'text'],
      ['b', 'int8'],
      ['c', 'text'],
    ]);
    buffer.add(['x', 1, null]);
    buffer.add(['y\tz', 2, 'w']);
    expect(buffer.length).toBe(2);
    expect(buffer.text().join('')).toBe('x\t1\t\\N\ny\\tz\t2\tw\n');
    expect(() => copyLine(['x'], 2)).toThrow(/expected 2/);

    // Large batches go out in bounded chunks of whole lines, in order.
    const many = new CopyRowBuffer([['n', 'int8']]);
    for (let i = 0; i < 4_001; i++) many.add([i]);
    const chunks = many.text();
    expect(chunks.length).toBe(3);
    for (const chunk of chunks) expect(chunk.endsWith('\n')).toBe(true);
    expect(chunks.join('')).toBe(Array.from({ length: 4_001 }, (_, i) => `${i}\n`).join(''));
  });
});

describe('shadow replay: COPY path and carried balances', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.dispose();
  });
  beforeEach(async () => {
    await t.db.knex.raw(`DROP SCHEMA IF EXISTS ${SHADOW_SCHEMA} CASCADE`);
    await resetSchema(t.db.knex, LIVE_SCHEMA);
  });

  // PGlite has no COPY FROM STDIN through knex-pglite (sql.ts, bulkLoadMethodOf), so there is no second
  // path to compare with there; CI runs this file against PostgreSQL too.
  it.runIf(usingRealPostgres)(
    'COPY and the unnest INSERT write byte-identical read models for random histories and awkward text',
    async () => {
      await t.db.knex.transaction((trx) => createReadModelTables(trx, SHADOW_SCHEMA));
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(opArb, { minLength: 1, maxLength: 50 }),
          fc.array(awkwardText, { minLength: 1, maxLength: 8 }),
          async (ops, texts) => {
            run++;
            const store = new MemoryEventStore();
            const built = buildEvents(ops, `copy${run}`).map((e, i) => withText(e, texts[i % texts.length]!));
            await appendAll(store, built);
            const events = await store.readAll({ maxCount: 10_000 });
            if (events.length === 0) return;
            const { knex } = t.db;
            await resetSchema(knex, LIVE_SCHEMA);
            await resetSchema(knex, SHADOW_SCHEMA);
            await knex.transaction((trx) =>
              applyBatch(trx, LIVE_SCHEMA, events, -1n, { bulkLoad: 'insert' }),
            );
            await knex.transaction((trx) =>
              applyBatch(trx, SHADOW_SCHEMA, events, -1n, { bulkLoad: 'copy' }),
            );
            expect(await dumpSchema(knex, SHADOW_SCHEMA)).toEqual(await dumpSchema(knex, LIVE_SCHEMA));
          },
        ),
        { numRuns: PROPERTY_RUNS, seed: 5 },
      );
    },
    120_000,
  );

  /** A random history in a store, and the read models one clean batch makes of it (then reset). */
  async function historyAndCleanReadModels(numRuns: number, seed: number, label: string) {
    const store = new MemoryEventStore();
    await appendAll(store, buildEvents(fc.sample(opArb, { numRuns, seed }), label));
    const events = await store.readAll({ maxCount: 10_000 });
    const { knex } = t.db;
    await knex.transaction((trx) => applyBatch(trx, LIVE_SCHEMA, events, -1n));
    const expected = await dumpSchema(knex, LIVE_SCHEMA);
    await resetSchema(knex, LIVE_SCHEMA);
    return { store, expected };
  }

  // Batches span several store reads here (readEvents < batchSize), as they do in a real rebuild.
  it('a rebuild whose balance carry overflows, crashes and resumes equals one clean batch', async () => {
    const { store, expected } = await historyAndCleanReadModels(300, 21, 'carry');
    const { knex } = t.db;

    // A carry of 3 balances overflows in almost every batch: balances are written, dropped and read back.
    let batches = 0;
    await expect(
      rebuildReadModels({
        db: t.db,
        store,
        batchSize: 7,
        readEvents: 3,
        balanceCacheRows: 3,
        afterBatch: () => {
          if (++batches === 12) throw new Error('crash during rebuild');
        },
      }),
    ).rejects.toThrow('crash during rebuild');
    // The crash leaves the shadow's deferred balances behind its postings; the resumed run re-derives them.
    const result = await rebuildReadModels({
      db: t.db,
      store,
      batchSize: 11,
      readEvents: 4,
      balanceCacheRows: 40,
    });
    expect(result.resumed).toBe(true);
    expect(await dumpSchema(knex, LIVE_SCHEMA)).toEqual(expected);
  });

  it('a rebuild crashing before any overflow resumes with balances re-derived from its postings', async () => {
    const { store, expected } = await historyAndCleanReadModels(200, 22, 'derive');
    const { knex } = t.db;

    let batches = 0;
    await expect(
      rebuildReadModels({
        db: t.db,
        store,
        batchSize: 25,
        readEvents: 6,
        afterBatch: () => {
          if (++batches === 5) throw new Error('crash during rebuild');
        },
      }),
    ).rejects.toThrow('crash during rebuild');
    const shadowBalances = (await knex.raw(`SELECT count(*)::int AS n FROM ${SHADOW_SCHEMA}.balances`)) as {
      rows: Array<{ n: number }>;
    };
    // Nothing wrote them yet (the carry never overflowed): the resumed run must derive every one.
    expect(shadowBalances.rows[0]!.n).toBe(0);
    await rebuildReadModels({ db: t.db, store, batchSize: 25 });
    expect(await dumpSchema(knex, LIVE_SCHEMA)).toEqual(expected);
  });
});
