import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { rebuildReadModels } from '../../src/projections/rebuild.js';
import { LIVE_SCHEMA } from '../../src/projections/schema.js';
import { verifyReadModels } from '../../src/projections/verifier.js';
import { dumpReadModels } from '../fixtures/readModelDump.js';
import { appendFixtureEvents, loadFixture } from '../fixtures/replayFixture.js';

/**
 * A rebuild killed (SIGKILL, no chance to clean up) at any point leaves the old read models serving,
 * and the next rebuild resumes where the killed one stopped and ends with the same read models. Each
 * run is a process of its own on an embedded store (PGlite on disk), as `npm run cli -- projections
 * rebuild` is; it reports a hash of the live read models when it starts, so the state each kill left is
 * checked by the next run before it continues. Kill points: after a replay batch, once replay is done
 * (before the index builds), before the swap, and at an arbitrary moment of a later rebuild.
 */
const fixture = loadFixture('store-28d085d');
const root = mkdtempSync(path.join(tmpdir(), 'ledger-rebuild-kill-'));
const dataDir = path.join(root, 'data');
const CHILD = path.join(import.meta.dirname, 'support', 'rebuildChild.ts');
let liveHash: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  const db = await openDatabase({ kind: 'pglite', dataDir: path.join(dataDir, 'pglite') });
  await migrateLatest(db);
  const store = new PostgresEventStore(db);
  await appendFixtureEvents(store, fixture.events);
  await rebuildReadModels({ db, store });
  liveHash = createHash('sha256')
    .update(JSON.stringify(await dumpReadModels(db.knex, LIVE_SCHEMA)))
    .digest('hex');
  await store.close();
  await db.close();
}, 180_000);

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** Starts a rebuild process; resolves each printed line in turn. */
function rebuildProcess(stop: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir, stop, '20'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let buffer = '';
  let stderr = '';
  const waiters: Array<(line: string) => void> = [];
  const lines: string[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const queued = lines.shift();
      if (queued !== undefined) return resolve(queued);
      waiters.push(resolve);
      void exited.then((code) => reject(new Error(`rebuild exited ${code} early: ${stderr.slice(-1_000)}`)));
    });
  return { child, next, exited };
}

async function killAt(stop: string): Promise<void> {
  const run = rebuildProcess(stop);
  expect(await run.next()).toBe(`live ${liveHash}`);
  expect(await run.next()).toBe(`at ${stop}`);
  run.child.kill('SIGKILL');
  await run.exited;
}

describe('a rebuild killed at any point', () => {
  it('leaves the old read models serving, and the next run resumes to the same read models', async () => {
    // 212 events in batches of 20: kill after the 2nd batch, then (resumed) once replay is done, ...
    await killAt('batch:2');
    await killAt('indexing');
    await killAt('swapping');

    // And at an arbitrary moment while replaying from the start again (the previous runs got past
    // replay, so start over: a new rebuild on the swapped-in models is a fresh shadow).
    const finished = rebuildProcess('none');
    expect(await finished.next()).toBe(`live ${liveHash}`);
    const done = await finished.next();
    expect(done).toBe(`done true ${liveHash}`);
    expect(await finished.exited).toBe(0);

    const midway = rebuildProcess('none');
    expect(await midway.next()).toBe(`live ${liveHash}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    midway.child.kill('SIGKILL');
    await midway.exited;

    const last = rebuildProcess('none');
    expect(await last.next()).toBe(`live ${liveHash}`);
    expect((await last.next()).split(' ').slice(2)).toEqual([liveHash]);
    expect(await last.exited).toBe(0);

    const db = await openDatabase({ kind: 'pglite', dataDir: path.join(dataDir, 'pglite') });
    try {
      const store = new PostgresEventStore(db);
      const verified = await verifyReadModels({ db, store, maxDifferences: 5 });
      expect(verified.differences).toEqual([]);
      await store.close();
    } finally {
      await db.close();
    }
  }, 600_000);
});
