import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { PostgresEventStore } from '../src/eventstore/postgres.js';
import { event, fill } from './eventstore.js';
import { type BenchSection, formatRate, freshBenchDatabase, percentile } from './report.js';

/**
 * `npm run bench -- statistics`: appends and stream reads on a store whose planner
 * statistics were taken while it was nearly empty, before and after a bulk load of BENCH_STATS_EVENTS
 * events with no ANALYZE (autovacuum off for the event tables, so nothing refreshes them behind the
 * run), then once more after an ANALYZE. The store's statements are prepared once per pooled
 * connection, so a plan chosen while `events` was small is what every later execution runs unless the
 * plan cannot depend on the statistics. Two store instances write at once (as two app processes would),
 * so both write paths run: the one-round-trip write and the read-state-then-write one.
 */
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 5_000);
const LOADED_EVENTS = Number(process.env.BENCH_STATS_EVENTS ?? 500_000);
const WRITERS_PER_STORE = 4;
const READERS = 8;

interface Measured {
  operations: number;
  elapsedMs: number;
  latenciesMs: number[];
}

async function appends(stores: PostgresEventStore[], runId: string, phase: string): Promise<Measured> {
  const latenciesMs: number[] = [];
  let operations = 0;
  const started = performance.now();
  const deadline = started + PHASE_MS;
  await Promise.all(
    stores.flatMap((store, s) =>
      Array.from({ length: WRITERS_PER_STORE }, async (_, w) => {
        const stream = `wallet-bench.${runId}-${phase}-${s}-${w}`;
        let revision: bigint | 'no_stream' = 'no_stream';
        while (performance.now() < deadline) {
          const t = performance.now();
          const result = await store.append(stream, [event(operations)], { expectedRevision: revision });
          latenciesMs.push(performance.now() - t);
          revision = result.nextExpectedRevision;
          operations++;
        }
      }),
    ),
  );
  return { operations, elapsedMs: performance.now() - started, latenciesMs };
}

/** The newest event of streams written in the phase before (the read a command makes first). */
async function reads(store: PostgresEventStore, streams: string[]): Promise<Measured> {
  const latenciesMs: number[] = [];
  let operations = 0;
  const started = performance.now();
  const deadline = started + PHASE_MS / 2;
  await Promise.all(
    Array.from({ length: READERS }, async (_, r) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        await store.readStream(streams[(operations + r) % streams.length]!, {
          direction: 'backwards',
          maxCount: 1,
        });
        latenciesMs.push(performance.now() - t);
        operations++;
      }
    }),
  );
  return { operations, elapsedMs: performance.now() - started, latenciesMs };
}

const rate = (m: Measured) => (m.operations * 1000) / m.elapsedMs;
const cells = (m: Measured) => {
  const sorted = [...m.latenciesMs].sort((a, b) => a - b);
  return `${formatRate(rate(m))} | ${percentile(sorted, 50).toFixed(2)} | ${percentile(sorted, 99).toFixed(2)}`;
};
const load = () => os.loadavg()[0]!.toFixed(2);

export async function run(): Promise<BenchSection> {
  const { db, drop } = await freshBenchDatabase({ prefix: 'ledger_bench_stats', poolMax: 10 });
  try {
    const log = (s: string) => console.log(`  statistics: ${s}`);
    const runId = randomBytes(3).toString('hex');
    await db.knex.raw('ALTER TABLE events SET (autovacuum_enabled = false)');
    await db.knex.raw('ALTER TABLE event_streams SET (autovacuum_enabled = false)');
    const stores = [new PostgresEventStore(db), new PostgresEventStore(db)];
    // A few events, then statistics that say "tiny", then enough traffic that every pooled connection
    // has prepared (and settled on a plan for) each statement.
    for (let i = 0; i < 50; i++) {
      await stores[0]!.append(`wallet-bench.${runId}-seed${i}`, [event(i)], {
        expectedRevision: 'no_stream',
      });
    }
    await db.knex.raw('ANALYZE events, event_streams');
    log('warming the pooled connections on the nearly empty store');
    await appends(stores, runId, 'warm');
    const streamsOf = (phase: string) =>
      stores.flatMap((_, s) =>
        Array.from({ length: WRITERS_PER_STORE }, (_, w) => `wallet-bench.${runId}-${phase}-${s}-${w}`),
      );

    /**
     * Rows of `events` read by sequential scans so far (what a plan that ignores the indexes costs).
     * Backends publish their counters at most once a second while busy, so a phase's count is read
     * after a pause and is approximate at the edges.
     */
    const seqRowsRead = async () => {
      await new Promise((r) => setTimeout(r, 1_500));
      const { rows } = await db.knex.raw<{ rows: Array<{ seq_tup_read: number }> }>(
        "SELECT seq_tup_read::float8 AS seq_tup_read FROM pg_stat_user_tables WHERE relname = 'events'",
      );
      return rows[0]!.seq_tup_read;
    };
    const phases: Array<{
      label: string;
      load: string;
      reltuples: number;
      seqRows: number;
      appended: Measured;
      read: Measured;
    }> = [];
    const measure = async (label: string, phase: string) => {
      const seqBefore = await seqRowsRead();
      const loadAtStart = load();
      const appended = await appends(stores, runId, phase);
      const read = await reads(stores[0]!, streamsOf(phase));
      const loadAtEnd = load();
      const { rows } = await db.knex.raw<{ rows: Array<{ reltuples: number }> }>(
        "SELECT reltuples::float8 AS reltuples FROM pg_class WHERE relname = 'events'",
      );
      const seqRows = (await seqRowsRead()) - seqBefore;
      phases.push({
        label,
        load: `${loadAtStart}→${loadAtEnd}`,
        reltuples: rows[0]!.reltuples,
        seqRows,
        appended,
        read,
      });
      log(`${label}: ${formatRate(rate(appended))} appends/s, ${formatRate(rate(read))} reads/s`);
    };

    await measure('nearly empty store (statistics current)', 'empty');
    log(`bulk-loading ${LOADED_EVENTS} events, no ANALYZE`);
    await fill(db, runId, LOADED_EVENTS);
    await measure(
      `after a bulk load of ${LOADED_EVENTS.toLocaleString('en-US')} events, no ANALYZE`,
      'loaded',
    );
    await db.knex.raw('ANALYZE events, event_streams');
    await measure('the same store after ANALYZE', 'analyzed');
    await Promise.all(stores.map((s) => s.close()));

    const base = phases[0]!;
    const rows = phases.map(
      (p) =>
        `| ${p.label} | ${formatRate(p.reltuples)} | ${formatRate(p.seqRows / Math.max(1, p.appended.operations + p.read.operations))} | ${cells(p.appended)} | ${(rate(p.appended) / rate(base.appended)).toFixed(2)} | ${cells(p.read)} | ${(rate(p.read) / rate(base.read)).toFixed(2)} | ${p.load} |`,
    );
    const loaded = phases[1]!;
    const ratio = rate(loaded.appended) / rate(base.appended);
    const markdown = [
      `Two PostgresEventStore instances on one database (as two app processes), ${WRITERS_PER_STORE} writers each on distinct streams, ${PHASE_MS / 1000} s per phase; then ${READERS} readers of the newest event of those streams for ${PHASE_MS / 2000} s. Statistics were taken (ANALYZE) with 50 events in the store and every pooled connection prepared the store's statements then; autovacuum is off for the event tables, so the bulk load leaves the statistics saying "nearly empty" (\`pg_class.reltuples\` column).`,
      '',
      '| Store | reltuples | rows seq-scanned per operation | appends/s | p50 ms | p99 ms | ratio | reads/s | p50 ms | p99 ms | ratio | load (1 min, start→end) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      ...rows,
      '',
      `- Goal: appends after the bulk load with stale statistics at the rate of the nearly empty store → ${ratio.toFixed(2)}× (${ratio >= 0.8 ? 'met' : 'not met'}; compare ratios within this run, the machine is shared).`,
    ].join('\n');
    return { name: 'statistics', title: 'Appends on a store with stale planner statistics', markdown };
  } finally {
    await drop();
  }
}
