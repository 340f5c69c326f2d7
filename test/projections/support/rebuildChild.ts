/**
 * A rebuild in a process of its own, for test/projections/rebuildKill.int.test.ts:
 *   rebuildChild.ts <dataDir> <stop> [batchSize]
 * Opens the embedded store under DATA_DIR's lock (as the CLI does), prints `live <sha256>` of the live
 * read models as they are now, then rebuilds; at <stop> (`batch:N`, after the N-th committed replay
 * batch of this run; `indexing`; `swapping`; `none`) it prints `at <stop>` and blocks until killed.
 * With `none` it prints `done <resumed> <sha256 of the live read models after the swap>` and exits.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { openDatabase } from '../../../src/db/database.js';
import { acquireDataDirLock } from '../../../src/db/dataDirLock.js';
import { PostgresEventStore } from '../../../src/eventstore/postgres.js';
import { rebuildReadModels } from '../../../src/projections/rebuild.js';
import { LIVE_SCHEMA } from '../../../src/projections/schema.js';
import { dumpReadModels } from '../../fixtures/readModelDump.js';

const [dataDir, stop, batchSizeText] = process.argv.slice(2);
if (!dataDir || !stop) throw new Error('usage: rebuildChild.ts DATA_DIR STOP [BATCH_SIZE]');

const block = (): never => {
  // Synchronously: nothing of ours runs any more until the parent kills the process.
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
};

const lock = acquireDataDirLock(dataDir, { role: 'cli', command: 'projections rebuild' });
const db = await openDatabase({ kind: 'pglite', dataDir: path.join(dataDir, 'pglite') });
const store = new PostgresEventStore(db);
const hashLive = async () =>
  createHash('sha256')
    .update(JSON.stringify(await dumpReadModels(db.knex, LIVE_SCHEMA)))
    .digest('hex');

process.stdout.write(`live ${await hashLive()}\n`);
let batches = 0;
const result = await rebuildReadModels({
  db,
  store,
  batchSize: Number(batchSizeText ?? 20),
  readEvents: Number(batchSizeText ?? 20),
  onProgress: (p) => {
    if (p.phase === stop) {
      process.stdout.write(`at ${stop}\n`);
      block();
    }
  },
  afterBatch: () => {
    batches++;
    if (stop === `batch:${batches}`) {
      process.stdout.write(`at ${stop}\n`);
      block();
    }
  },
});
process.stdout.write(`done ${result.resumed} ${await hashLive()}\n`);
await store.close();
await db.close();
lock.release();
