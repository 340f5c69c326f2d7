import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Database } from '../src/db/database.js';
import {
  type EventToAppend,
  StreamNotFoundError,
  WrongExpectedRevisionError,
} from '../src/eventstore/port.js';
import { PostgresEventStore } from '../src/eventstore/postgres.js';
import { type BenchSection, formatRate, freshBenchDatabase, percentile } from './report.js';

/**
 * `npm run bench -- eventstore`: the Postgres event store against the raw insert ceiling of the same
 * server, in one run. Creates and drops its own database.
 */
const WRITERS = 8;
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 10_000);
const CATCH_UP_EVENTS = Number(process.env.BENCH_CATCHUP_EVENTS ?? 1_000_000);
const FILL_CHUNK = 50_000; // events per bulk-insert transaction
const FILL_STATEMENT_TIMEOUT_MS = 120_000;
const FILL_STREAMS = 1_000;
const RAW_READ_EVENTS = Math.min(CATCH_UP_EVENTS, 200_000);
const CATCH_UP_BATCH = Number(process.env.BENCH_CATCHUP_BATCH ?? 5_000);
const HOT_MAX_ATTEMPTS = 500;
const HOT_BACKOFF_MAX_MS = 20;

/** ~300 bytes of JSON, data plus metadata, like a typical ledger event. */
export function payload(i: number): { data: EventToAppend['data']; metadata: EventToAppend['metadata'] } {
  return {
    data: {
      walletId: 'w-000123',
      amount: 1000 + (i % 977),
      currency: 'eur',
      reference: `ref-${i}`,
    },
    metadata: {
      tenantId: 'bench',
      correlationId: 'c5b0f3a2-0c1e-4f6e-9f0a-3d2b1c0e9f8a',
      causationId: 'c5b0f3a2-0c1e-4f6e-9f0a-3d2b1c0e9f8a',
      actor: { id: 'bench', role: 'system' },
      idempotencyKey: `k-${i}`,
      occurredAt: '2026-01-01T00:00:00.000Z',
      schemaVersion: 1,
    },
  };
}

function rawRow(i: number): string {
  const { data, metadata } = payload(i);
  return JSON.stringify({ ...data, ...metadata });
}

export function event(i: number): EventToAppend {
  return { id: randomUUID(), type: 'WalletToppedUp', ...payload(i) };
}

interface Phase {
  operations: number;
  events: number;
  elapsedMs: number;
  latenciesMs: number[];
  conflicts?: number;
  /** Hot stream: operations abandoned after HOT_MAX_ATTEMPTS conflicts in a row. */
  gaveUp?: number;
  /** This process's CPU (user + system) over the phase, µs. */
  cpuUs?: number;
}

const perSecond = (count: number, ms: number) => (count * 1000) / ms;

async function rawCeiling(url: string): Promise<Phase> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query('CREATE TABLE raw_ceiling (id bigserial PRIMARY KEY, data jsonb NOT NULL)');
  await setup.end();
  const clients = await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  const latenciesMs: number[] = [];
  let operations = 0;
  const started = performance.now();
  const deadline = started + PHASE_MS;
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        await c.query('INSERT INTO raw_ceiling (data) VALUES ($1)', [rawRow(operations)]);
        latenciesMs.push(performance.now() - t);
        operations++;
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  await Promise.all(clients.map((c) => c.end()));
  return { operations, events: operations, elapsedMs, latenciesMs };
}

async function distinctStreams(store: PostgresEventStore, runId: string): Promise<Phase> {
  const latenciesMs: number[] = [];
  let operations = 0;
  const started = performance.now();
  const deadline = started + PHASE_MS;
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      const stream = `wallet-bench.${runId}-d${w}`;
      let revision: bigint | 'no_stream' = 'no_stream';
      while (performance.now() < deadline) {
        const t = performance.now();
        const result = await store.append(stream, [event(operations)], { expectedRevision: revision });
        latenciesMs.push(performance.now() - t);
        revision = result.nextExpectedRevision;
        operations++;
      }
    }),
  );
  return { operations, events: operations, elapsedMs: performance.now() - started, latenciesMs };
}

/**
 * Stream reads as the command path makes them: the newest event of an existing stream (the distinct
 * streams phase's), or a stream that does not exist yet (StreamNotFoundError, as before a first
 * append); WRITERS readers for half a phase, with this process's CPU per read.
 */
async function streamReads(store: PostgresEventStore, runId: string, existing: boolean): Promise<Phase> {
  const latenciesMs: number[] = [];
  let operations = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + PHASE_MS / 2;
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      while (performance.now() < deadline) {
        const stream = existing ? `wallet-bench.${runId}-d${w}` : `wallet-bench.${runId}-none${operations}`;
        const t = performance.now();
        const found = await store
          .readStream(stream, { direction: 'backwards', maxCount: 1 })
          .then(() => true)
          .catch((error: unknown) => {
            if (error instanceof StreamNotFoundError) return false;
            throw error;
          });
        latenciesMs.push(performance.now() - t);
        if (found !== existing)
          throw new Error(`stream read of ${stream}: found ${found}, expected ${existing}`);
        operations++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  return {
    operations,
    events: existing ? operations : 0,
    elapsedMs: performance.now() - started,
    latenciesMs,
    cpuUs: cpu.user + cpu.system,
  };
}

async function hotStream(store: PostgresEventStore, runId: string): Promise<Phase> {
  const stream = `wallet-bench.${runId}-hot`;
  await store.append(stream, [event(0)], { expectedRevision: 'no_stream' });
  const latenciesMs: number[] = [];
  let operations = 0;
  let conflicts = 0;
  let gaveUp = 0;
  const started = performance.now();
  const deadline = started + PHASE_MS;
  const lastRevision = async () =>
    (await store.readStream(stream, { direction: 'backwards', maxCount: 1 }))[0]!.revision;
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      let revision: bigint;
      while (performance.now() < deadline) {
        const t = performance.now();
        // Every operation starts from a fresh read, as a command on another process would.
        revision = await lastRevision();
        const e = event(operations);
        let appended = false;
        for (let attempt = 1; ; attempt++) {
          try {
            revision = (await store.append(stream, [e], { expectedRevision: revision })).nextExpectedRevision;
            appended = true;
            break;
          } catch (error) {
            if (!(error instanceof WrongExpectedRevisionError)) throw error;
            conflicts++;
            if (attempt >= HOT_MAX_ATTEMPTS) {
              // Plain optimistic retries are unfair on a hot stream: the writer that just won re-appends
              // at once while the losers reload and back off, so a loser can starve (seen on an idle
              // machine). Counted and reported; in the app the command handler queues commands per
              // stream inside a process, which avoids this for one process.
              gaveUp++;
              break;
            }
            // A real command handler would reload state and decide again; the revision is all we need
            // (read back from the store, not taken from the error, to pay for a real reload).
            revision = await lastRevision();
            await new Promise((r) =>
              setTimeout(r, Math.random() * Math.min(HOT_BACKOFF_MAX_MS, 2 ** attempt)),
            );
          }
        }
        if (!appended) continue;
        latenciesMs.push(performance.now() - t);
        operations++;
      }
    }),
  );
  return {
    operations,
    events: operations,
    elapsedMs: performance.now() - started,
    latenciesMs,
    conflicts,
    gaveUp,
  };
}

/**
 * Bench-only bulk path for the catch-up data: server-side INSERT ... SELECT generate_series in chunks,
 * under the same head-row lock and with the same bookkeeping (streams, head) as the store's appends.
 */
export async function fill(db: Database, runId: string, total: number): Promise<Phase> {
  const started = performance.now();
  for (let done = 0; done < total; done += FILL_CHUNK) {
    const size = Math.min(FILL_CHUNK, total - done);
    await db.knex.transaction(
      async (trx) => {
        await trx.raw("SELECT set_config('statement_timeout', ?, true)", [`${FILL_STATEMENT_TIMEOUT_MS}ms`]);
        const { rows } = await trx.raw<{ rows: Array<{ position: number }> }>(
          'SELECT position FROM event_store_head WHERE id = 1 FOR UPDATE',
        );
        const head = rows[0]!.position;
        const { data, metadata } = payload(0);
        await trx.raw(
          `INSERT INTO events (position, stream_name, revision, id, type, data, metadata)
           SELECT ? + g, ? || ((? + g) % ${FILL_STREAMS}), (? + g) / ${FILL_STREAMS}, gen_random_uuid(), 'WalletToppedUp',
                  ?::jsonb || jsonb_build_object('amount', g, 'reference', 'ref-' || g), ?::jsonb
           FROM generate_series(1, ?) AS g`,
          [
            head,
            `wallet-bench.${runId}-fill`,
            done - 1,
            done - 1,
            JSON.stringify(data),
            JSON.stringify(metadata),
            size,
          ],
        );
        await trx.raw(
          `INSERT INTO event_streams (stream_name, revision)
           SELECT ? || s, (? - 1 - s) / ${FILL_STREAMS} FROM generate_series(0, ${FILL_STREAMS - 1}) AS s
           WHERE s < ?
           ON CONFLICT (stream_name) DO UPDATE SET revision = excluded.revision`,
          [`wallet-bench.${runId}-fill`, done + size, done + size],
        );
        await trx.raw('UPDATE event_store_head SET position = ? WHERE id = 1', [head + size]);
      },
      { isolationLevel: 'read committed' },
    );
    if ((done + size) % 200_000 === 0 || done + size === total)
      console.log(`  eventstore: filled ${done + size}`);
  }
  return { operations: total, events: total, elapsedMs: performance.now() - started, latenciesMs: [] };
}

async function catchUp(db: Database, from: bigint): Promise<Phase> {
  const store = new PostgresEventStore(db, { readBatchSize: CATCH_UP_BATCH });
  const started = performance.now();
  let events = 0;
  const subscription = store.subscribe({ after: from });
  for await (const message of subscription) {
    if (message.kind === 'caughtUp') break;
    events++;
  }
  await subscription.close();
  await store.close();
  return { operations: events, events, elapsedMs: performance.now() - started, latenciesMs: [] };
}

/**
 * The read ceiling for catch-up on this machine: one plain `pg` client paging through the same events
 * by position (same batch size, default type parsing, so jsonb is parsed as for the subscription).
 */
async function rawRead(url: string, from: bigint, count: number): Promise<Phase> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const started = performance.now();
  let after = Number(from);
  let events = 0;
  while (events < count) {
    const { rows } = await client.query<{ position: number }>(
      'SELECT position, stream_name, revision, id, type, data, metadata, recorded_at FROM events WHERE position > $1 ORDER BY position LIMIT $2',
      [after, Math.min(CATCH_UP_BATCH, count - events)],
    );
    if (rows.length === 0) break;
    events += rows.length;
    after = rows[rows.length - 1]!.position;
  }
  const elapsedMs = performance.now() - started;
  await client.end();
  return { operations: events, events, elapsedMs, latenciesMs: [] };
}

function cpuPerOperation(phase: Phase): string {
  return ((phase.cpuUs ?? 0) / Math.max(1, phase.operations)).toFixed(0);
}

function latencyCells(phase: Phase): string {
  const sorted = [...phase.latenciesMs].sort((a, b) => a - b);
  return `${percentile(sorted, 50).toFixed(2)} | ${percentile(sorted, 99).toFixed(2)}`;
}

export async function run(): Promise<BenchSection> {
  const { db, url, drop } = await freshBenchDatabase({ prefix: 'ledger_bench', poolMax: 10 });
  try {
    const store = new PostgresEventStore(db);
    const runId = randomBytes(3).toString('hex');
    const log = (s: string) => console.log(`  eventstore: ${s}`);

    log(`raw ceiling: ${WRITERS} pg clients, one ~300-byte jsonb insert per transaction, ${PHASE_MS} ms`);
    const raw = await rawCeiling(url);
    log(`distinct streams: ${WRITERS} writers, ${PHASE_MS} ms`);
    const distinct = await distinctStreams(store, runId);
    const groupStats = store.stats();
    log(
      `stream reads: ${WRITERS} readers, newest event of a stream, then a missing stream, ${PHASE_MS / 2} ms each`,
    );
    const reads = await streamReads(store, runId, true);
    const missingReads = await streamReads(store, runId, false);
    log(`hot stream: ${WRITERS} writers on one stream, ${PHASE_MS} ms`);
    const hot = await hotStream(store, runId);
    const head = await store.headPosition();
    log(`filling ${CATCH_UP_EVENTS} events for catch-up`);
    const filled = await fill(db, runId, CATCH_UP_EVENTS);
    log('catch-up subscription from the start of the fill');
    const caught = await catchUp(db, head);
    log(`raw read ceiling: plain pg client over ${RAW_READ_EVENTS} of those events`);
    const rawReadPhase = await rawRead(url, head, RAW_READ_EVENTS);
    await store.close();
    if (caught.events !== CATCH_UP_EVENTS) {
      throw new Error(`catch-up delivered ${caught.events} events, expected ${CATCH_UP_EVENTS}`);
    }

    const rawRate = perSecond(raw.operations, raw.elapsedMs);
    const distinctRate = perSecond(distinct.operations, distinct.elapsedMs);
    const hotRate = perSecond(hot.operations, hot.elapsedMs);
    const catchUpRate = perSecond(caught.events, caught.elapsedMs);
    const rawReadRate = perSecond(rawReadPhase.events, rawReadPhase.elapsedMs);
    const fillRate = perSecond(filled.events, filled.elapsedMs);
    const ratio = distinctRate / rawRate;
    const markdown = [
      `PostgresEventStore (group commit, head-row lock for commit-ordered positions) against the same server's raw insert ceiling; ${WRITERS} concurrent writers, ${PHASE_MS / 1000} s per phase, one event of ~300 bytes (data + metadata) per append.`,
      '',
      '| Workload | ops/s | p50 ms | p99 ms | Ratio to raw ceiling |',
      '|---|---:|---:|---:|---:|',
      `| Raw ceiling: ${WRITERS} \`pg\` clients, 1 jsonb row insert per transaction | ${formatRate(rawRate)} | ${latencyCells(raw)} | 1.00 |`,
      `| Appends, ${WRITERS} writers on distinct streams (exact expected revision) | ${formatRate(distinctRate)} | ${latencyCells(distinct)} | ${ratio.toFixed(2)} |`,
      `| Appends, ${WRITERS} writers on one hot stream (conflict retries: reload revision, jittered backoff ≤ ${HOT_BACKOFF_MAX_MS} ms) | ${formatRate(hotRate)} | ${latencyCells(hot)} | ${(hotRate / rawRate).toFixed(2)} |`,
      '',
      '| Stream reads (readStream, backwards, maxCount 1) | reads/s | p50 ms | p99 ms | app CPU µs/read |',
      '|---|---:|---:|---:|---:|',
      `| Newest event of an existing stream, ${WRITERS} readers | ${formatRate(perSecond(reads.operations, reads.elapsedMs))} | ${latencyCells(reads)} | ${cpuPerOperation(reads)} |`,
      `| Missing stream (StreamNotFoundError), ${WRITERS} readers | ${formatRate(perSecond(missingReads.operations, missingReads.elapsedMs))} | ${latencyCells(missingReads)} | ${cpuPerOperation(missingReads)} |`,
      '',
      `- Distinct streams: ${(groupStats.appendsWritten / Math.max(1, groupStats.groupsCommitted)).toFixed(1)} appends per group commit on average; ${groupStats.cachedWrites} of ${groupStats.groupsCommitted} groups written in one round trip.`,
      `- Hot stream: ${hot.conflicts ?? 0} conflicts retried for ${hot.operations} successful appends (latency includes the retries); ${hot.gaveUp ?? 0} operations abandoned after ${HOT_MAX_ATTEMPTS} conflicts in a row (optimistic retries are not fair to the losers; the app queues commands per stream within a process).`,
      `- Catch-up data: ${CATCH_UP_EVENTS.toLocaleString('en-US')} events over ${FILL_STREAMS} streams written by a bench-only server-side bulk insert (same head lock and bookkeeping) at ${formatRate(fillRate)} events/s; not an append measurement.`,
      `- Subscription catch-up over ${caught.events.toLocaleString('en-US')} events (unfiltered, \`readBatchSize: ${CATCH_UP_BATCH}\`, one batch read ahead, data and metadata parsed into objects): **${formatRate(catchUpRate)} events/s** (${(caught.elapsedMs / 1000).toFixed(1)} s).`,
      `- Read ceiling on this machine: a plain \`pg\` client paging through ${rawReadPhase.events.toLocaleString('en-US')} of the same events (same page size, jsonb parsed): ${formatRate(rawReadRate)} rows/s; catch-up runs at ${(catchUpRate / rawReadRate).toFixed(2)}× of it.`,
      `- Goals: distinct-stream appends ≥ 0.6× raw ceiling → ${ratio.toFixed(2)}× (${ratio >= 0.6 ? 'met' : 'not met'}); catch-up ≥ 100,000 events/s → ${catchUpRate >= 100_000 ? 'met' : 'not met'}.`,
    ].join('\n');
    return { name: 'eventstore', title: 'Event store (Postgres adapter)', markdown };
  } finally {
    await drop();
  }
}
