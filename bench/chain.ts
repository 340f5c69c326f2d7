import { randomBytes } from 'node:crypto';
import { Chainer } from '../src/chain/chainer.js';
import { ChainStore } from '../src/chain/chainStore.js';
import { verifyChain } from '../src/chain/verifyChain.js';
import { PostgresEventStore } from '../src/eventstore/postgres.js';
import { event } from './eventstore.js';
import { type BenchSection, formatRate, freshBenchDatabase, percentile } from './report.js';

/**
 * `npm run bench -- chain`: what the tamper-evident log costs the append path and how fast it links.
 * The same 8 writers as the event store suite (distinct streams, one ~300-byte event per append, four
 * tenants) append for a phase without the chainer, then the chainer links that history from nothing
 * (an upgraded ledger's catch-up), then the writers append for a phase with the chainer running
 * beside them (its lag sampled every 50 ms), in one run on one database. Then `verify --chain` over
 * everything.
 */
const WRITERS = 8;
const TENANTS = 4;
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 10_000);
const LAG_SAMPLE_MS = 50;

interface Phase {
  operations: number;
  elapsedMs: number;
  latenciesMs: number[];
}

async function append(store: PostgresEventStore, runId: string, phase: string): Promise<Phase> {
  const latenciesMs: number[] = [];
  let operations = 0;
  const started = performance.now();
  const deadline = started + PHASE_MS;
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      const stream = `wallet-bench.${runId}-${phase}${w}`;
      let revision: bigint | 'no_stream' = 'no_stream';
      while (performance.now() < deadline) {
        const e = event(operations);
        e.metadata = { ...e.metadata, tenantId: `bench_${w % TENANTS}` };
        const t = performance.now();
        const result = await store.append(stream, [e], { expectedRevision: revision });
        latenciesMs.push(performance.now() - t);
        revision = result.nextExpectedRevision;
        operations++;
      }
    }),
  );
  return { operations, elapsedMs: performance.now() - started, latenciesMs };
}

const perSecond = (count: number, ms: number) => (count * 1000) / ms;

function latencyCells(phase: Phase): string {
  const sorted = [...phase.latenciesMs].sort((a, b) => a - b);
  return `${percentile(sorted, 50).toFixed(2)} | ${percentile(sorted, 99).toFixed(2)}`;
}

export async function run(): Promise<BenchSection> {
  const { db, drop } = await freshBenchDatabase({ prefix: 'ledger_bench_chain', poolMax: 12 });
  const log = (s: string) => console.log(`  chain: ${s}`);
  try {
    const store = new PostgresEventStore(db);
    const chain = new ChainStore(db);
    const runId = randomBytes(3).toString('hex');

    log(`appends without the chainer: ${WRITERS} writers, ${PHASE_MS} ms`);
    const without = await append(store, runId, 'a');

    const history = await store.headPosition();
    log(`catch-up: linking ${history + 1n} existing events`);
    const chainer = new Chainer({ db, store, lockPollMs: 10 });
    const catchUpStarted = performance.now();
    chainer.start();
    await chainer.waitForPosition(history, 600_000);
    const catchUpMs = performance.now() - catchUpStarted;

    log(`appends with the chainer running: ${WRITERS} writers, ${PHASE_MS} ms`);
    const lags: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [head, linked] = await Promise.all([store.headPosition(), chain.checkpoint()]);
        lags.push(Number(head - linked));
        await new Promise((resolve) => setTimeout(resolve, LAG_SAMPLE_MS));
      }
    })();
    const withChainer = await append(store, runId, 'b');
    sampling = false;
    await sampler;
    const head = await store.headPosition();
    const drainStarted = performance.now();
    await chainer.waitForPosition(head, 600_000);
    const drainMs = performance.now() - drainStarted;
    const status = chainer.status();
    await chainer.stop();

    log('verify --chain over everything');
    const verifyStarted = performance.now();
    const verdict = await verifyChain({ store, chain });
    const verifyMs = performance.now() - verifyStarted;
    if (!verdict.ok) throw new Error(`verify --chain failed: ${verdict.break?.message}`);
    await store.close();

    const withoutRate = perSecond(without.operations, without.elapsedMs);
    const withRate = perSecond(withChainer.operations, withChainer.elapsedMs);
    const catchUpRate = perSecond(Number(history + 1n), catchUpMs);
    const sortedLags = [...lags].sort((a, b) => a - b);
    const ratio = withRate / withoutRate;
    const markdown = [
      `The append path does not change (the chainer links from the log after commit, src/chain/chainer.ts); this measures what the chainer running beside it costs and how fast it links. PostgresEventStore, ${WRITERS} concurrent writers on distinct streams of ${TENANTS} tenants, one ~300-byte event per append, ${PHASE_MS / 1000} s per phase, one database.`,
      '',
      '| Workload | appends/s | p50 ms | p99 ms | Ratio |',
      '|---|---:|---:|---:|---:|',
      `| Appends, chainer not running | ${formatRate(withoutRate)} | ${latencyCells(without)} | 1.00 |`,
      `| Appends, chainer linking beside them | ${formatRate(withRate)} | ${latencyCells(withChainer)} | ${ratio.toFixed(2)} |`,
      '',
      `- Catch-up (an upgraded ledger: history linked from its first event): ${(history + 1n).toLocaleString('en-US')} events in ${(catchUpMs / 1000).toFixed(1)} s, **${formatRate(catchUpRate)} events/s**.`,
      `- Chain lag while appending (store head minus the last linked position, sampled every ${LAG_SAMPLE_MS} ms, ${lags.length} samples): p50 ${percentile(sortedLags, 50)}, p99 ${percentile(sortedLags, 99)}, max ${sortedLags.at(-1) ?? 0} events; linked to the head ${drainMs.toFixed(0)} ms after the writers stopped. ${status.batchesCommitted} batches, ${(status.eventsLinked / Math.max(1, status.batchesCommitted)).toFixed(0)} events per batch on average.`,
      `- \`verify --chain\` over all ${verdict.eventsVerified.toLocaleString('en-US')} events: ${(verifyMs / 1000).toFixed(1)} s (${formatRate(perSecond(verdict.eventsVerified, verifyMs))} events/s).`,
      `- Goal: appends with the chainer ≥ 0.9× without → ${ratio.toFixed(2)}× (${ratio >= 0.9 ? 'met' : 'not met'}); the chainer keeps up (lag bounded, drains at once) → ${drainMs < 5_000 ? 'met' : 'not met'}.`,
    ].join('\n');
    return { name: 'chain', title: 'Tamper-evident log (hash chain)', markdown };
  } finally {
    await drop();
  }
}
