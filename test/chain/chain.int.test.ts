import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Chainer } from '../../src/chain/chainer.js';
import { ChainStore } from '../../src/chain/chainStore.js';
import { GENESIS_HASH, linkHash } from '../../src/chain/link.js';
import { verifyChain } from '../../src/chain/verifyChain.js';
import { parseAnchors, verifyChainCommand } from '../../src/cli/chainCommand.js';
import type { Database } from '../../src/db/database.js';
import type { EventToAppend, RecordedEvent } from '../../src/eventstore/port.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { appendFixtureEvents, loadFixture, readEverything } from '../fixtures/replayFixture.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';

/**
 * The tamper-evident log on Postgres (DATABASE_URL) or PGlite: the chainer links a ledger written before
 * the chain existed (the 28d085d fixture: every money flow, two tenants), `verify --chain` agrees, and
 * editing, deleting or swapping rows of `events` behind the store's back is named at the first event it
 * touched.
 */
const fixture = loadFixture('store-28d085d');
const opened: TestDatabase[] = [];
const running: Array<{ stop(): Promise<unknown> }> = [];
const stores: PostgresEventStore[] = [];

afterAll(async () => {
  for (const r of running.splice(0)) await r.stop();
  for (const s of stores.splice(0)) await s.close();
  for (const d of opened.splice(0)) await d.dispose();
});

interface Ledger {
  db: Database;
  store: PostgresEventStore;
  chain: ChainStore;
  events: RecordedEvent[];
}

async function chainedLedger(): Promise<Ledger> {
  const testDb = await createTestDatabase();
  opened.push(testDb);
  const store = new PostgresEventStore(testDb.db);
  stores.push(store);
  // History first, as on a ledger upgraded with events in it: the chainer catches up from -1.
  await appendFixtureEvents(store, fixture.events);
  const chainer = new Chainer({ db: testDb.db, store, lockPollMs: 10 });
  chainer.start();
  running.push(chainer);
  const head = await store.headPosition();
  await chainer.waitForPosition(head, 30_000);
  await chainer.stop();
  return { db: testDb.db, store, chain: new ChainStore(testDb.db), events: await readEverything(store) };
}

/** Two events of one tenant, the first early in the log (positions p < q). */
function twoOfOneTenant(events: RecordedEvent[]): [RecordedEvent, RecordedEvent] {
  const first = events[3]!;
  const second = events.find(
    (e) => e.position > first.position + 5n && e.metadata.tenantId === first.metadata.tenantId,
  );
  if (!second) throw new Error('fixture has no second event of the tenant');
  return [first, second];
}

let shared: Promise<Ledger> | undefined;

/**
 * One chained ledger for the tampering tests; each test edits `events` behind the store's back, and
 * the original rows (a copy taken once) are put back after it, byte for byte.
 */
async function tampered(
  edit: (ledger: Ledger) => Promise<void>,
): Promise<Ledger & { restore(): Promise<void> }> {
  shared ??= chainedLedger().then(async (ledger) => {
    await ledger.db.knex.raw('CREATE TABLE events_original AS SELECT * FROM events');
    return ledger;
  });
  const ledger = await shared;
  await edit(ledger);
  return {
    ...ledger,
    async restore() {
      await ledger.db.knex.transaction(async (trx) => {
        await trx.raw('DELETE FROM events');
        await trx.raw('INSERT INTO events SELECT * FROM events_original');
      });
      expect((await verifyChain({ store: ledger.store, chain: ledger.chain })).ok).toBe(true);
    },
  };
}

describe(`tamper-evident log (${usingRealPostgres ? 'Postgres' : 'PGlite'})`, () => {
  it('links existing history from its first event, one dense chain per tenant, and verifies', async () => {
    const { chain, store, events } = await chainedLedger();
    const verdict = await verifyChain({ store, chain, pageSize: 37 });
    expect(verdict.break).toBeNull();
    expect(verdict.ok).toBe(true);
    expect(verdict.eventsVerified).toBe(events.length);
    const tenants = [...new Set(events.map((e) => e.metadata.tenantId))].sort();
    expect(tenants.length).toBeGreaterThan(1);
    expect(verdict.heads.map((h) => h.tenantId)).toEqual(tenants);
    // Recomputed by hand from the events (no code of the chainer's): the stored head is the fold.
    for (const tenantId of tenants) {
      let hash = GENESIS_HASH;
      let seq = -1n;
      for (const e of events.filter((x) => x.metadata.tenantId === tenantId)) {
        seq++;
        hash = linkHash(hash, seq, e);
      }
      const head = await chain.head(tenantId);
      expect(head).toMatchObject({ tenantId, seq, hash });
      expect(verdict.heads.find((h) => h.tenantId === tenantId)).toMatchObject({ seq, hash });
    }
    expect(await chain.checkpoint()).toBe(events[events.length - 1]!.position);
  });

  it('names an event whose row was edited', async () => {
    let target: RecordedEvent | undefined;
    const t = await tampered(async ({ db, events }) => {
      target = events[Math.floor(events.length / 2)]!;
      await db.knex.raw(`UPDATE events SET data = data || '{"tampered": true}'::jsonb WHERE position = ?`, [
        target.position.toString(),
      ]);
    });
    const verdict = await verifyChain({ store: t.store, chain: t.chain });
    expect(verdict.ok).toBe(false);
    expect(verdict.break).toMatchObject({ kind: 'changed', position: target!.position, eventId: target!.id });
    expect(verdict.eventsVerified).toBe(Number(target!.position));
    await t.restore();
  });

  it('names an event whose metadata alone was edited (the actor)', async () => {
    let target: RecordedEvent | undefined;
    const t = await tampered(async ({ db, events }) => {
      target = events[7]!;
      await db.knex.raw(
        `UPDATE events SET metadata = jsonb_set(metadata, '{actor,id}', '"someone-else"') WHERE position = ?`,
        [target.position.toString()],
      );
    });
    const verdict = await verifyChain({ store: t.store, chain: t.chain });
    expect(verdict.break).toMatchObject({ kind: 'changed', position: target!.position, eventId: target!.id });
    await t.restore();
  });

  it('names an event whose row was deleted', async () => {
    let target: RecordedEvent | undefined;
    const t = await tampered(async ({ db, events }) => {
      target = events[11]!;
      await db.knex.raw('DELETE FROM events WHERE position = ?', [target.position.toString()]);
    });
    const verdict = await verifyChain({ store: t.store, chain: t.chain });
    expect(verdict.break).toMatchObject({ kind: 'removed', position: target!.position, eventId: target!.id });
    expect(verdict.break?.message).toContain('no longer in the store');
    await t.restore();
  });

  it('names the first of two events of a tenant whose places were swapped', async () => {
    let pair: [RecordedEvent, RecordedEvent] | undefined;
    const t = await tampered(async ({ db, store, events }) => {
      pair = twoOfOneTenant(events);
      const [a, b] = pair;
      // Positions are CHECKed >= 0: park one row above the head for the swap.
      const parked = (await store.headPosition()) + 1_000n;
      await db.knex.transaction(async (trx) => {
        const move = (from: bigint, to: bigint) =>
          trx.raw('UPDATE events SET position = ? WHERE position = ?', [to.toString(), from.toString()]);
        await move(a.position, parked);
        await move(b.position, a.position);
        await move(parked, b.position);
      });
    });
    const [a, b] = pair!;
    const verdict = await verifyChain({ store: t.store, chain: t.chain });
    expect(verdict.break).toMatchObject({ kind: 'reordered', position: a.position, eventId: a.id });
    expect(verdict.break?.message).toContain(`now at position ${b.position}`);
    await t.restore();
  });

  it('names an event inserted into history the chain covers', async () => {
    let at: bigint | undefined;
    const t = await tampered(async ({ db, events }) => {
      // Make room by deleting one event and put a forged one in its place.
      const victim = events[20]!;
      at = victim.position;
      await db.knex.raw('DELETE FROM events WHERE position = ?', [at.toString()]);
      await db.knex.raw(
        `INSERT INTO events (position, stream_name, revision, id, type, data, metadata, recorded_at)
         SELECT position, stream_name, revision, ?, type, data, metadata, recorded_at FROM events_original WHERE position = ?`,
        [randomUUID(), at.toString()],
      );
    });
    const verdict = await verifyChain({ store: t.store, chain: t.chain });
    // The chained event is gone and another id stands at its position.
    expect(verdict.break).toMatchObject({ kind: 'changed', position: at });
    expect(verdict.break?.message).toContain('was replaced by event');
    await t.restore();
  });

  it('`verify --chain` prints the heads as anchors, and exits 1 naming the first tampered event', async () => {
    const output = () => {
      let text = '';
      return {
        out: {
          write: (chunk: string) => {
            text += chunk;
            return true;
          },
        } as unknown as NodeJS.WritableStream,
        text: () => text,
      };
    };
    const clean = output();
    const { db, store, events } = await tampered(async () => {});
    expect(await verifyChainCommand({ db, store, out: clean.out }, { anchors: [], format: 'text' })).toBe(0);
    const anchorLines = clean
      .text()
      .split('\n')
      .filter((l) => /^ {2}[a-z0-9_]+:\d+:[0-9a-f]{64}$/.test(l));
    expect(anchorLines.length).toBeGreaterThan(1);
    // What it printed is what it takes back.
    const anchors = parseAnchors(anchorLines.map((l) => l.trim()));
    if ('error' in anchors) throw new Error(anchors.error);
    const anchored = output();
    expect(await verifyChainCommand({ db, store, out: anchored.out }, { anchors, format: 'text' })).toBe(0);
    expect(anchored.text()).toContain(`${anchors.length} anchor(s) matched`);

    const target = events[30]!;
    const t = await tampered(async () => {
      await db.knex.raw(`UPDATE events SET type = 'Forged' WHERE position = ?`, [target.position.toString()]);
    });
    const broken = output();
    expect(await verifyChainCommand({ db, store, out: broken.out }, { anchors: [], format: 'json' })).toBe(1);
    expect(JSON.parse(broken.text())).toMatchObject({
      ok: false,
      break: { kind: 'changed', position: String(target.position), eventId: target.id },
    });
    await t.restore();
    expect(parseAnchors(['acme:1:abc'])).toMatchObject({ error: expect.stringContaining('HASH') });
    expect(parseAnchors([`ACME:1:${'a'.repeat(64)}`])).toMatchObject({
      error: expect.stringContaining('tenant'),
    });
    expect(parseAnchors([`acme:01:${'a'.repeat(64)}`])).toMatchObject({
      error: expect.stringContaining('SEQ'),
    });
  });

  it('checks anchors taken outside: a wrong hash, and a seq the chain no longer reaches', async () => {
    const { chain, store, events } = await tampered(async () => {});
    const tenantId = events[0]!.metadata.tenantId;
    const head = (await chain.head(tenantId))!;
    const good = await verifyChain({ store, chain, anchors: [{ tenantId, seq: head.seq, hash: head.hash }] });
    expect(good).toMatchObject({ ok: true, anchorsChecked: 1 });
    const wrong = await verifyChain({ store, chain, anchors: [{ tenantId, seq: 2n, hash: 'f'.repeat(64) }] });
    const third = events.filter((e) => e.metadata.tenantId === tenantId)[2]!;
    expect(wrong.break).toMatchObject({ kind: 'anchor', tenantId, seq: 2n, position: third.position });
    const beyond = await verifyChain({
      store,
      chain,
      anchors: [{ tenantId, seq: head.seq + 1n, hash: head.hash }],
    });
    expect(beyond.break).toMatchObject({ kind: 'anchor', tenantId, seq: head.seq + 1n });
  });

  it('keeps the links append-only: UPDATE, DELETE and TRUNCATE of event_chain are refused', async () => {
    const { db } = await tampered(async () => {});
    await expect(
      db.knex.raw(`UPDATE event_chain SET hash = repeat('0', 64) WHERE position = 0`),
    ).rejects.toThrow(/append-only/);
    await expect(db.knex.raw('DELETE FROM event_chain WHERE position = 0')).rejects.toThrow(/append-only/);
    await expect(db.knex.raw('TRUNCATE event_chain')).rejects.toThrow(/append-only/);
  });

  it('links while several stores append concurrently and two chainers compete: one dense chain per tenant', async () => {
    const testDb = await createTestDatabase();
    opened.push(testDb);
    // Stores on one database stand in for API processes (on Postgres each has its own connections).
    const writers = [
      new PostgresEventStore(testDb.db),
      new PostgresEventStore(testDb.db),
      new PostgresEventStore(testDb.db),
    ];
    stores.push(...writers);
    const chainers = [
      new Chainer({ db: testDb.db, store: writers[0]!, lockPollMs: 5, batchMaxEvents: 7 }),
      new Chainer({ db: testDb.db, store: writers[1]!, lockPollMs: 5, batchMaxEvents: 13 }),
    ];
    for (const c of chainers) {
      c.start();
      running.push(c);
    }
    const tenants = ['tenant-a', 'tenant-b', 'tenant-c'];
    const event = (tenantId: string, i: number): EventToAppend => ({
      id: randomUUID(),
      type: 'BenchEvent',
      data: { i, amount: i * 7 },
      metadata: {
        tenantId,
        correlationId: `c-${i}`,
        causationId: `c-${i}`,
        actor: { id: 'test', role: 'system' },
        idempotencyKey: `k-${i}`,
        occurredAt: '2026-12-04T00:00:00.000Z',
        schemaVersion: 1,
      },
    });
    await Promise.all(
      writers.map(async (store, w) => {
        for (let i = 0; i < 60; i++) {
          const tenantId = tenants[(i + w) % tenants.length]!;
          await store.append(`test-${w}-${i % 5}`, [event(tenantId, i), event(tenantId, i + 1000)], {
            expectedRevision: 'any',
          });
        }
      }),
    );
    const head = await writers[0]!.headPosition();
    await Promise.any(chainers.map((c) => c.waitForPosition(head, 30_000)));
    for (const c of chainers) await c.stop();
    const chain = new ChainStore(testDb.db);
    const verdict = await verifyChain({ store: writers[0]!, chain, pageSize: 50 });
    expect(verdict.break).toBeNull();
    expect(verdict.eventsVerified).toBe(360);
    const links = await chain.links({ after: -1n, limit: 1_000 });
    for (const tenantId of tenants) {
      const seqs = links.filter((l) => l.tenantId === tenantId).map((l) => Number(l.seq));
      expect(seqs).toEqual(seqs.map((_, i) => i));
    }
  });
});
