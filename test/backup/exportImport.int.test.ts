import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportEvents } from '../../src/backup/exportEvents.js';
import { ExportFormatError } from '../../src/backup/format.js';
import { ImportRefusedError, importEvents } from '../../src/backup/importEvents.js';
import { checkExport } from '../../src/backup/readExport.js';
import { Chainer } from '../../src/chain/chainer.js';
import { ChainStore } from '../../src/chain/chainStore.js';
import { verifyChain } from '../../src/chain/verifyChain.js';
import type { Database } from '../../src/db/database.js';
import { EsdbEventStore } from '../../src/eventstore/esdb.js';
import type { EventStore } from '../../src/eventstore/port.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { rebuildReadModels } from '../../src/projections/rebuild.js';
import { LIVE_SCHEMA } from '../../src/projections/schema.js';
import { verifyReadModels } from '../../src/projections/verifier.js';
import type { LogRecord } from '../esdb-emulator/log.js';
import { EsdbEmulator } from '../esdb-emulator/server.js';
import { dumpReadModels } from '../fixtures/readModelDump.js';
import { appendFixtureEvents, loadFixture, readEverything } from '../fixtures/replayFixture.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';

/**
 * Backup and restore, and moving a ledger between stores: the 28d085d fixture (every money flow, two
 * tenants) is exported from a Postgres event store, imported into a fresh Postgres store and into
 * EventStoreDB (the emulator), exported from there and imported into Postgres again. After each
 * import a rebuild gives the same read models as the source's, byte for byte; where the target's
 * positions differ from the source's (EventStoreDB's are log offsets), the read models equal the
 * source's once each position is mapped back to the source position of the same event (order is kept,
 * so that mapping is the n-th event of one to the n-th of the other).
 */
const fixture = loadFixture('store-28d085d');
const dir = mkdtempSync(path.join(tmpdir(), 'ledger-export-'));
const kind = usingRealPostgres ? 'Postgres' : 'PGlite';

const databases: TestDatabase[] = [];
const stores: EventStore[] = [];
let emulator: EsdbEmulator;
let source: { db: Database; store: PostgresEventStore; readModels: Record<string, string> };
/** The whole source log, exported once for every test. */
const full = path.join(dir, 'full.ndjson');
let exported: Awaited<ReturnType<typeof exportEvents>>;
const exportProgress: number[] = [];

async function postgresStore(): Promise<{ db: Database; store: PostgresEventStore }> {
  const testDb = await createTestDatabase();
  databases.push(testDb);
  const store = new PostgresEventStore(testDb.db);
  stores.push(store);
  return { db: testDb.db, store };
}

/** Runs the chainer over `store` (links in `db`) until it reached the store's head; the heads it wrote. */
async function chainHeads(db: Database, store: EventStore) {
  const chainer = new Chainer({ db, store, lockPollMs: 10 });
  chainer.start();
  try {
    await chainer.waitForPosition(await store.headPosition(), 60_000);
  } finally {
    await chainer.stop();
  }
  const heads = await new ChainStore(db).heads({ limit: 100 });
  return heads.map((h) => ({ tenantId: h.tenantId, seq: String(h.seq), hash: h.hash }));
}

async function rebuiltReadModels(db: Database, store: EventStore): Promise<Record<string, string>> {
  await rebuildReadModels({ db, store });
  const verified = await verifyReadModels({ db, store, maxDifferences: 5 });
  expect(verified.differences).toEqual([]);
  expect(verified.ok).toBe(true);
  return dumpReadModels(db.knex, LIVE_SCHEMA);
}

beforeAll(async () => {
  emulator = await EsdbEmulator.start();
  const { db, store } = await postgresStore();
  await appendFixtureEvents(store, fixture.events);
  source = { db, store, readModels: await rebuiltReadModels(db, store) };
  exported = await exportEvents({
    store: source.store,
    out: full,
    onProgress: (p) => exportProgress.push(p.events),
  });
}, 180_000);

afterAll(async () => {
  for (const store of stores) await store.close();
  for (const db of databases) await db.dispose();
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Replaces every position in a dump by mapping.get(position) (read-model columns that hold positions),
 * rows sorted as text: a dump lists rows in key order, and keys hold positions.
 */
function mapPositions(dump: Record<string, string>, mapping: Map<string, string>): Record<string, string> {
  const POSITION_COLUMNS = new Set(['position', 'last_position']);
  const out: Record<string, string> = {};
  for (const [table, text] of Object.entries(dump)) {
    const [head, ...rows] = text.trimEnd().split('\n');
    const columns = JSON.parse(head!) as string[];
    const mapped = rows.map((line) => {
      const values = JSON.parse(line) as Array<string | null>;
      return JSON.stringify(
        values.map((v, i) => {
          if (!POSITION_COLUMNS.has(columns[i]!) || v === null || v === '-1') return v;
          const original = mapping.get(v);
          if (original === undefined) throw new Error(`${table}.${columns[i]}: position ${v} is no event's`);
          return original;
        }),
      );
    });
    out[table] = `${[head, ...mapped.sort()].join('\n')}\n`;
  }
  return out;
}

describe(`export and import (${kind}, EventStoreDB emulator)`, { timeout: 300_000 }, () => {
  it('exports the whole log with positions, revisions, metadata and a checksum', async () => {
    const result = exported;
    const progress = exportProgress;
    expect(result.events).toBe(fixture.events.length);
    expect(result.lastPosition).toBe(fixture.events.at(-1)!.position);
    expect(progress.at(-1)).toBe(fixture.events.length);
    const lines = readFileSync(full, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(fixture.events.length + 2);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      format: 'wemaster-ledger-events',
      version: 1,
      tenant: null,
      source: { eventStore: 'postgres', head: String(fixture.events.at(-1)!.position) },
    });
    const first = JSON.parse(lines[1]!) as Record<string, unknown>;
    const recorded = fixture.events[0]!;
    expect(first).toMatchObject({
      position: '0',
      streamName: recorded.streamName,
      revision: '0',
      id: recorded.id,
      type: recorded.type,
      data: recorded.data,
      metadata: recorded.metadata,
    });
    // The trailer's chain heads are the ones the chainer writes for the source store.
    const heads = await chainHeads(source.db, source.store);
    expect(heads.length).toBeGreaterThan(1);
    expect(JSON.parse(lines.at(-1)!)).toEqual({
      end: true,
      events: fixture.events.length,
      lastPosition: String(fixture.events.at(-1)!.position),
      sha256: result.sha256,
      chain: { algorithm: 'sha256-jcs-v1', heads, headsOmitted: 0 },
    });
    expect((await checkExport(full)).events).toBe(fixture.events.length);
    // A trailer whose chain heads are not the file's events' is refused.
    const forged = path.join(dir, 'forged-chain.ndjson');
    const trailer = JSON.parse(lines.at(-1)!) as { chain: { heads: Array<{ hash: string }> } };
    trailer.chain.heads[0]!.hash = 'e'.repeat(64);
    writeFileSync(forged, `${[...lines.slice(0, -1), JSON.stringify(trailer)].join('\n')}\n`);
    await expect(checkExport(forged)).rejects.toThrow(/chain head of tenant/);
  });

  it('Postgres to a fresh Postgres: the same events at the same positions, byte-identical read models', async () => {
    const target = await postgresStore();
    const result = await importEvents({ store: target.store, db: target.db, file: full, batchSize: 64 });
    expect(result).toMatchObject({ events: fixture.events.length, resumedAfter: 0 });
    const imported = await readEverything(target.store);
    const original = await readEverything(source.store);
    expect(
      imported.map((e) => [e.position, e.id, e.streamName, e.revision, e.recordedAt.toISOString()]),
    ).toEqual(original.map((e) => [e.position, e.id, e.streamName, e.revision, e.recordedAt.toISOString()]));
    expect(await rebuiltReadModels(target.db, target.store)).toEqual(source.readModels);
  });

  it('to EventStoreDB and back: order, revisions and ids kept; read models equal once positions are mapped', async () => {
    const esdb = new EsdbEventStore({ connectionString: emulator.connectionString, callTimeoutMs: 10_000 });
    stores.push(esdb);
    expect((await importEvents({ store: esdb, file: full })).events).toBe(fixture.events.length);
    const inEsdb = await readEverything(esdb);
    expect(inEsdb.map((e) => [e.id, e.streamName, e.revision])).toEqual(
      fixture.events.map((e) => [e.id, e.streamName, e.revision]),
    );
    // EventStoreDB's positions are its own (log offsets): not the source's.
    expect(inEsdb.map((e) => e.position)).not.toEqual(fixture.events.map((e) => e.position));
    // The chain leaves positions out: linked on EventStoreDB it has the heads the export recorded.
    const chainSide = await postgresStore();
    const trailer = JSON.parse(readFileSync(full, 'utf8').trimEnd().split('\n').at(-1)!) as {
      chain: { heads: unknown[] };
    };
    expect(await chainHeads(chainSide.db, esdb)).toEqual(trailer.chain.heads);

    // Read models projected from EventStoreDB (into a database of their own).
    const readSide = await postgresStore();
    const fromEsdb = await rebuiltReadModels(readSide.db, esdb);
    expect(fromEsdb).not.toEqual(source.readModels);
    const toSource = new Map(inEsdb.map((e, i) => [String(e.position), String(fixture.events[i]!.position)]));
    const identity = new Map(fixture.events.map((e) => [String(e.position), String(e.position)]));
    expect(mapPositions(fromEsdb, toSource)).toEqual(mapPositions(source.readModels, identity));

    // And back: EventStoreDB -> export -> Postgres gives the source's store and read models again.
    const fromEsdbFile = path.join(dir, 'from-esdb.ndjson.gz');
    const exported = await exportEvents({ store: esdb, out: fromEsdbFile });
    expect(exported.events).toBe(fixture.events.length);
    expect(readFileSync(fromEsdbFile).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const back = await postgresStore();
    await importEvents({ store: back.store, db: back.db, file: fromEsdbFile });
    expect((await readEverything(back.store)).map((e) => [e.position, e.id])).toEqual(
      fixture.events.map((e) => [e.position, e.id]),
    );
    expect(await rebuiltReadModels(back.db, back.store)).toEqual(source.readModels);
  });

  it('refuses an altered or truncated file before writing anything, and a store that is not empty', async () => {
    const target = await postgresStore();
    const text = readFileSync(full, 'utf8');
    const altered = path.join(dir, 'altered.ndjson');
    writeFileSync(altered, text.replace('"amount":60000', '"amount":60001'));
    await expect(importEvents({ store: target.store, db: target.db, file: altered })).rejects.toThrow(
      /checksum mismatch/,
    );
    const truncated = path.join(dir, 'truncated.ndjson');
    writeFileSync(truncated, text.split('\n').slice(0, 50).join('\n'));
    await expect(importEvents({ store: target.store, db: target.db, file: truncated })).rejects.toThrow(
      ExportFormatError,
    );
    expect(await target.store.headPosition()).toBe(-1n);

    // Interrupted after the second batch: the store holds a prefix of the file.
    await expect(
      importEvents({
        store: target.store,
        db: target.db,
        file: full,
        batchSize: 50,
        afterWrite: (loaded) => {
          if (loaded === 100) throw new Error('crash');
        },
      }),
    ).rejects.toThrow('crash');
    expect(await target.store.headPosition()).toBe(99n);
    await expect(importEvents({ store: target.store, db: target.db, file: full })).rejects.toThrow(
      ImportRefusedError,
    );
    const resumed = await importEvents({ store: target.store, db: target.db, file: full, resume: true });
    expect(resumed).toMatchObject({ events: fixture.events.length, resumedAfter: 100 });
    expect(await rebuiltReadModels(target.db, target.store)).toEqual(source.readModels);

    // A full store is refused even with --resume when it is not this file's.
    const other = path.join(dir, 'acme.ndjson');
    await exportEvents({ store: source.store, out: other, tenant: 'acme' });
    await expect(
      importEvents({ store: target.store, db: target.db, file: other, resume: true }),
    ).rejects.toThrow(/does not hold the beginning of this file|more events than the file/);
  });

  it('--tenant exports one tenant: every event of it, in order, and nothing else', async () => {
    const file = path.join(dir, 'tenant.ndjson');
    const result = await exportEvents({ store: source.store, out: file, tenant: 'acme' });
    const acme = fixture.events.filter((e) => e.metadata.tenantId === 'acme');
    expect(acme.length).toBeGreaterThan(0);
    expect(acme.length).toBeLessThan(fixture.events.length);
    expect(result.events).toBe(acme.length);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').slice(1, -1);
    expect(lines.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(acme.map((e) => e.id));
    expect(JSON.parse(readFileSync(file, 'utf8').split('\n')[0]!)).toMatchObject({ tenant: 'acme' });
  });

  it('on EventStoreDB: an event changed in the log behind the store is named by verify --chain', async () => {
    const own = await EsdbEmulator.start();
    try {
      const esdb = new EsdbEventStore({ connectionString: own.connectionString, callTimeoutMs: 10_000 });
      stores.push(esdb);
      await importEvents({ store: esdb, file: full });
      const chainSide = await postgresStore();
      await chainHeads(chainSide.db, esdb);
      const chain = new ChainStore(chainSide.db);
      expect((await verifyChain({ store: esdb, chain })).ok).toBe(true);
      // The emulator's log records are what its reads serve (serialized once per record object): put
      // an edited copy in the record's place in each of the log's indexes.
      const events = await readEverything(esdb);
      const target = events[40]!;
      const log = own.log as unknown as {
        records: LogRecord[];
        streams: Map<string, LogRecord[]>;
        byId: Map<string, LogRecord[]>;
      };
      const index = log.records.findIndex((r) => r.id === target.id);
      const original = log.records[index]!;
      const data = JSON.parse(Buffer.from(original.data).toString('utf8')) as Record<string, unknown>;
      const forged: LogRecord = { ...original, data: Buffer.from(JSON.stringify({ ...data, forged: true })) };
      log.records[index] = forged;
      log.streams.get(original.streamName)![Number(original.revision)] = forged;
      log.byId.set(original.id, [forged]);
      expect((await readEverything(esdb))[40]!.data).toMatchObject({ forged: true });
      const verdict = await verifyChain({ store: esdb, chain });
      expect(verdict.break).toMatchObject({ kind: 'changed', position: target.position, eventId: target.id });
    } finally {
      await own.stop();
    }
  });
});
