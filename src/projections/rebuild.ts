import type { Knex } from 'knex';
import type { Database } from '../db/database.js';
import { invariant } from '../domain/errors.js';
import type { EventStore, RecordedEvent } from '../eventstore/port.js';
import { BALANCES_CHANGED_CHANNEL, flushAllPayload } from './balanceCache.js';
import { readCheckpoint } from './ledgerProjection.js';
import { PROJECTED_CHANNEL } from './projectionRunner.js';
import {
  analyzeReadModels,
  createReadModelTables,
  LIVE_SCHEMA,
  RETIRED_SCHEMA,
  readModelIndexStatements,
  SHADOW_SCHEMA,
  secureReadModelSchema,
} from './schema.js';
import { type PreparedBatch, rederiveBalances, ShadowReplay } from './shadowReplay.js';
import { bulkLoadMethodOf } from './sql.js';

export interface RebuildProgress {
  phase: 'replaying' | 'indexing' | 'swapping' | 'done';
  /** Shadow checkpoint. */
  position: bigint;
  /** Store head when the progress was taken. */
  head: bigint;
  /** Events applied by this run (a resumed run counts from where it resumed). */
  eventsApplied: number;
  elapsedMs: number;
}

export interface RebuildOptions {
  db: Database;
  store: EventStore;
  /** Events per transaction while replaying (≤ 10 000). */
  batchSize?: number;
  /** Events per store read while replaying (default READ_EVENTS; a batch may span several reads). */
  readEvents?: number;
  onProgress?: (progress: RebuildProgress) => void;
  /** Bound on swap attempts while a live runner keeps moving ahead of the shadow. */
  maxSwapAttempts?: number;
  /** Bound on balance rows carried between replay batches. */
  balanceCacheRows?: number;
  /** Test hook: called after each committed replay batch (throw to simulate a crash). */
  afterBatch?: (position: bigint) => void | Promise<void>;
}

export interface RebuildResult {
  position: bigint;
  eventsApplied: number;
  resumed: boolean;
  durationMs: number;
}

/**
 * Events per store read while replaying. Smaller than a transaction's batch: each read is folded (and
 * its events dropped) before the next, so few events are alive when the garbage collector runs.
 */
const READ_EVENTS = 1_000;

/** Projection names the CLI accepts: one projection maintains every read model (see schema.ts). */
export const PROJECTION_NAMES = ['ledger'] as const;

/**
 * Replays every event into fresh tables in the shadow schema and swaps them in atomically, while
 * readers (and a live runner) keep using the live schema until the swap commits.
 *
 * Resumable: the shadow schema carries its own checkpoint, and every replay batch commits with it, so a
 * crashed rebuild continues from its last batch. The swap takes an exclusive lock on the live
 * checkpoint (a live runner's next batch waits, then finds the checkpoint moved and resubscribes) and
 * only swaps when the shadow is at or past the live position, so readers never go back in time.
 */
export async function rebuildReadModels(options: RebuildOptions): Promise<RebuildResult> {
  const { db, store } = options;
  const batchSize = options.batchSize ?? 5_000;
  invariant(
    Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 10_000,
    'batchSize must be 1..10000',
  );
  const maxSwapAttempts = options.maxSwapAttempts ?? 20;
  const startedAt = Date.now();
  let eventsApplied = 0;
  const progress = (phase: RebuildProgress['phase'], position: bigint, head: bigint) =>
    options.onProgress?.({ phase, position, head, eventsApplied, elapsedMs: Date.now() - startedAt });

  await db.knex.raw(`DROP SCHEMA IF EXISTS ${RETIRED_SCHEMA} CASCADE`);
  const resumed = await schemaExists(db.knex, SHADOW_SCHEMA);
  if (resumed) {
    // The crashed run may have left its deferred balances behind its postings (shadowReplay.ts).
    await db.knex.transaction((trx) => rederiveBalances(trx, SHADOW_SCHEMA));
  } else {
    await db.knex.transaction((trx) => createReadModelTables(trx, SHADOW_SCHEMA));
  }
  let position = await readCheckpoint(db.knex, SHADOW_SCHEMA);

  // The rebuild is the shadow's only writer and any error ends this call, so balances are carried in
  // memory from batch to batch (bounded) instead of read back and rewritten by every batch.
  const replay = new ShadowReplay(
    db.knex,
    SHADOW_SCHEMA,
    await bulkLoadMethodOf(db),
    options.balanceCacheRows ?? 1_000_000,
    !resumed,
    position,
  );
  const commit = async (batch: PreparedBatch): Promise<void> => {
    await db.knex.transaction(async (trx) => {
      // Safe to skip the WAL flush wait here: a crash can only lose whole recent batches together with
      // the shadow checkpoint that records them, and the resumed rebuild replays them.
      await trx.raw('SET LOCAL synchronous_commit = off');
      await replay.write(trx, batch);
    });
    position = batch.position;
    eventsApplied += batch.applied;
    await options.afterBatch?.(position);
  };
  const readEvents = Math.min(batchSize, options.readEvents ?? READ_EVENTS);
  invariant(Number.isInteger(readEvents) && readEvents >= 1, 'readEvents must be a positive integer');
  const read = (after: bigint): Promise<RecordedEvent[]> =>
    quiet(store.readAll({ ...(after >= 0n ? { after } : {}), maxCount: readEvents }));

  /**
   * Replays up to the store's head, pipelined: while batch N is written, the events of batch N+1 are read
   * from the store and folded (the fold needs only the carried balances), read by read. At most one batch
   * is written at a time, in order, each checking the checkpoint its predecessor committed. Ends with
   * the balances flushed.
   */
  const catchUp = async (): Promise<bigint> => {
    let head = await store.headPosition();
    while (position < head) {
      let reading: Promise<RecordedEvent[]> | null = read(position);
      let writing: Promise<void> | null = null;
      const send = async (batch: PreparedBatch): Promise<void> => {
        if (writing) await writing;
        writing = quiet(commit(batch).then(() => progress('replaying', position, head)));
        // The next fold may read balances this batch writes: let it commit first.
        if (batch.balanceRows.length > 0) await writing;
      };
      try {
        while (reading) {
          const events: RecordedEvent[] = await reading;
          if (events.length === 0) break;
          const last: bigint = events[events.length - 1]!.position;
          reading = last < head ? read(last) : null;
          await replay.fold(events);
          if (replay.openEvents >= batchSize || replay.overflowing) await send(replay.seal());
        }
        if (replay.openEvents > 0) await send(replay.seal());
      } finally {
        // On an error, still wait for the batch in flight (its outcome no longer matters: the run fails).
        await Promise.allSettled([writing, reading]);
      }
      if (writing) await writing;
      head = await store.headPosition();
    }
    await db.knex.transaction((trx) => replay.flush(trx, position));
    return head;
  };

  let head = await catchUp();
  progress('indexing', position, head);
  await buildIndexes(db, readModelIndexStatements(SHADOW_SCHEMA));
  await db.knex.transaction(async (trx) => {
    await secureReadModelSchema(trx, SHADOW_SCHEMA);
    await analyzeReadModels(trx, SHADOW_SCHEMA);
  });

  for (let attempt = 1; ; attempt++) {
    head = await catchUp();
    progress('swapping', position, head);
    const swapped = await db.knex.transaction(async (trx) => {
      if (await schemaExists(trx, LIVE_SCHEMA)) {
        await trx.raw(`LOCK TABLE ${LIVE_SCHEMA}.checkpoint IN ACCESS EXCLUSIVE MODE`);
        const live = await readCheckpoint(trx, LIVE_SCHEMA);
        if (live > position) return false;
        await trx.raw(`ALTER SCHEMA ${LIVE_SCHEMA} RENAME TO ${RETIRED_SCHEMA}`);
      }
      await trx.raw(`ALTER SCHEMA ${SHADOW_SCHEMA} RENAME TO ${LIVE_SCHEMA}`);
      await trx.raw(`DROP SCHEMA IF EXISTS ${RETIRED_SCHEMA} CASCADE`);
      // Every balance may differ from what caches hold (balanceCache.ts): they start over.
      await trx.raw('SELECT pg_notify(?, ?)', [BALANCES_CHANGED_CHANNEL, flushAllPayload(position)]);
      await trx.raw('SELECT pg_notify(?, ?)', [PROJECTED_CHANNEL, position.toString()]);
      return true;
    });
    if (swapped) break;
    if (attempt >= maxSwapAttempts) {
      throw new Error(
        `rebuild: the live projection stayed ahead of the shadow for ${attempt} swap attempts; run it again (it resumes)`,
      );
    }
  }
  progress('done', position, head);
  return { position, eventsApplied, resumed, durationMs: Date.now() - startedAt };
}

/**
 * Index builds of the loaded shadow: sorts that each keep one core busy, so they run on
 * INDEX_BUILD_CONNECTIONS connections at once (each in its own transaction; the statements are
 * idempotent, so a crash between them only leaves the rest for the resumed run), with sort memory
 * raised for the build so that the sorts stay in memory. PGlite has one connection: there they queue.
 */
const INDEX_BUILD_CONNECTIONS = 2;
const INDEX_BUILD_MEMORY = '256MB';

async function buildIndexes(db: Database, statements: readonly string[]): Promise<void> {
  const queue = [...statements];
  const worker = async (): Promise<void> => {
    for (let sql = queue.shift(); sql !== undefined; sql = queue.shift()) {
      const statement = sql;
      await db.knex.transaction(async (trx) => {
        await trx.raw(`SET LOCAL maintenance_work_mem = '${INDEX_BUILD_MEMORY}'`);
        await trx.raw(statement);
      });
    }
  };
  // Settle every worker before failing, so no build is left running behind a returned error.
  const outcomes = await Promise.allSettled(Array.from({ length: INDEX_BUILD_CONNECTIONS }, worker));
  for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
}

async function schemaExists(knex: Knex | Knex.Transaction, schema: string): Promise<boolean> {
  const r = (await knex.raw('SELECT 1 FROM pg_namespace WHERE nspname = ?', [schema])) as { rows: unknown[] };
  return r.rows.length > 0;
}

/**
 * Marks a promise as handled while it is in flight (the pipeline awaits it later, or settles it on
 * the way out), so its rejection is not reported as unhandled before it is awaited.
 */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
